/**
 * The vocabulary shared by the benchmark's orchestrator and its load
 * generator processes: which systems, which operations, and what a
 * measurement reports.
 */

/**
 * The systems under test: GoD-DB through two clients, three references on
 * the same nats-server, and JetStream KV with three replicas on a cluster of
 * three nats-servers of its own (issue 11: the same durability class).
 * `goddb-periodic` is a second GoD-DB cluster with `storage.sync periodic`
 * (acknowledged before fsync, synced every second), driven like `goddb-raw`
 * through a nats-server of its own (the `kv.*` subjects are not per cluster).
 */
export const System = {
  GoddbRaw: 'goddb-raw',
  GoddbSdk: 'goddb-sdk',
  /** The SDK with routing 'direct' (each request to a replica of its key); `goddb-sdk` routes 'any'. */
  GoddbSdkDirect: 'goddb-sdk-direct',
  GoddbPeriodic: 'goddb-periodic',
  Echo: 'echo',
  /** Three responders with GoD-DB's message pattern and nothing else (fanout.ts): the architecture's floor. */
  Fanout: 'fanout',
  /** The same with LMDB as GoD-DB's periodic mode writes it (read before write, one commit per turn, no fsync). */
  FanoutLmdb: 'fanout-lmdb',
  JetstreamKv: 'jetstream-kv',
  JetstreamKvR3: 'jetstream-kv-r3',
  Redis: 'redis',
} as const;
export type System = (typeof System)[keyof typeof System];
/** Copies of each key in `jetstream-kv-r3`, and servers in its cluster: GoD-DB's N. */
export const jetstreamR3Replicas = 3;
export const allSystems: readonly System[] = Object.values(System);

/** The echo responder (echo.ts) answers every request under this prefix. */
export const echoSubjectPrefix = 'bench.echo';
/** The fan-out responders (fanout.ts) serve `<prefix>.put|get.<key>` and talk to each other under it, a prefix per system. */
export const fanoutSubjectPrefix = { [System.Fanout]: 'bench.fanout', [System.FanoutLmdb]: 'bench.fanout-lmdb' } as const;

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
  /** `--ops`: the operations measured, in allOps order (default both). */
  ops: Op[];
  outDir: string;
  /** GoD-DB workers per cluster (default cluster.ts nodeCount, 3). */
  nodes?: number;
  /** `--rate`: every measurement an open loop offering this many requests a second (at most C in flight). */
  ratePerSec?: number;
}

/** Where the load generator finds the system it drives. */
export interface Endpoints {
  natsUrl: string;
  redisPort?: number;
  /** The JetStream KV bucket (the same name on the single server and on the cluster). */
  bucket: string;
  /** A server of the three-server cluster behind `jetstream-kv-r3`, when started. */
  natsR3Url?: string;
  /** The nats-server of the `goddb-periodic` cluster, when started. */
  natsPeriodicUrl?: string;
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
  /** `measure` as an open loop at this rate (closed_loop.ts runOpenLoop); absent: the closed loop. */
  ratePerSec?: number;
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
  /** Open loop only: requests due in the window but not sent, `concurrency` being in flight. */
  missed?: number;
  /** The first error message seen, if any. */
  firstError?: string;
}

/** The load generator's stdout protocol: one JSON object per line. */
export const LoadgenEvent = {
  Ready: 'ready',
  WarmupEnd: 'warmup-end',
  MeasureEnd: 'measure-end',
  /** Preload only: `done` keys written so far. */
  Progress: 'progress',
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
  /** Open loop (`--rate`): requests due in the window but not sent, C being in flight. */
  missed?: number;
  firstError?: string;
  /** CPU over the measured window, % of one core, by process label (nats, b1, loadgen, ...). */
  cpu: Record<string, number>;
  /** CPU time of the system's own processes (see serverLabels) per completed op, µs. */
  serverCpuUsPerOp: number;
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
  /** The median over the repeats of each sample's serverCpuUsPerOp. */
  serverCpuUsPerOp: number;
}
