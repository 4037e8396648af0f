/**
 * The vocabulary shared by the benchmark's orchestrator and its load
 * generator processes: which systems, which operations, and what a
 * measurement reports.
 */

/** The systems under test: GoD-DB through two clients, and three references on the same nats-server. */
export const System = {
  GoddbRaw: 'goddb-raw',
  GoddbSdk: 'goddb-sdk',
  Echo: 'echo',
  JetstreamKv: 'jetstream-kv',
  Redis: 'redis',
} as const;
export type System = (typeof System)[keyof typeof System];
export const allSystems: readonly System[] = Object.values(System);

/** The echo responder (echo.ts) answers every request under this prefix. */
export const echoSubjectPrefix = 'bench.echo';

export const Op = { Put: 'put', Get: 'get' } as const;
export type Op = (typeof Op)[keyof typeof Op];
export const allOps: readonly Op[] = [Op.Put, Op.Get];

export const Engine = { Lmdb: 'lmdb', Memory: 'memory' } as const;
export type Engine = (typeof Engine)[keyof typeof Engine];

/** Everything a run needs, validated once (see options.ts). */
export interface BenchConfig {
  durationMs: number;
  warmupMs: number;
  repeats: number;
  concurrency: number[];
  valueBytes: number;
  keys: number;
  engine: Engine;
  systems: System[];
  outDir: string;
}

/** Where the load generator finds the system it drives. */
export interface Endpoints {
  natsUrl: string;
  redisPort?: number;
  /** The JetStream KV bucket. */
  bucket: string;
}

/** The environment variable that carries the load generator's parameters. */
export const loadgenParamsEnv = 'GODDB_BENCH_LOADGEN';

/** The load generator's parameters, passed as JSON in `loadgenParamsEnv`. */
export interface LoadgenParams {
  system: System;
  /** `preload` writes every key once; `measure` runs the closed loop. */
  mode: 'preload' | 'measure';
  op: Op;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  keys: number;
  valueBytes: number;
  requestTimeoutMs: number;
  endpoints: Endpoints;
}

/** What one load generator run reports; latencies in microseconds. */
export interface LoadgenResult {
  ops: number;
  opsPerSec: number;
  windowMs: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  errors: number;
  /** Errors during the warm-up, which the window does not count. */
  warmupErrors: number;
  /** The first error message seen, if any. */
  firstError?: string;
}

/** The load generator's stdout protocol: one JSON object per line. */
export const LoadgenEvent = {
  Ready: 'ready',
  WarmupEnd: 'warmup-end',
  MeasureEnd: 'measure-end',
  Result: 'result',
} as const;
export type LoadgenEvent = (typeof LoadgenEvent)[keyof typeof LoadgenEvent];

/** One measurement of one (system, op, concurrency), as the JSON file keeps it. */
export interface Sample {
  system: System;
  op: Op;
  concurrency: number;
  repeat: number;
  ops: number;
  opsPerSec: number;
  windowMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
  warmupErrors: number;
  firstError?: string;
  /** CPU over the measured window, % of one core, by process label (nats, b1, loadgen, ...). */
  cpu: Record<string, number>;
  loadgenPid: number;
}

/** The median of the repeats of one (system, op, concurrency). */
export interface Summary {
  system: System;
  op: Op;
  concurrency: number;
  repeats: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Summed over the repeats. */
  errors: number;
  cpu: Record<string, number>;
}
