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

/**
 * The warm-up, the measured window and what is counted in it, for both
 * loops: only requests that complete inside the window count, their
 * latencies in an HDR histogram in microseconds.
 */
class MeasuredWindow {
  phase: Phase = 'warmup';
  /** Resolves when the window ends. */
  readonly ended: Promise<void>;
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: latencyUsMax, numberOfSignificantValueDigits: 3 });
  private readonly timers: NodeJS.Timeout[];
  private startMs = 0;
  private endMs = 0;
  private errors = 0;
  private warmupErrors = 0;
  private firstError: string | undefined;

  constructor(plan: LoopPlan, hooks: LoopHooks) {
    let end = (): void => undefined;
    this.ended = new Promise((resolve) => (end = resolve));
    this.timers = [
      setTimeout(() => {
        this.phase = 'measure';
        this.startMs = performance.now();
        hooks.onWarmupEnd();
      }, plan.warmupMs),
      setTimeout(() => {
        this.phase = 'done';
        this.endMs = performance.now();
        hooks.onMeasureEnd();
        end();
      }, plan.warmupMs + plan.durationMs),
    ];
  }

  /** A request sent at `sentMs` was answered now. */
  answered(sentMs: number): void {
    if (this.phase === 'measure') this.histogram.recordValue(Math.max(1, Math.round((performance.now() - sentMs) * 1000)));
  }

  failed(err: unknown): void {
    if (this.phase === 'measure') this.errors++;
    else if (this.phase === 'warmup') this.warmupErrors++;
    this.firstError ??= err instanceof Error ? err.message : String(err);
  }

  /** The result; the window's timers are stopped and its histogram freed. */
  result(extra: Partial<LoadgenResult> = {}): LoadgenResult {
    for (const t of this.timers) clearTimeout(t);
    const windowMs = this.endMs - this.startMs;
    const ops = this.histogram.totalCount;
    const result: LoadgenResult = {
      ops,
      opsPerSec: windowMs > 0 ? ops / (windowMs / 1000) : 0,
      windowMs,
      p50Us: this.histogram.getValueAtPercentile(50),
      p99Us: this.histogram.getValueAtPercentile(99),
      p999Us: this.histogram.getValueAtPercentile(99.9),
      maxUs: this.histogram.maxValue,
      errors: this.errors,
      warmupErrors: this.warmupErrors,
      ...extra,
    };
    this.histogram.destroy();
    if (this.firstError !== undefined) result.firstError = this.firstError;
    return result;
  }
}

function sender(client: BenchClient, plan: LoopPlan): (key: string) => Promise<void> {
  return plan.op === Op.Put ? (key) => client.put(key, plan.value) : (key) => client.get(key);
}

function randomKey(plan: LoopPlan): string {
  return plan.keys[Math.floor(Math.random() * plan.keys.length)]!;
}

export async function runClosedLoop(client: BenchClient, plan: LoopPlan, hooks: LoopHooks): Promise<LoadgenResult> {
  const send = sender(client, plan);
  const w = new MeasuredWindow(plan, hooks);
  const loop = async (): Promise<void> => {
    while (w.phase !== 'done') {
      const sentMs = performance.now();
      try {
        await send(randomKey(plan));
        w.answered(sentMs);
      } catch (err) {
        w.failed(err);
        // A client that fails synchronously would otherwise starve the timers that end the run.
        await yieldToEventLoop();
      }
    }
  };
  // The loops catch every failure, so this never rejects.
  await Promise.all(Array.from({ length: plan.concurrency }, loop));
  return w.result();
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
  const send = sender(client, plan);
  const w = new MeasuredWindow(plan, hooks);
  const inflight = new Set<Promise<void>>();
  const startMs = performance.now();
  let issued = 0;
  let missed = 0;
  const start = (): void => {
    const sentMs = performance.now();
    const request = send(randomKey(plan)).then(() => w.answered(sentMs), (err: unknown) => w.failed(err)).finally(() => inflight.delete(request));
    inflight.add(request);
  };
  let tickTimer: NodeJS.Timeout | undefined;
  // Each tick sends every request due by now: late timers catch up, so the rate holds on average.
  const tick = (): void => {
    const due = Math.floor(((performance.now() - startMs) / 1000) * plan.ratePerSec);
    for (; issued < due && w.phase !== 'done'; issued++) {
      if (inflight.size < plan.concurrency) start();
      else if (w.phase === 'measure') missed++;
    }
    if (w.phase !== 'done') tickTimer = setTimeout(tick, openLoopTickMs);
  };
  tick();
  await w.ended;
  clearTimeout(tickTimer);
  await Promise.allSettled([...inflight]);
  return w.result({ missed });
}

/** How often the open loop looks for requests due (it sends every one due at each look). */
const openLoopTickMs = 1;

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
