/**
 * The convict schema for NodeConfig and `loadConfig`, the one place where
 * configuration enters a node (STYLE.md 9).
 *
 * Precedence, lowest first: schema defaults, `config/default.json` (of this
 * package, if present), the files given (in order), GODDB_* environment
 * variables, then command-line flags. The result is validated strictly
 * (unknown keys are errors), checked for cross-field rules and deep-frozen.
 *
 * Flags come from the original Go worker (`-port`, `-redisport`, `-gossip 1s`
 * ...; see `legacyWorkerFlags`) and from this project (`--node-id` ...). Each
 * flag is the `arg` of exactly one schema key; `workerFlagMap` is derived from
 * the schema so the two cannot drift apart.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import convict from 'convict';
import { limits, quorumProblem } from '../core/limits.js';
import { generateNodeId } from '../node/identity.js';
import { isValidToken } from '../protocol/subjects.js';
import { EngineKind, type NodeConfig } from './types.js';

/** A configuration that cannot be used; the message says which key and why. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

// ---------------------------------------------------------------------------
// Formats. Named (registered) formats, because convict only coerces strings
// from env and flags for named formats; the coercions are strict, so '12abc'
// stays a string and fails validation instead of becoming 12.

const kib = 1024;
const mib = 1024 * kib;
const gib = 1024 * mib;
const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function coerceInt(v: string): unknown {
  return /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : v;
}

function intFormat(min: number, max: number): string {
  const name = `goddb-int-${min}-${max}`;
  convict.addFormat({
    name,
    coerce: coerceInt,
    validate(x: unknown) {
      if (!Number.isInteger(x) || (x as number) < min || (x as number) > max) {
        throw new Error(`must be an integer from ${min} to ${max}`);
      }
    },
  });
  return name;
}

const durationUnitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration grammar ('1s', '250ms', '1m30s'), since the seed's flags use it; a bare number is ms. */
export function parseDurationMs(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = part.exec(s); m !== null; m = part.exec(s)) {
    total += Number(m[1]) * durationUnitMs[m[2]!]!;
    end = part.lastIndex;
  }
  return end === s.length && s.length > 0 ? Math.round(total) : undefined;
}

function durationFormat(minMs: number, maxMs: number): string {
  const name = `goddb-duration-${minMs}-${maxMs}`;
  convict.addFormat({
    name,
    coerce: (v: string) => parseDurationMs(v) ?? v,
    validate(x: unknown) {
      if (!Number.isInteger(x) || (x as number) < minMs || (x as number) > maxMs) {
        throw new Error(`must be a duration from ${minMs}ms to ${maxMs}ms, as milliseconds or like '250ms', '1s', '2m'`);
      }
    },
  });
  return name;
}

const sizeUnitBytes: Record<string, number> = { b: 1, kib, mib, gib, tib: 1024 * gib };

/** Bytes, or an IEC size ('512MiB', '1GiB'); decimal units are refused because tools disagree on them. */
export function parseSizeBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase() || 'b';
  const factor = sizeUnitBytes[unit];
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor);
}

function sizeFormat(minBytes: number, maxBytes: number): string {
  const name = `goddb-size-${minBytes}-${maxBytes}`;
  convict.addFormat({
    name,
    coerce: (v: string) => parseSizeBytes(v) ?? v,
    validate(x: unknown) {
      if (!Number.isInteger(x) || (x as number) < minBytes || (x as number) > maxBytes) {
        throw new Error(`must be a size from ${minBytes} to ${maxBytes} bytes, as bytes or like '512KiB', '1GiB'`);
      }
    },
  });
  return name;
}

convict.addFormat({
  name: 'goddb-boolean',
  coerce(v: string) {
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    return v;
  },
  validate(x: unknown) {
    if (typeof x !== 'boolean') throw new Error('must be true or false');
  },
});

const tokenRule = "1 to 64 letters, digits, '_' or '-' (it is a NATS subject token)";

convict.addFormat({
  name: 'goddb-token',
  validate(x: unknown) {
    if (typeof x !== 'string' || !isValidToken(x)) throw new Error(`must be ${tokenRule}`);
  },
});

convict.addFormat({
  name: 'goddb-token-or-empty',
  validate(x: unknown) {
    if (typeof x !== 'string' || (x !== '' && !isValidToken(x))) throw new Error(`must be empty (generated) or ${tokenRule}`);
  },
});

function coerceList(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

convict.addFormat({
  name: 'goddb-token-list',
  coerce: coerceList,
  validate(x: unknown) {
    if (!Array.isArray(x) || !x.every((t) => typeof t === 'string' && isValidToken(t))) {
      throw new Error(`must be a list of node ids, each ${tokenRule}`);
    }
  },
});

convict.addFormat({
  name: 'goddb-server-list',
  coerce: coerceList,
  validate(x: unknown) {
    if (!Array.isArray(x) || x.length === 0 || !x.every((u) => typeof u === 'string' && /^\S+$/.test(u))) {
      throw new Error("must be one or more NATS URLs ('nats://host:port'), comma-separated in env and flags");
    }
  },
});

convict.addFormat({
  name: 'goddb-string',
  validate(x: unknown) {
    if (typeof x !== 'string') throw new Error('must be a string');
  },
});

convict.addFormat({
  name: 'goddb-host',
  validate(x: unknown) {
    if (typeof x !== 'string' || !/^\S+$/.test(x)) throw new Error('must be a host name or IP address');
  },
});

const port = intFormat(0, 65535);
const quorumNumber = intFormat(0, limits.replicationMax);

// ---------------------------------------------------------------------------
// The schema. Its shape is NodeConfig exactly (the type parameter checks it).

export const configSchema: convict.Schema<NodeConfig> = {
  nodeId: {
    doc: 'This node\'s id, unique in the cluster; a subject token. Empty: read from the data directory (node.json), else generated as n-<8 hex>.',
    format: 'goddb-token-or-empty',
    default: '',
    env: 'GODDB_NODE_ID',
    arg: 'node-id',
  },
  cluster: {
    doc: 'Cluster name; nodes only talk to nodes of the same cluster (god.<cluster>.* subjects).',
    format: 'goddb-token',
    default: 'goddb',
    env: 'GODDB_CLUSTER',
    arg: 'cluster',
  },
  dataDir: {
    doc: 'Directory for durable data. Holds node.json (the node\'s durable id and vnode count) and, for lmdb, the data. Empty: ./data/<nodeId>.',
    format: 'goddb-string',
    default: '',
    env: 'GODDB_DATA_DIR',
    arg: 'data-dir',
  },
  http: {
    host: {
      doc: 'Address the HTTP port (health, metrics) listens on.',
      format: 'goddb-host',
      default: '127.0.0.1',
      env: 'GODDB_HTTP_HOST',
      arg: 'http-host',
    },
    port: {
      doc: 'HTTP port (health, metrics); 0 picks any free port. The seed\'s -port.',
      format: port,
      default: 0,
      env: 'GODDB_HTTP_PORT',
      arg: 'port',
    },
  },
  nats: {
    servers: {
      doc: 'NATS server URLs, comma-separated in env and flags. The seed\'s -discovery.',
      format: 'goddb-server-list',
      default: ['nats://127.0.0.1:4222'],
      env: 'GODDB_NATS_SERVERS',
      arg: 'discovery',
    },
    user: { doc: 'NATS user name.', format: 'goddb-string', default: '', env: 'GODDB_NATS_USER', arg: 'nats-user' },
    pass: { doc: 'NATS password.', format: 'goddb-string', default: '', env: 'GODDB_NATS_PASS', arg: 'nats-pass', sensitive: true },
    token: { doc: 'NATS token.', format: 'goddb-string', default: '', env: 'GODDB_NATS_TOKEN', arg: 'nats-token', sensitive: true },
    nkeySeedFile: {
      doc: 'File holding an nkey seed for NATS authentication.',
      format: 'goddb-string',
      default: '',
      env: 'GODDB_NATS_NKEY_SEED_FILE',
      arg: 'nats-nkey',
    },
    credsFile: {
      doc: 'NATS .creds file (JWT and nkey seed).',
      format: 'goddb-string',
      default: '',
      env: 'GODDB_NATS_CREDS_FILE',
      arg: 'nats-creds',
    },
    tls: {
      caFile: { doc: 'CA certificate file for NATS TLS.', format: 'goddb-string', default: '', env: 'GODDB_NATS_TLS_CA_FILE', arg: 'nats-tls-ca' },
      certFile: { doc: 'Client certificate file for NATS TLS.', format: 'goddb-string', default: '', env: 'GODDB_NATS_TLS_CERT_FILE', arg: 'nats-tls-cert' },
      keyFile: { doc: 'Client key file for NATS TLS.', format: 'goddb-string', default: '', env: 'GODDB_NATS_TLS_KEY_FILE', arg: 'nats-tls-key' },
      enabled: { doc: 'Require TLS to NATS (implied by a CA or certificate file).', format: 'goddb-boolean', default: false, env: 'GODDB_NATS_TLS', arg: 'nats-tls' },
    },
  },
  storage: {
    engine: {
      doc: 'Storage engine: lmdb (embedded, durable), redis (the seed\'s backend) or memory (tests).',
      format: Object.values(EngineKind),
      default: EngineKind.Lmdb,
      env: 'GODDB_STORAGE_ENGINE',
      arg: 'engine',
    },
    redis: {
      host: { doc: 'Redis host (engine redis).', format: 'goddb-host', default: '127.0.0.1', env: 'GODDB_REDIS_HOST', arg: 'redis-host' },
      port: {
        doc: 'Redis port (engine redis). The seed\'s -redisport, which also selects engine redis.',
        format: port,
        default: 6379,
        env: 'GODDB_REDIS_PORT',
        arg: 'redisport',
      },
      db: { doc: 'Redis database number.', format: intFormat(0, 1_000_000), default: 0, env: 'GODDB_REDIS_DB' },
      password: { doc: 'Redis password.', format: 'goddb-string', default: '', env: 'GODDB_REDIS_PASSWORD', sensitive: true },
    },
    lmdb: {
      mapSizeBytes: {
        doc: 'LMDB map size: the most data the node can hold (engine lmdb); bytes or like 1GiB.',
        format: sizeFormat(mib, Number.MAX_SAFE_INTEGER),
        default: gib,
        env: 'GODDB_LMDB_MAP_SIZE_BYTES',
        arg: 'lmdb-map-size',
      },
    },
  },
  ring: {
    virtualNodes: {
      doc: 'Virtual nodes (tokens) per node on the hash ring. The seed\'s -virtualnodes.',
      format: intFormat(1, limits.virtualNodesMax),
      default: 10,
      env: 'GODDB_VIRTUAL_NODES',
      arg: 'virtualnodes',
    },
  },
  quorum: {
    replication: {
      doc: `Replicas per key (N), 1 to ${limits.replicationMax}. The seed's -replication.`,
      format: quorumNumber,
      default: 3,
      env: 'GODDB_REPLICATION',
      arg: 'replication',
    },
    readQuorum: { doc: 'Replicas that must answer a read (R), 1 to N. The seed\'s -readquorum.', format: quorumNumber, default: 2, env: 'GODDB_READ_QUORUM', arg: 'readquorum' },
    writeQuorum: { doc: 'Replicas that must acknowledge a write (W), 1 to N. The seed\'s -writequorum.', format: quorumNumber, default: 2, env: 'GODDB_WRITE_QUORUM', arg: 'writequorum' },
  },
  gossip: {
    enabled: { doc: 'Run gossip membership. The seed\'s -enablegossip.', format: 'goddb-boolean', default: true, env: 'GODDB_GOSSIP_ENABLED', arg: 'enablegossip' },
    intervalMs: {
      doc: 'Gossip interval; ms or like 1s. The seed\'s -gossip.',
      format: durationFormat(1, 3_600_000),
      default: 1000,
      env: 'GODDB_GOSSIP_INTERVAL_MS',
      arg: 'gossip',
    },
    failureTimeoutMs: {
      doc: 'Silence after which a peer is marked down; must exceed the gossip interval.',
      format: durationFormat(1, 3_600_000),
      default: 3000,
      env: 'GODDB_FAILURE_TIMEOUT_MS',
      arg: 'failure-timeout',
    },
    peers: {
      doc: 'Node ids of the initial cluster, comma-separated in env and flags. The seed\'s -peers.',
      format: 'goddb-token-list',
      default: [],
      env: 'GODDB_PEERS',
      arg: 'peers',
    },
    startupWaitMs: {
      doc: 'How long a starting node waits to hear its peers before serving anyway.',
      format: durationFormat(0, 3_600_000),
      default: 5000,
      env: 'GODDB_STARTUP_WAIT_MS',
      arg: 'startup-wait',
    },
  },
  requestTimeoutMs: {
    doc: 'How long a coordinator waits for replicas before answering 504.',
    format: durationFormat(1, 600_000),
    default: 2000,
    env: 'GODDB_REQUEST_TIMEOUT_MS',
    arg: 'request-timeout',
  },
  readSpeculativeMs: {
    doc: 'A read asks R replicas first and one more when they have not answered within this (or at once when one fails); Cassandra\'s speculative retry.',
    format: durationFormat(1, 600_000),
    default: 50,
    env: 'GODDB_READ_SPECULATIVE_MS',
    arg: 'read-speculative',
  },
  conflictPolicy: {
    doc: 'How concurrent versions resolve: lww (latest timestamp, ties by node id).',
    format: ['lww'],
    default: 'lww',
    env: 'GODDB_CONFLICT_POLICY',
  },
  limits: {
    keyBytesMax: {
      doc: 'Largest key in UTF-8 bytes.',
      format: intFormat(1, limits.keyBytesMax),
      default: limits.keyBytesMax,
      env: 'GODDB_KEY_BYTES_MAX',
    },
    valueBytesMax: {
      doc: 'Largest value in bytes; at most 1 MiB - 8 KiB so a value and its headers fit the NATS max_payload.',
      format: sizeFormat(1, Number.MAX_SAFE_INTEGER),
      default: limits.valueBytesMaxDefault,
      env: 'GODDB_VALUE_BYTES_MAX',
    },
  },
  log: {
    level: { doc: 'Log level.', format: [...logLevels], default: 'info', env: 'GODDB_LOG_LEVEL', arg: 'log-level' },
  },
};

// ---------------------------------------------------------------------------
// Flags.

/** The original Go worker's flags; accepted with one dash as well as two. */
export const legacyWorkerFlags = [
  'port', 'redisport', 'virtualnodes', 'replication', 'writequorum', 'readquorum',
  'gossip', 'peers', 'enablegossip', 'discovery',
] as const;

/** The flag naming extra config files (repeatable); not a schema key. */
export const configFileFlag = 'config';

export interface WorkerFlag {
  /** Dotted NodeConfig path, e.g. 'http.port'. */
  readonly path: string;
  readonly doc: string;
  readonly env: string;
  /** A boolean flag: bare means true; a value is optional. */
  readonly boolean: boolean;
  readonly legacy: boolean;
}

interface SchemaLeaf {
  doc: string;
  format: unknown;
  default: unknown;
  env?: string;
  arg?: string;
}

function* schemaLeaves(node: object, prefix: string): Generator<[string, SchemaLeaf]> {
  for (const [key, value] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && 'default' in value) yield [path, value as SchemaLeaf];
    else yield* schemaLeaves(value as object, path);
  }
}

function buildFlagMap(): Readonly<Record<string, WorkerFlag>> {
  const legacy = new Set<string>(legacyWorkerFlags);
  const out: Record<string, WorkerFlag> = {};
  for (const [path, leaf] of schemaLeaves(configSchema, '')) {
    if (leaf.arg === undefined) continue;
    out[leaf.arg] = Object.freeze({
      path,
      doc: leaf.doc,
      env: leaf.env ?? '',
      boolean: leaf.format === 'goddb-boolean',
      legacy: legacy.has(leaf.arg),
    });
  }
  return Object.freeze(out);
}

/** Every worker flag (legacy and modern, without dashes) → the config key it sets. */
export const workerFlagMap = buildFlagMap();

/** True when `name` is a worker flag that takes a value (everything but booleans). */
function takesValue(name: string): boolean {
  if (name === configFileFlag) return true;
  const flag = workerFlagMap[name];
  return flag !== undefined && !flag.boolean;
}

/**
 * Rewrites Go-style single-dash long flags (`-port 8080`, `-gossip=1s`) to
 * `--port 8080`, `--gossip=1s`, so one parser handles both spellings. Only
 * known worker flags are rewritten; short flags (`-h`), negative numbers, the
 * value after a flag and everything after `--` are left alone.
 */
export function normalizeLegacyFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  let valueNext = false;
  let rest = false;
  for (const arg of argv) {
    if (rest || valueNext) {
      out.push(arg);
      valueNext = false;
      continue;
    }
    if (arg === '--') {
      rest = true;
      out.push(arg);
      continue;
    }
    const m = /^(-{1,2})([A-Za-z][A-Za-z0-9-]*)(=.*)?$/s.exec(arg);
    const name = m?.[2];
    if (m === null || name === undefined || !(name in workerFlagMap || name === configFileFlag)) {
      out.push(arg);
      continue;
    }
    out.push(`--${name}${m[3] ?? ''}`);
    valueNext = m[3] === undefined && takesValue(name);
  }
  return out;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

// ---------------------------------------------------------------------------
// Loading.

/** This package's root (where package.json is), found from this module's location. */
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
    throw new ConfigError(`invalid configuration:\n${(err as Error).message}`, { cause: err });
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
    settings.push([flag.path, value]);
    if (name === 'engine') engineGiven = true;
    if (name === 'redisport') redisPortGiven = true;
  }
  // The seed's -redisport meant "store in the Redis on this port".
  if (redisPortGiven && !engineGiven) settings.push(['storage.engine', EngineKind.Redis]);
  return { flagFiles, settings };
}

/**
 * With a data directory but no node id, the id stays empty: the node reads
 * it from the directory's identity file (src/node/identity.ts), so that a
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
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
