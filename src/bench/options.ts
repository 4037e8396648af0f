/**
 * The benchmark's options, shared by `npm run bench -- ...` (main.ts) and
 * `goddb bench`: defined once for commander, validated once into a frozen
 * BenchConfig. Explicit options win over `--quick`'s presets.
 */
import { Command, Option } from 'commander';
import { limits } from '../core/limits.js';
import { nodeCount, replication } from './cluster.js';
import { allOps, allSystems, Engine, type BenchConfig } from './types.js';

export interface BenchFlags {
  duration?: string;
  warmup?: string;
  repeats?: string;
  concurrency?: string;
  valueBytes?: string;
  keys?: string;
  engine?: string;
  systems?: string;
  ops?: string;
  out?: string;
  quick?: boolean;
  nodes?: string;
  rate?: string;
}

const defaults = { duration: '3000', warmup: '1000', repeats: '3', concurrency: '1,16,128', valueBytes: '100', keys: '10000', out: 'bench-results' };
const quick = { duration: '500', warmup: '200', repeats: '1', concurrency: '1,16' };

export const benchLimits = {
  durationMsMin: 50,
  durationMsMax: 600_000,
  warmupMsMax: 60_000,
  repeatsMax: 100,
  /** Each in-flight request is one async loop; GoD-DB nodes refuse past limits.inflightRequestsMax. */
  concurrencyMax: 4_096,
  keysMax: 10_000_000,
  nodesMax: 9,
  rateMax: 1_000_000,
} as const;

export function addBenchOptions(cmd: Command): Command {
  return cmd
    .option('--duration <ms>', `measured window of each measurement, ms (default ${defaults.duration}; --quick ${quick.duration})`)
    .option('--warmup <ms>', `warm-up before each window, ms (default ${defaults.warmup}; --quick ${quick.warmup})`)
    .option('--repeats <n>', `measurements of each (system, op, concurrency); the table shows medians (default ${defaults.repeats}; --quick ${quick.repeats})`)
    .option('--concurrency <list>', `requests kept in flight, comma-separated (default ${defaults.concurrency}; --quick ${quick.concurrency})`)
    .option('--value-bytes <n>', `value size in bytes (default ${defaults.valueBytes})`)
    .option('--keys <n>', `keys preloaded and then read and written at random (default ${defaults.keys})`)
    .addOption(new Option('--engine <engine>', 'storage engine of the GoD-DB nodes').choices(Object.values(Engine)).default(Engine.Lmdb))
    .option('--systems <list>', `comma-separated, from ${allSystems.join(', ')} (default all)`)
    .option('--ops <list>', `operations measured, comma-separated, from ${allOps.join(', ')} (default both; the keys are preloaded either way)`)
    .option('--nodes <n>', `GoD-DB workers per cluster, N=3 R=W=2 (default ${nodeCount}; with more than N, a node that is not a replica of a key coordinates it unless the client routes 'direct')`)
    .option('--rate <ops/s>', 'an open loop: requests start at this rate whatever the answers do, with at most C in flight (C from --concurrency; requests due past it are counted as missed, not sent); steadier server CPU per operation for comparing two builds. Default: the closed loop (each of C sends again as soon as answered)')
    .option('--out <dir>', `directory for the JSON result (default ${defaults.out})`)
    .option('--quick', `a smoke run: duration ${quick.duration}, warmup ${quick.warmup}, repeats ${quick.repeats}, concurrency ${quick.concurrency}`);
}

export function parseBenchFlags(flags: BenchFlags): BenchConfig | { error: string } {
  try {
    return configFrom(flags);
  } catch (err) {
    if (err instanceof OptionError) return { error: err.message };
    throw err;
  }
}

class OptionError extends Error {}

function configFrom(flags: BenchFlags): BenchConfig {
  const preset = flags.quick === true ? { ...defaults, ...quick } : defaults;
  const concurrency = list(flags.concurrency ?? preset.concurrency).map((c) => integer('--concurrency', c, 1, benchLimits.concurrencyMax));
  if (concurrency.length === 0) throw new OptionError('--concurrency needs at least one value');
  const systems = subset('--systems', flags.systems, allSystems, 'system');
  const ops = subset('--ops', flags.ops, allOps, 'operation');
  const engine = flags.engine ?? Engine.Lmdb;
  if (engine !== Engine.Lmdb && engine !== Engine.Memory) throw new OptionError(`--engine must be lmdb or memory, got ${engine}`);
  return Object.freeze({
    durationMs: integer('--duration', flags.duration ?? preset.duration, benchLimits.durationMsMin, benchLimits.durationMsMax),
    warmupMs: integer('--warmup', flags.warmup ?? preset.warmup, 0, benchLimits.warmupMsMax),
    repeats: integer('--repeats', flags.repeats ?? preset.repeats, 1, benchLimits.repeatsMax),
    concurrency: [...new Set(concurrency)],
    valueBytes: integer('--value-bytes', flags.valueBytes ?? preset.valueBytes, 1, limits.valueBytesMaxDefault),
    keys: integer('--keys', flags.keys ?? preset.keys, 1, benchLimits.keysMax),
    engine,
    systems,
    ops,
    outDir: flags.out ?? defaults.out,
    nodes: integer('--nodes', flags.nodes ?? String(nodeCount), replication, benchLimits.nodesMax),
    ...(flags.rate === undefined ? {} : { ratePerSec: integer('--rate', flags.rate, 1, benchLimits.rateMax) }),
  });
}

/**
 * A comma-separated choice from `all` (all of it when not given), in `all`'s
 * order, so the table reads the same whatever order they were given in.
 */
function subset<T extends string>(option: string, text: string | undefined, all: readonly T[], what: string): T[] {
  if (text === undefined) return [...all];
  const given = list(text);
  const unknown = given.filter((s) => !(all as readonly string[]).includes(s));
  if (unknown.length > 0) throw new OptionError(`${option}: unknown ${unknown.join(', ')}; choose from ${all.join(', ')}`);
  if (given.length === 0) throw new OptionError(`${option} needs at least one ${what}`);
  return all.filter((x) => given.includes(x));
}

function list(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function integer(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new OptionError(`${name} must be an integer from ${min} to ${max}, got ${text}`);
  }
  return n;
}

/** A program for `node dist/src/bench/main.js`; `goddb bench` adds the same options to its subcommand. */
export function benchProgram(action: (flags: BenchFlags) => Promise<void>): Command {
  return addBenchOptions(new Command('bench').description('benchmark GoD-DB against NATS echo, JetStream KV and Redis, all started on free local ports')).action(action);
}
