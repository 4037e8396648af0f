/**
 * The order of measurements and the run's expected length, pure. Repeats
 * are the outer loop and systems the inner one (rotated each repeat), so a
 * burst of noise on the shared machine hits every system alike rather than
 * all repeats of one.
 */
import { System, type BenchConfig, type Op } from './types.js';

export interface Measurement {
  system: System;
  op: Op;
  concurrency: number;
  /** 1-based. */
  repeat: number;
}

/** Measured on the 2-core machine: node start, imports, connect, drain and exit of one load generator. */
export const loadgenOverheadMs = 300;
/** nats-server, redis-server, the echo responder, three workers, the buckets (one on a new cluster), and the stop at the end. */
export const setupMs = 8_000;
/** Preload rates for the estimate, as measured on the 2-core machine (GoD-DB on LMDB fsyncs every write). */
export const preloadOpsPerSecEstimate = { goddb: 1_000, other: 10_000 } as const;

export function measurementPlan(config: Pick<BenchConfig, 'systems' | 'concurrency' | 'repeats' | 'ops'>): Measurement[] {
  const out: Measurement[] = [];
  for (let repeat = 1; repeat <= config.repeats; repeat++) {
    const shift = (repeat - 1) % config.systems.length;
    const systems = [...config.systems.slice(shift), ...config.systems.slice(0, shift)];
    for (const op of config.ops) {
      for (const concurrency of config.concurrency) {
        for (const system of systems) out.push({ system, op, concurrency, repeat });
      }
    }
  }
  return out;
}

/** The systems that hold data and get preloaded: GoD-DB once for both of its clients. */
export function preloadSystems(systems: readonly System[]): System[] {
  const out: System[] = [];
  if (systems.includes(System.GoddbRaw)) out.push(System.GoddbRaw);
  else if (systems.includes(System.GoddbSdk)) out.push(System.GoddbSdk);
  else if (systems.includes(System.GoddbSdkDirect)) out.push(System.GoddbSdkDirect);
  if (systems.includes(System.GoddbPeriodic)) out.push(System.GoddbPeriodic);
  if (systems.includes(System.Fanout)) out.push(System.Fanout);
  if (systems.includes(System.FanoutLmdb)) out.push(System.FanoutLmdb);
  if (systems.includes(System.JetstreamKv)) out.push(System.JetstreamKv);
  if (systems.includes(System.JetstreamKvR3)) out.push(System.JetstreamKvR3);
  if (systems.includes(System.Redis)) out.push(System.Redis);
  return out;
}

export function estimateMs(config: BenchConfig): number {
  const measurements = measurementPlan(config).length;
  const preloadMs = preloadSystems(config.systems).reduce((sum, system) => {
    const rate = system === System.GoddbRaw || system === System.GoddbSdk || system === System.GoddbSdkDirect || system === System.GoddbPeriodic ? preloadOpsPerSecEstimate.goddb : preloadOpsPerSecEstimate.other;
    return sum + loadgenOverheadMs + (config.keys / rate) * 1000;
  }, 0);
  return setupMs + measurements * (config.warmupMs + config.durationMs + loadgenOverheadMs) + preloadMs;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}
