/**
 * The orchestrator: start every system on free ports, preload, run the
 * measurement plan with one load generator process per measurement, stop
 * everything, then print the report and write the JSON record. Whatever
 * happens (success, error, Ctrl-C), everything it started is stopped.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keySpace } from './closed_loop.js';
import { nodeCount, readQuorum, replication, writeQuorum, type Worker } from './cluster.js';
import { serverCpuUsPerOp } from './cpu_per_op.js';
import { askHeap } from './heap.js';
import { runLoadgen } from './measure.js';
import { parseBenchFlags, type BenchFlags } from './options.js';
import { estimateMs, formatDuration, measurementPlan, preloadSystems, type Measurement } from './plan.js';
import { clockTicksPerSecond, readMemory, type Memory } from './proc.js';
import { createProgress, type Progress } from './progress.js';
import { allPids, describeMachine, renderReport, type BenchResult, type NodeMemoryRecord, type PreloadRecord } from './results.js';
import { dataBytesPerNode, formatRate, likeForLikeTargets, ratios, summarize, targets } from './stats.js';
import { requestTimeoutMs, RunningSystems } from './systems.js';
import { Op, type BenchConfig, type LoadgenParams, type Sample } from './types.js';

/**
 * Requests in flight while preloading: enough for the coordinators' per-turn
 * replica batches and LMDB's group commit to fill (a million keys at 64 in
 * flight took about 9 minutes into GoD-DB), well inside GoD-DB's admission limits.
 */
const preloadConcurrency = 512;
const exitInterrupted = 130;

export async function runBenchCommand(flags: BenchFlags): Promise<number> {
  const config = parseBenchFlags(flags);
  if ('error' in config) {
    process.stderr.write(`goddb bench: ${config.error}\n`);
    return 2;
  }
  return runBench(config);
}

export async function runBench(config: BenchConfig): Promise<number> {
  const note = (text: string): void => void process.stderr.write(`${text}\n`);
  const plan = measurementPlan(config);
  const estimate = estimateMs(config);
  const loop = config.ratePerSec === undefined ? '' : `; open loop at ${formatRate(config.ratePerSec)} requests/s, at most C in flight`;
  note(`goddb bench: ${plan.length} measurements (${config.systems.join(', ')}; ${config.ops.join(', ')}; C=${config.concurrency.join(',')}; ${config.repeats} repeat(s)${loop}), estimated ${formatDuration(estimate)}`);
  const systems = new RunningSystems();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(exitInterrupted);
    interrupted = true;
    note(`\ngoddb bench: ${signal}: stopping everything`);
    void systems.stop().finally(() => process.exit(exitInterrupted));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await execute(config, plan, estimate, systems, note, () => interrupted);
    await systems.stop();
    process.stdout.write(renderReport(result));
    const file = await writeResult(config.outDir, result);
    note(`goddb bench: wrote ${file}; wall time ${formatDuration(result.wallMs)}`);
    return 0;
  } catch (err) {
    if (interrupted) return exitInterrupted;
    note(`goddb bench: failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await systems.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function execute(
  config: BenchConfig,
  plan: Measurement[],
  estimate: number,
  systems: RunningSystems,
  note: (text: string) => void,
  isInterrupted: () => boolean,
): Promise<BenchResult> {
  const startedAtMs = Date.now();
  const startedAt = new Date(startedAtMs).toISOString();
  const ticksPerSecond = clockTicksPerSecond();
  await systems.start(config, note);
  const machine = describeMachine({ natsServer: systems.nats?.process.spawnfile, redisServer: systems.redis?.process.spawnfile });
  const base = await memoryOf(systems.workers);
  const preload = await preloadAll(config, systems, note);
  const afterPreload = await memoryOf(systems.workers);
  const samples = await measureAll(config, plan, systems, ticksPerSecond, createProgress(plan.length), isInterrupted);
  const end = await memoryOf(systems.workers);
  const keyBytes = keySpace(config.keys)[0]!.length;
  const dataBytes = dataBytesPerNode(config.keys, keyBytes, config.valueBytes, replication, config.nodes ?? nodeCount);
  const nodes: NodeMemoryRecord[] = systems.workers.map((w) => {
    const record = { base: base.get(w.id)!, afterPreload: afterPreload.get(w.id)!, end: end.get(w.id)! };
    return {
      id: w.id,
      baseBytes: record.base.rssBytes,
      afterPreloadBytes: record.afterPreload.rssBytes,
      endBytes: record.end.rssBytes,
      ...(record.afterPreload.heapUsedBytes === undefined ? {} : { afterPreloadHeapUsedBytes: record.afterPreload.heapUsedBytes }),
      ...(record.end.heapUsedBytes === undefined ? {} : { endHeapUsedBytes: record.end.heapUsedBytes }),
      ...record,
    };
  });
  const medians = summarize(samples);
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    wallMs: Date.now() - startedAtMs,
    estimateMs: estimate,
    machine,
    config: { ...config, nodes: config.nodes ?? nodeCount, replication, readQuorum, writeQuorum, requestTimeoutMs, preloadConcurrency, keyBytes },
    processes: Object.fromEntries(systems.pids),
    preload,
    memory: { dataBytesPerNode: dataBytes, nodes },
    samples,
    medians,
    ratios: ratios(medians),
    targets: targets({ summaries: medians, memory: nodes, dataBytesPerNode: dataBytes, engine: config.engine }),
    likeForLike: likeForLikeTargets(medians),
  };
}

/** Each worker's RSS (from /proc) and V8 heap (asked over IPC; absent if it does not answer). */
async function memoryOf(workers: readonly Worker[]): Promise<Map<string, Memory>> {
  const out = new Map<string, Memory>();
  for (const w of workers) {
    const heap = await askHeap(w.child.process);
    const memory = readMemory(w.child.pid);
    if (memory === undefined) throw new Error(`${w.id} (pid ${w.child.pid}) is gone:\n${w.child.tail()}`);
    out.set(w.id, heap === undefined ? memory : { ...memory, heapUsedBytes: heap.heapUsedBytes, heapTotalBytes: heap.heapTotalBytes });
  }
  return out;
}

function loadgenParams(config: BenchConfig, systems: RunningSystems, m: Omit<Measurement, 'repeat'>, mode: LoadgenParams['mode']): LoadgenParams {
  return {
    system: m.system,
    mode,
    op: m.op,
    concurrency: m.concurrency,
    warmupMs: config.warmupMs,
    durationMs: config.durationMs,
    keys: config.keys,
    valueBytes: config.valueBytes,
    requestTimeoutMs,
    endpoints: systems.endpoints(),
    ...(mode === 'measure' && config.ratePerSec !== undefined ? { ratePerSec: config.ratePerSec } : {}),
  };
}

/** Writes every key once into each system that has get (GoD-DB once for both of its clients). */
async function preloadAll(config: BenchConfig, systems: RunningSystems, note: (text: string) => void): Promise<PreloadRecord[]> {
  const out: PreloadRecord[] = [];
  for (const system of preloadSystems(config.systems)) {
    const params = loadgenParams(config, systems, { system, op: Op.Put, concurrency: preloadConcurrency }, 'preload');
    const onProgress = (done: number, total: number): void => {
      note(`preloading ${system}: ${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} keys (${Math.floor((done / total) * 100)}%)`);
    };
    const { result, pid } = await runLoadgen(params, new Map(), 1, onProgress);
    if (result.errors > 0) throw new Error(`preloading ${system}: ${result.errors} of ${config.keys} puts failed (first: ${result.firstError ?? '?'})`);
    out.push({ system, keys: config.keys, ms: result.windowMs, opsPerSec: result.opsPerSec, errors: result.errors, loadgenPid: pid });
    note(`preloaded ${config.keys.toLocaleString('en-US')} keys into ${system} in ${(result.windowMs / 1000).toFixed(1)} s`);
  }
  return out;
}

async function measureAll(
  config: BenchConfig,
  plan: Measurement[],
  systems: RunningSystems,
  ticksPerSecond: number,
  progress: Progress,
  isInterrupted: () => boolean,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  try {
    for (const m of plan) {
      if (isInterrupted()) throw new Error('interrupted');
      const label = `${m.system} ${m.op} C=${m.concurrency} #${m.repeat}`;
      progress.start(label);
      const run = await runLoadgen(loadgenParams(config, systems, m, 'measure'), systems.pids, ticksPerSecond);
      const r = run.result;
      const sample: Sample = {
        ...m,
        ops: r.ops,
        opsPerSec: r.opsPerSec,
        windowMs: r.windowMs,
        p50Ms: r.p50Us / 1000,
        p99Ms: r.p99Us / 1000,
        p999Ms: r.p999Us / 1000,
        maxMs: r.maxUs / 1000,
        errors: r.errors,
        warmupErrors: r.warmupErrors,
        ...(r.missed === undefined ? {} : { missed: r.missed }),
        ...(r.firstError === undefined ? {} : { firstError: r.firstError }),
        cpu: run.cpu,
        serverCpuUsPerOp: serverCpuUsPerOp(m.system, run.cpu, r.opsPerSec),
        loadgenPid: run.pid,
      };
      samples.push(sample);
      const errors = (r.errors > 0 ? `, ${r.errors} errors (first: ${r.firstError ?? '?'})` : '') + (r.missed ? `, ${r.missed} not sent (C in flight)` : '');
      const cpuText = Number.isFinite(sample.serverCpuUsPerOp) ? `, server CPU ${Math.round(sample.serverCpuUsPerOp)} µs/op` : '';
      progress.done(label, `${formatRate(r.opsPerSec)} ops/s, p50 ${sample.p50Ms.toFixed(2)} ms, p99 ${sample.p99Ms.toFixed(2)} ms${cpuText}${errors}`);
    }
  } finally {
    progress.stop();
  }
  return samples;
}

async function writeResult(outDir: string, result: BenchResult): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, `${result.startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify({ ...result, allPids: allPids(result) }, null, 2)}\n`);
  return file;
}
