/**
 * Spreads background work (range moves, anti-entropy builds and repairs)
 * over time at a budget: each piece of work done pushes the next start later
 * by what it cost, so bursts are followed by quiet and the average rate keeps
 * to the budget, whatever the piece sizes.
 */
import type { Clock } from '../core/clock.js';

export class Pacer {
  private nextAtMs = 0;

  constructor(private readonly clock: Clock) {}

  /** Counts `costMs` of the budget as spent now (the work just done). */
  spent(costMs: number): void {
    this.nextAtMs = Math.max(this.nextAtMs, this.clock.monotonicMs()) + costMs;
  }

  /** Resolves once the budget allows the next piece of work. */
  async ready(): Promise<void> {
    const wait = this.nextAtMs - this.clock.monotonicMs();
    if (wait > 0) await new Promise<void>((r) => this.clock.setTimer(wait, r));
  }
}
