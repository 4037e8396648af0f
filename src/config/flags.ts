/**
 * Worker flags, derived from the schema's `arg`s so help text, env names and
 * config keys cannot drift apart. The original Go worker's flags are accepted
 * with one dash (`-port`, `-gossip 1s`, ...) as well as two.
 */
import { configSchema } from './schema.js';
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
  // --seeds names the same list as the seed's -peers (issue 9): the initial contact points.
  const peers = out['peers'];
  if (peers) out['seeds'] = Object.freeze({ ...peers, doc: 'Node ids to contact first, comma-separated (the initial cluster, or the members a joining node asks); the same list as -peers.', legacy: false });
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

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

// ---------------------------------------------------------------------------
