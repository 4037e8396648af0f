/**
 * The phi accrual failure detector (Hayashibara et al. 2004; Cassandra's
 * FailureDetector, Akka's PhiAccrualFailureDetector).
 *
 * Instead of "silent for T ms", a member's suspicion phi grows with the
 * time since its last heartbeat, measured against the distribution of the
 * gaps between its heartbeats so far: phi = -log10(P(a gap this long)).
 * phi 8 means the chance that the member is merely late is 1e-8. Gaps are
 * modelled as normal, with a floor on the deviation so that a perfectly
 * regular member is not convicted by the first late heartbeat.
 *
 * Pure: arrival times in, a number out.
 */
export interface ArrivalWindow {
  /** The latest gaps between heartbeats, oldest first (at most windowSize). */
  readonly gapsMs: readonly number[];
  /** When the last heartbeat arrived (monotonic ms), undefined before the first. */
  readonly lastMs: number | undefined;
  /**
   * The gaps' mean (undefined without gaps) and variance (undefined with
   * fewer than two), computed once per heartbeat: phi is asked for every
   * replica of every operation (is it up?), heartbeats arrive once a second.
   */
  readonly meanMs: number | undefined;
  readonly varianceMs2: number | undefined;
}

export interface PhiSettings {
  /** Gaps remembered (Cassandra keeps 1000). */
  windowSize: number;
  /** The heartbeat interval: the assumed gap until real ones are measured. */
  intervalMs: number;
  /** Floor on the deviation of the gaps. */
  minStdDevMs: number;
}

export const emptyWindow: ArrivalWindow = { gapsMs: [], lastMs: undefined, meanMs: undefined, varianceMs2: undefined };

/** The window after a heartbeat arrived at `nowMs`. */
export function recordArrival(w: ArrivalWindow, nowMs: number, s: PhiSettings): ArrivalWindow {
  if (w.lastMs === undefined) return { ...emptyWindow, lastMs: nowMs };
  const gap = Math.max(0, nowMs - w.lastMs);
  const gapsMs = w.gapsMs.length >= s.windowSize ? [...w.gapsMs.slice(w.gapsMs.length - s.windowSize + 1), gap] : [...w.gapsMs, gap];
  const meanMs = gapsMs.reduce((a, b) => a + b, 0) / gapsMs.length;
  const varianceMs2 = gapsMs.length > 1 ? gapsMs.reduce((a, g) => a + (g - meanMs) ** 2, 0) / gapsMs.length : undefined;
  return { gapsMs, lastMs: nowMs, meanMs, varianceMs2 };
}

/** Suspicion of a member at `nowMs`: 0 just after a heartbeat, growing while it stays silent; Infinity if never heard. */
export function phi(w: ArrivalWindow, nowMs: number, s: PhiSettings): number {
  if (w.lastMs === undefined) return Number.POSITIVE_INFINITY;
  // Until gaps are measured, assume the configured interval with a quarter of it as deviation.
  const mean = w.meanMs ?? s.intervalMs;
  const variance = w.varianceMs2 ?? (s.intervalMs / 4) ** 2;
  const std = Math.max(Math.sqrt(variance), s.minStdDevMs);
  const y = (nowMs - w.lastMs - mean) / std;
  // The logistic approximation of the normal CDF (Bowling et al. 2009), as Akka uses it.
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  const tail = nowMs - w.lastMs > mean ? e / (1 + e) : 1 - 1 / (1 + e);
  return tail <= 0 ? Number.POSITIVE_INFINITY : -Math.log10(tail);
}
