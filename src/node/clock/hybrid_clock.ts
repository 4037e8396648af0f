/**
 * The node's hybrid logical clock: the pure rules of core/hlc.ts over the
 * node's wall clock and its persisted high-water mark. Every timestamp the
 * node issues (version timestamps and vector-clock counters) comes from
 * `now()`; every timestamp it receives (versions, contexts, heartbeats) goes
 * through `observe()`.
 */
import type { Clock } from '../../core/clock.js';
import { ClockSkewError } from '../../core/errors.js';
import { acceptableMax, observe, reserve, restart, tick } from '../../core/hlc.js';
import type { MetaStore } from '../../storage/meta.js';

export const hlcMetaName = 'hlc';
/** How far ahead of the issued timestamps the persisted high-water mark runs. */
export const hlcReserveWindowMs = 10_000;

export class HybridClock {
  private last: number;
  private reserved: number;

  constructor(
    private readonly wall: Clock,
    private readonly meta: MetaStore,
    readonly maxSkewMs: number,
  ) {
    const persisted = meta.read(hlcMetaName);
    this.last = restart(persisted, wall.nowMs());
    this.reserved = persisted ?? 0;
  }

  /** A new timestamp, larger than every one issued or observed before, in this run or an earlier one. */
  now(): number {
    const t = tick(this.last, this.wall.nowMs());
    this.ensureReserved(t);
    this.last = t;
    return t;
  }

  /** The latest timestamp issued or observed, without issuing one. */
  peek(): number {
    return this.last;
  }

  /** Advances the clock to `remote`; throws ClockSkewError when it is too far ahead of the wall clock. */
  observe(remote: number, what: string): void {
    const o = observe(this.last, remote, this.wall.nowMs(), this.maxSkewMs);
    if (!o.ok) {
      throw new ClockSkewError(`${what} is ${o.aheadMs} ms ahead of this node's clock, more than the maximum clock skew of ${this.maxSkewMs} ms`);
    }
    this.take(o.last);
  }

  /**
   * Advances the clock to `remote` when it is within the skew; says whether
   * it did. For timestamps that only inform the clock (versions read,
   * heartbeats): one beyond the skew is simply not taken.
   */
  advanceTo(remote: number): boolean {
    const o = observe(this.last, remote, this.wall.nowMs(), this.maxSkewMs);
    if (o.ok) this.take(o.last);
    return o.ok;
  }

  /** The latest timestamp observe() accepts now: the wall clock plus the maximum skew. */
  acceptableMax(): number {
    return acceptableMax(this.wall.nowMs(), this.maxSkewMs);
  }

  /** True when `remote` would be accepted by observe(). */
  acceptable(remote: number): boolean {
    return observe(this.last, remote, this.wall.nowMs(), this.maxSkewMs).ok;
  }

  private take(last: number): void {
    if (last === this.last) return;
    this.ensureReserved(last);
    this.last = last;
  }

  private ensureReserved(t: number): void {
    const next = reserve(t, this.reserved, hlcReserveWindowMs);
    if (next === undefined) return;
    this.meta.write(hlcMetaName, next); // durable before any timestamp past the old reservation exists
    this.reserved = next;
  }
}
