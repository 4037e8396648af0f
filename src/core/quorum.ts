/**
 * The quorum tally (etcd raft quorum/majority.go: VoteResult). Pure: the
 * coordinator records each replica's outcome and asks what the request is.
 */
export const QuorumResult = {
  Pending: 'pending',
  Won: 'won',
  Lost: 'lost',
} as const;
export type QuorumResult = (typeof QuorumResult)[keyof typeof QuorumResult];

export interface Tally {
  /** Replicas asked. */
  readonly asked: number;
  /** Successes needed (R or W). */
  readonly needed: number;
  readonly succeeded: number;
  readonly failed: number;
}

export function newTally(asked: number, needed: number): Tally {
  return { asked, needed, succeeded: 0, failed: 0 };
}

export function recordSuccess(t: Tally): Tally {
  return { ...t, succeeded: t.succeeded + 1 };
}

export function recordFailure(t: Tally): Tally {
  return { ...t, failed: t.failed + 1 };
}

/** Won once `needed` succeeded; lost once too few can still answer to get there. */
export function result(t: Tally): QuorumResult {
  if (t.succeeded >= t.needed) return QuorumResult.Won;
  if (t.asked - t.failed < t.needed) return QuorumResult.Lost;
  return QuorumResult.Pending;
}

export function answered(t: Tally): number {
  return t.succeeded + t.failed;
}
