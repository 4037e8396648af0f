/**
 * Gray failures (issue 10): a member can be alive for the failure detector
 * (its heartbeats flow) and still not answer replica requests: a stuck
 * disk, a stalled event loop between heartbeats, a paused process whose
 * last heartbeats are still fresh. Each coordinator remembers, per member,
 * the replica requests that timed out in a row and when it last answered;
 * after `timeoutsToShun` of them with no answer at all for `quietMs`, it
 * routes around the member for `shunMs` (a circuit breaker, as Cassandra's
 * dynamic snitch and Finagle's failure accrual do), then lets requests
 * through again: one answer in time closes the breaker, another timeout
 * opens it at once. The silence is what tells a stalled member from one
 * behind a lossy link: that one answers most requests, and routing around
 * it (3% loss shunned healthy members in the elastic simulation, seeds 303,
 * 306, 316, 326) costs more than the lost requests. Pure state over a clock.
 */
import type { Clock } from '../../core/clock.js';

export interface ResponsivenessOptions {
  /** Replica requests timed out in a row before the member is routed around. */
  timeoutsToShun: number;
  /** How long it is routed around before requests go to it again. */
  shunMs: number;
  /** No answer at all for this long (besides the timeouts): a stalled member, not a lossy link. */
  quietMs: number;
  /** Members tracked at most (the others are forgotten, oldest first). */
  membersMax: number;
}

interface Record {
  timeouts: number;
  shunnedUntilMs: number;
  lastAnsweredMs: number;
}

export class Responsiveness {
  private readonly byMember = new Map<string, Record>();
  /** Times a member was routed around (for /metrics). */
  shuns = 0;

  constructor(
    private readonly clock: Clock,
    private readonly opts: ResponsivenessOptions,
  ) {}

  /** A replica request to `member` was answered (whatever the answer): it responds. */
  answered(member: string): void {
    this.remember(member, { timeouts: 0, shunnedUntilMs: 0, lastAnsweredMs: this.clock.monotonicMs() });
  }

  /** A replica request to `member` timed out. */
  timedOut(member: string): void {
    const now = this.clock.monotonicMs();
    const r = this.byMember.get(member) ?? { timeouts: 0, shunnedUntilMs: 0, lastAnsweredMs: Number.NEGATIVE_INFINITY };
    r.timeouts++;
    if (r.timeouts >= this.opts.timeoutsToShun && now - r.lastAnsweredMs >= this.opts.quietMs && now >= r.shunnedUntilMs) {
      r.shunnedUntilMs = now + this.opts.shunMs;
      this.shuns++;
    }
    this.remember(member, r);
  }

  private remember(member: string, r: Record): void {
    this.byMember.delete(member);
    this.byMember.set(member, r);
    if (this.byMember.size > this.opts.membersMax) this.byMember.delete(this.byMember.keys().next().value!);
  }

  /** False while `member` is routed around. */
  usable(member: string): boolean {
    const r = this.byMember.get(member);
    return r === undefined || this.clock.monotonicMs() >= r.shunnedUntilMs;
  }

  /** Members routed around now. */
  shunned(): string[] {
    return [...this.byMember].filter(([, r]) => this.clock.monotonicMs() < r.shunnedUntilMs).map(([id]) => id);
  }
}
