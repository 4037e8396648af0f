/**
 * Hybrid logical clocks (Kulkarni et al. 2014, "Logical Physical Clocks and
 * Consistent Snapshots"; CockroachDB's hlc package).
 *
 * A timestamp is one safe integer: physical milliseconds times 1000 plus a
 * logical counter (0..999). The packing keeps the order of (physical,
 * logical) pairs, reads like microseconds (so it sits on the same scale as
 * protocol 1's wall-clock-microsecond counters), and fits a CBOR integer
 * until the year 2255. When more than 1000 events share one millisecond the
 * logical part carries into the physical one: the clock then runs a little
 * ahead of the wall, which HLC allows.
 *
 * The same value serves as a version's last-writer-wins timestamp and as
 * the node's vector-clock counter: strictly increasing per node, advanced by
 * every timestamp the node receives, and never lower than the wall clock.
 */
export const logicalPerMs = 1000;

/** The HLC value of a wall-clock reading with a zero logical part. */
export function fromWallMs(wallMs: number): number {
  return Math.floor(wallMs) * logicalPerMs;
}

/** The physical part, in milliseconds. */
export function physicalMs(t: number): number {
  return Math.floor(t / logicalPerMs);
}

/** The next local event: above everything this clock issued or saw, at least the wall clock. */
export function tick(last: number, wallMs: number): number {
  return Math.max(last + 1, fromWallMs(wallMs));
}

/** The largest timestamp a node whose wall clock reads `wallMs` accepts from others. */
export function acceptableMax(wallMs: number, maxSkewMs: number): number {
  return fromWallMs(wallMs + maxSkewMs) + logicalPerMs - 1;
}

/** How far `remote` is ahead of the wall clock, in ms (0 or negative when it is not). */
export function aheadMs(remote: number, wallMs: number): number {
  return physicalMs(remote) - Math.floor(wallMs);
}

export type Observation = { ok: true; last: number } | { ok: false; aheadMs: number };

/**
 * The clock after receiving `remote`: the later of the two, unless `remote`
 * is more than `maxSkewMs` ahead of the wall clock, which is refused (a
 * broken clock or forged input must not drag every node into the future).
 */
export function observe(last: number, remote: number, wallMs: number, maxSkewMs: number): Observation {
  if (remote > acceptableMax(wallMs, maxSkewMs)) return { ok: false, aheadMs: aheadMs(remote, wallMs) };
  return { ok: true, last: Math.max(last, remote) };
}

/**
 * Where a restarted node's clock starts: past every value it may have issued
 * before, which is at most the reservation it persisted (see `reserve`).
 */
export function restart(persistedReservation: number | undefined, wallMs: number): number {
  return Math.max(persistedReservation ?? 0, fromWallMs(wallMs));
}

/**
 * The reservation to persist before issuing `t`, or undefined when the
 * current one covers it. A node persists a value `windowMs` ahead and only
 * issues timestamps up to it, so it writes its high-water mark once per
 * window instead of once per event (Spanner's and CockroachDB's approach).
 */
export function reserve(t: number, reserved: number, windowMs: number): number | undefined {
  return t <= reserved ? undefined : t + fromWallMs(windowMs);
}

/** The HLC time `seconds` after `t` (a version's expiry: its timestamp plus its time to live). */
export function afterSeconds(t: number, seconds: number): number {
  return t + seconds * 1000 * logicalPerMs;
}
