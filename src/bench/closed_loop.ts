/**
 * The closed loop: C async loops, each with one request in flight, sending
 * the next as soon as the last completes, to uniformly random keys. A
 * warm-up, then the measured window; only requests that complete inside the
 * window count, and their latencies go into an HDR histogram in microseconds.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import * as hdr from 'hdr-histogram-js';
import type { BenchClient } from './client.js';
import { Op, type LoadgenResult } from './types.js';

/** One hour in microseconds: no request waits that long (timeouts are seconds). */
const latencyUsMax = 3_600_000_000;

export interface LoopPlan {
  op: Op;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  keys: string[];
  value: Uint8Array;
}

export interface LoopHooks {
  onWarmupEnd(): void;
  onMeasureEnd(): void;
}

type Phase = 'warmup' | 'measure' | 'done';

export async function runClosedLoop(client: BenchClient, plan: LoopPlan, hooks: LoopHooks): Promise<LoadgenResult> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: latencyUsMax, numberOfSignificantValueDigits: 3 });
  const send = plan.op === Op.Put ? (key: string) => client.put(key, plan.value) : (key: string) => client.get(key);
  let phase: Phase = 'warmup';
  let windowStartMs = 0;
  let windowEndMs = 0;
  let errors = 0;
  let warmupErrors = 0;
  let firstError: string | undefined;
  const warmupTimer = setTimeout(() => {
    phase = 'measure';
    windowStartMs = performance.now();
    hooks.onWarmupEnd();
  }, plan.warmupMs);
  const endTimer = setTimeout(() => {
    phase = 'done';
    windowEndMs = performance.now();
    hooks.onMeasureEnd();
  }, plan.warmupMs + plan.durationMs);

  const loop = async (): Promise<void> => {
    while (phase !== 'done') {
      const key = plan.keys[Math.floor(Math.random() * plan.keys.length)]!;
      const startMs = performance.now();
      try {
        await send(key);
        if (phase === 'measure') histogram.recordValue(Math.max(1, Math.round((performance.now() - startMs) * 1000)));
      } catch (err) {
        if (phase === 'measure') errors++;
        else if (phase === 'warmup') warmupErrors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        // A client that fails synchronously would otherwise starve the timers that end the run.
        await yieldToEventLoop();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: plan.concurrency }, loop));
  } finally {
    clearTimeout(warmupTimer);
    clearTimeout(endTimer);
  }
  const windowMs = windowEndMs - windowStartMs;
  const ops = histogram.totalCount;
  const result: LoadgenResult = {
    ops,
    opsPerSec: windowMs > 0 ? ops / (windowMs / 1000) : 0,
    windowMs,
    p50Us: histogram.getValueAtPercentile(50),
    p99Us: histogram.getValueAtPercentile(99),
    p999Us: histogram.getValueAtPercentile(99.9),
    maxUs: histogram.maxValue,
    errors,
    warmupErrors,
  };
  histogram.destroy();
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

/**
 * The open loop (`--rate`): requests start at `ratePerSec`, evenly spaced
 * whatever the answers do, to uniformly random keys, with at most
 * `concurrency` in flight: a request due while that many are out is not sent
 * and is counted in `missed` (the system is past that rate). The same
 * warm-up and window as the closed loop; latencies from each request's send.
 * At a fixed offered rate both builds of an A/B comparison batch alike, so
 * their server CPU per operation differs by what their code costs, not by
 * how much each batches at the throughput it reached (a closed loop's).
 */
export async function runOpenLoop(client: BenchClient, plan: LoopPlan & { ratePerSec: number }, hooks: LoopHooks): Promise<LoadgenResult> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: latencyUsMax, numberOfSignificantValueDigits: 3 });
  const send = plan.op === Op.Put ? (key: string) => client.put(key, plan.value) : (key: string) => client.get(key);
  let phase: Phase = 'warmup';
  let windowStartMs = 0;
  let windowEndMs = 0;
  let errors = 0;
  let warmupErrors = 0;
  let missed = 0;
  let firstError: string | undefined;
  const inflight = new Set<Promise<void>>();
  const startMs = performance.now();
  let issued = 0;
  const start = (): void => {
    const key = plan.keys[Math.floor(Math.random() * plan.keys.length)]!;
    const sentMs = performance.now();
    const request = send(key).then(
      () => {
        if (phase === 'measure') histogram.recordValue(Math.max(1, Math.round((performance.now() - sentMs) * 1000)));
      },
      (err: unknown) => {
        if (phase === 'measure') errors++;
        else if (phase === 'warmup') warmupErrors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      },
    ).finally(() => inflight.delete(request));
    inflight.add(request);
  };
  const warmupTimer = setTimeout(() => {
    phase = 'measure';
    windowStartMs = performance.now();
    hooks.onWarmupEnd();
  }, plan.warmupMs);
  await new Promise<void>((resolve) => {
    setTimeout(() => {
      phase = 'done';
      windowEndMs = performance.now();
      hooks.onMeasureEnd();
      clearTimeout(tickTimer);
      resolve();
    }, plan.warmupMs + plan.durationMs);
    let tickTimer: NodeJS.Timeout | undefined;
    // Each tick sends every request due by now: late timers catch up, so the rate holds on average.
    const tick = (): void => {
      const due = Math.floor(((performance.now() - startMs) / 1000) * plan.ratePerSec);
      for (; issued < due && phase !== 'done'; issued++) {
        if (inflight.size < plan.concurrency) start();
        else if (phase === 'measure') missed++;
      }
      if (phase !== 'done') tickTimer = setTimeout(tick, openLoopTickMs);
    };
    tick();
  });
  clearTimeout(warmupTimer);
  await Promise.allSettled([...inflight]);
  const windowMs = windowEndMs - windowStartMs;
  const ops = histogram.totalCount;
  const result: LoadgenResult = {
    ops,
    opsPerSec: windowMs > 0 ? ops / (windowMs / 1000) : 0,
    windowMs,
    p50Us: histogram.getValueAtPercentile(50),
    p99Us: histogram.getValueAtPercentile(99),
    p999Us: histogram.getValueAtPercentile(99.9),
    maxUs: histogram.maxValue,
    errors,
    warmupErrors,
    missed,
  };
  histogram.destroy();
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

/** How often the open loop looks for requests due (it sends every one due at each look). */
const openLoopTickMs = 1;

/** Writes every key once, `concurrency` at a time; resolves with the count of failures and the first one. */
/** Writes every key once, `concurrency` at a time; `progress.written` counts the puts answered (either way) so far. */
export async function preload(
  client: BenchClient,
  keys: string[],
  value: Uint8Array,
  concurrency: number,
  progress: { written: number } = { written: 0 },
): Promise<{ errors: number; firstError?: string }> {
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const loop = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      try {
        await client.put(key, value);
        progress.written++;
      } catch (err) {
        progress.written++;
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        await yieldToEventLoop();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return firstError === undefined ? { errors } : { errors, firstError };
}

/** The benchmark's key space: `key` and a zero-padded index, all the same length. */
export function keySpace(count: number): string[] {
  const width = String(Math.max(0, count - 1)).length;
  return Array.from({ length: count }, (_, i) => `key${String(i).padStart(width, '0')}`);
}
