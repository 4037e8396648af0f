/**
 * One node's wall clock in a simulation: the shared fake time plus an
 * offset that the test sets at any moment (skew, or a jump forward or back,
 * as NTP or an operator does to a real machine). Timers are durations and
 * run on the shared scheduler, unaffected by the offset, as setTimeout is by
 * a wall-clock change; so is the monotonic clock, which starts at zero with
 * the process, as performance.now() does. A crashed process's clock is
 * halted: none of its timers fire again, so nothing of the dead process
 * runs on.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import type { FakeClock } from './fake_clock.js';

const inert: TimerHandle = { cancel: () => undefined };

export class NodeClock implements Clock {
  private halted = false;
  private readonly startedMs: number;

  constructor(
    private readonly shared: FakeClock,
    /** Added to the shared time; negative means behind. */
    public offsetMs = 0,
  ) {
    this.startedMs = shared.nowMs();
  }

  nowMs(): number {
    return this.shared.nowMs() + this.offsetMs;
  }

  monotonicMs(): number {
    return this.shared.nowMs() - this.startedMs;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    if (this.halted) return inert;
    return this.shared.setTimer(delayMs, () => {
      if (!this.halted) fn();
    });
  }

  /** The process died: its pending timers never fire. */
  halt(): void {
    this.halted = true;
  }
}
