/**
 * A fake clock for simulations: time moves only when the test moves it, and
 * timers fire in (time, creation) order. Between timers the microtask queue
 * and immediates are drained, so promise chains in node code run to their
 * next timer before time moves on.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

const settle = () => new Promise<void>((r) => setImmediate(r));

export class FakeClock implements Clock {
  private now: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.now = startMs;
  }

  nowMs(): number {
    return this.now;
  }

  /** Simulated time itself: per-node wall-clock offsets and jumps do not touch it. */
  monotonicMs(): number {
    return this.now;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const t: Timer = { at: this.now + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    let lo = 0;
    let hi = this.timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.timers[mid]!;
      if (m.at < t.at || (m.at === t.at && m.seq < t.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.timers.splice(lo, 0, t);
    return { cancel: () => (t.cancelled = true) };
  }

  /** Fires every timer due within the next `ms`, in order, then sets the time to now + ms. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    await settle();
    for (;;) {
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      if (next.cancelled) continue;
      this.now = Math.max(this.now, next.at);
      next.fn();
      await settle();
    }
    this.now = end;
    await settle();
  }

  /** Runs the clock until `p` settles; fails when that takes more than `maxMs` of simulated time. */
  async run<T>(p: Promise<T>, maxMs = 60_000): Promise<T> {
    let done = false;
    const tracked = p.finally(() => (done = true));
    tracked.catch(() => undefined);
    const end = this.now + maxMs;
    await settle();
    while (!done) {
      if (this.now >= end) throw new Error(`still pending after ${maxMs}ms of simulated time`);
      const next = this.timers.find((t) => !t.cancelled);
      await this.advance(next ? Math.max(0, Math.min(next.at, end) - this.now) : end - this.now);
    }
    return tracked;
  }
}
