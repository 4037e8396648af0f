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

/** Whether timer `a` fires before timer `b`: (time, creation) order. */
function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

const settle = () => new Promise<void>((r) => setImmediate(r));

export class FakeClock implements Clock {
  private now: number;
  private seq = 0;
  /** A binary min-heap by (at, seq); cancelled timers stay until they reach the top. */
  private readonly timers: Timer[] = [];

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
    const heap = this.timers;
    let i = heap.push(t) - 1;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (!before(t, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = t;
    return { cancel: () => (t.cancelled = true) };
  }

  /** The first timer not cancelled, left in the heap (cancelled ones before it are dropped). */
  private peek(): Timer | undefined {
    while (this.timers.length > 0 && this.timers[0]!.cancelled) this.pop();
    return this.timers[0];
  }

  private pop(): Timer | undefined {
    const heap = this.timers;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const child = r < heap.length && before(heap[r]!, heap[l]!) ? r : l;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }

  /** Fires every timer due within the next `ms`, in order, then sets the time to now + ms. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    await settle();
    for (;;) {
      const next = this.peek();
      if (!next || next.at > end) break;
      this.pop();
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
      const next = this.peek();
      await this.advance(next ? Math.max(0, Math.min(next.at, end) - this.now) : end - this.now);
    }
    return tracked;
  }
}
