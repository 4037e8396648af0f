/**
 * The load generator, one process per measurement (and per preload), so
 * that its CPU is measured apart from the orchestrator's and no run inherits
 * another's heap. The orchestrator passes its parameters as JSON in the
 * environment variable below; it answers on stdout, one JSON object a line:
 *
 *   {"event":"ready"}          connected; the warm-up starts now
 *   {"event":"warmup-end"}     the measured window starts now
 *   {"event":"measure-end"}    the measured window ended now
 *   {"event":"progress", ...}  preload only, every few seconds: `done` keys of `total`
 *   {"event":"result", ...}    LoadgenResult (preload: ops, opsPerSec, errors)
 *
 * It exits when done, on SIGTERM, and when its parent goes away (stdin closes).
 */
import { randomBytes } from 'node:crypto';
import { openClient } from './client.js';
import { keySpace, preload, runClosedLoop, runOpenLoop } from './closed_loop.js';
import { LoadgenEvent, loadgenParamsEnv, type LoadgenParams, type LoadgenResult } from './types.js';

/** How often a preload reports how far it got. */
const progressIntervalMs = 2_000;

function emit(event: LoadgenEvent, fields: object = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

async function run(params: LoadgenParams): Promise<LoadgenResult> {
  const client = await openClient(params);
  const keys = keySpace(params.keys);
  const value = new Uint8Array(randomBytes(params.valueBytes));
  try {
    emit(LoadgenEvent.Ready);
    if (params.mode === 'measure') {
      const hooks = { onWarmupEnd: () => emit(LoadgenEvent.WarmupEnd), onMeasureEnd: () => emit(LoadgenEvent.MeasureEnd) };
      const { ratePerSec } = params;
      if (ratePerSec !== undefined) return await runOpenLoop(client, { ...params, keys, value, ratePerSec }, hooks);
      return await runClosedLoop(client, { ...params, keys, value }, hooks);
    }
    const startMs = performance.now();
    const progress = { written: 0 };
    const timer = setInterval(() => emit(LoadgenEvent.Progress, { done: progress.written, total: keys.length }), progressIntervalMs);
    const { errors, firstError } = await preload(client, keys, value, params.concurrency, progress).finally(() => clearInterval(timer));
    const windowMs = performance.now() - startMs;
    const ops = keys.length - errors;
    return { ops, opsPerSec: ops / (windowMs / 1000), windowMs, p50Us: 0, p99Us: 0, p999Us: 0, maxUs: 0, errors, warmupErrors: 0, ...(firstError === undefined ? {} : { firstError }) };
  } finally {
    await client.close().catch(() => undefined);
  }
}

function main(): void {
  const raw = process.env[loadgenParamsEnv];
  if (raw === undefined) {
    process.stderr.write(`loadgen: set ${loadgenParamsEnv} to its parameters as JSON (the orchestrator does)\n`);
    process.exit(2);
  }
  process.on('SIGTERM', () => process.exit(143));
  process.stdin.on('end', () => process.exit(1));
  process.stdin.resume();
  run(JSON.parse(raw) as LoadgenParams).then(
    (result) => {
      emit(LoadgenEvent.Result, result);
      process.stdout.write('', () => process.exit(0));
    },
    (err: unknown) => {
      process.stderr.write(`loadgen: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

main();
