/**
 * `loadConfig`, the one place where configuration enters a node (STYLE.md 9).
 *
 * Precedence, lowest first: schema defaults, `config/default.json` (of this
 * package, if present), the files given (in order), GODDB_* environment
 * variables, then command-line flags. The result is validated strictly
 * (unknown keys are errors), checked for cross-field rules and deep-frozen.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import convict from 'convict';
import { limits, quorumProblem } from '../core/limits.js';
import { generateNodeId } from '../protocol/node_id.js';
import { isValidToken } from '../protocol/subjects.js';
import { configFileFlag, kebab, workerFlagMap } from './flags.js';
import { tokenRule } from './formats.js';
import { configSchema } from './schema.js';
import { EngineKind } from '../storage/engine.js';
import type { NodeConfig } from './types.js';

/** A configuration that cannot be used; the message says which key and why. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export interface LoadConfigInput {
  /**
   * Parsed flags: names as on the command line (`node-id`, `redisport`) or
   * camelCased as commander gives them (`nodeId`); `config` holds extra files.
   */
  flags?: Record<string, unknown>;
  /** The environment to read GODDB_* from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Config files, applied in order after `config/default.json`. */
  files?: string[];
}

export function loadConfig(input: LoadConfigInput = {}): Readonly<NodeConfig> {
  const { flagFiles, settings } = splitFlags(input.flags ?? {});
  const files = [...defaultFiles(), ...(input.files ?? []), ...flagFiles];
  const config = convict<NodeConfig>(configSchema, { env: input.env ?? process.env, args: [] });
  for (const file of files) loadFile(config, file);
  for (const [path, value] of settings) config.set(path, value);
  try {
    config.validate({ allowed: 'strict' });
  } catch (err) {
    // convict gives one line per problem; a user reads them as one sentence.
    const problems = (err as Error).message.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`, { cause: err });
  }
  const cfg = resolveDerived(config.getProperties());
  const problem = crossFieldProblem(cfg);
  if (problem !== undefined) throw new ConfigError(`invalid configuration: ${problem}`);
  return deepFreeze(cfg);
}

function defaultFiles(): string[] {
  const file = join(packageRoot(), 'config', 'default.json');
  return existsSync(file) ? [file] : [];
}

function loadFile(config: convict.Config<NodeConfig>, file: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file} must hold a JSON object`);
  }
  config.load(parsed);
}

/** Flags → (config path, value) pairs, plus config files; unknown flags are errors. */
function splitFlags(flags: Record<string, unknown>): { flagFiles: string[]; settings: [string, unknown][] } {
  const flagFiles: string[] = [];
  const settings: [string, unknown][] = [];
  let engineGiven = false;
  let redisPortGiven = false;
  for (const [rawName, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const name = kebab(rawName);
    if (name === configFileFlag) {
      flagFiles.push(...(Array.isArray(value) ? value.map(String) : [String(value)]));
      continue;
    }
    const flag = workerFlagMap[name];
    if (flag === undefined) throw new ConfigError(`unknown flag --${name}`);
    // The seed's -peers is the number of peers to gossip with each round; a list names the seeds.
    if (name === 'peers' && /^\s*\d+\s*$/.test(String(value))) settings.push(['gossip.fanout', Number(value)]);
    else settings.push([flag.path, value]);
    if (name === 'engine') engineGiven = true;
    if (name === 'redisport') redisPortGiven = true;
  }
  // The seed's -redisport meant "store in the Redis on this port".
  if (redisPortGiven && !engineGiven) settings.push(['storage.engine', EngineKind.Redis]);
  return { flagFiles, settings };
}

/**
 * With a data directory but no node id, the id stays empty: the node reads
 * it from the directory's identity file (src/node/membership/identity.ts), so that a
 * restart with the same --data-dir comes back as the same node. Without
 * either, a new id is generated and the directory follows it.
 */
function resolveDerived(cfg: NodeConfig): NodeConfig {
  if (cfg.nodeId === '' && cfg.dataDir !== '') return { ...cfg, dataDir: resolve(cfg.dataDir) };
  const nodeId = cfg.nodeId === '' ? generateNodeId() : cfg.nodeId;
  const dataDir = cfg.dataDir === '' ? resolve('data', nodeId) : resolve(cfg.dataDir);
  return { ...cfg, nodeId, dataDir };
}



/** Rules that span keys (raft's Config.validate); the first problem, or undefined. */
export function crossFieldProblem(cfg: NodeConfig): string | undefined {
  const quorum = quorumProblem(cfg.quorum);
  if (quorum !== undefined) return `${quorum} (quorum.replication=N, quorum.readQuorum=R, quorum.writeQuorum=W)`;
  if (cfg.limits.valueBytesMax > limits.valueBytesMaxDefault) {
    return `limits.valueBytesMax must be at most ${limits.valueBytesMaxDefault} (1 MiB - 8 KiB, to fit the NATS max_payload with headers), got ${cfg.limits.valueBytesMax}`;
  }
  if (cfg.gossip.failureTimeoutMs <= cfg.gossip.intervalMs) {
    return `gossip.failureTimeoutMs (${cfg.gossip.failureTimeoutMs}) must be greater than gossip.intervalMs (${cfg.gossip.intervalMs}); raise --failure-timeout or GODDB_FAILURE_TIMEOUT_MS`;
  }
  if (cfg.nodeId !== '' && !isValidToken(cfg.nodeId)) return `nodeId must be ${tokenRule}, got ${JSON.stringify(cfg.nodeId)}`;
  if (!isValidToken(cfg.cluster)) return `cluster must be ${tokenRule}, got ${JSON.stringify(cfg.cluster)}`;
  const tls = cfg.nats.tls;
  if ((tls.certFile === '') !== (tls.keyFile === '')) return 'nats.tls.certFile and nats.tls.keyFile must be given together';
  // A hint holds a version written before the delete that shadows it; delivered after the purge it
  // would bring the key back, so every hint must be gone (windowMs) before any tombstone may go.
  // A member gets hints for a window after it went down, and each is kept a window after its newest version.
  if (2 * cfg.hints.windowMs >= cfg.gc.graceSeconds * 1000) {
    return `twice hints.windowMs (${cfg.hints.windowMs}) must be below the tombstone grace period gc.graceSeconds (${cfg.gc.graceSeconds} s = ${cfg.gc.graceSeconds * 1000} ms): a hint can hold a version that old, and must not bring back a purged key`;
  }
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

