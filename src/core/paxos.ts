/**
 * Conditional writes, linearizable per key (issue 12): single-decree Paxos
 * among a key's N replicas, as Cassandra's lightweight transactions
 * (CASSANDRA-5062, "Paxos Made Simple"). Pure: the acceptor's rules and the
 * proposer's reading of a round of promises; node/paxos does the I/O.
 *
 * Each replica keeps, per key, the highest ballot it promised, the last
 * proposal it accepted (ballot and version) and the highest ballot it saw
 * committed. A round:
 *   1. prepare(b): a majority promises b (none later promised), each
 *      answering what it accepted, what it committed and the key's versions;
 *   2. a proposal accepted after the latest commit the majority knows of
 *      may have been chosen: it is proposed again under b and committed,
 *      and the round starts over;
 *   3. otherwise the union of the majority's versions is the key's current
 *      state (every commit reached a majority, or is found in step 2): the
 *      condition is judged on it, and on success the new version is
 *      proposed under b (accepted by a majority that promised nothing later)
 *   4. and committed: stored like any write on the replicas.
 * A later round's majority meets every earlier round's, so a chosen
 * proposal is never lost or replaced by an older one.
 */
import { compare, Order, type VClock } from './vclock.js';
import { versionOrder, visibleValue, type Version } from './version.js';

/** A proposal number: a proposer's HLC reading, ties broken by its node id (unique per proposer and reading). */
export interface Ballot {
  hlc: number;
  node: string;
}

export function compareBallot(a: Ballot, b: Ballot): number {
  if (a.hlc !== b.hlc) return a.hlc - b.hlc;
  return a.node === b.node ? 0 : a.node < b.node ? -1 : 1;
}

/** One key's Paxos state on one replica (what survives a restart of it). */
export interface PaxosState {
  promised?: Ballot;
  accepted?: { ballot: Ballot; version: Version };
  committed?: Ballot;
  /**
   * The commits with the latest ballots seen here (the version's writer and
   * timestamp: unique per version), at most recentCommitsMax, in ballot
   * order: a proposer whose proposal another one finished learns from them
   * that it took effect, even after later commits replaced it. Keeping the
   * latest ballots (not the latest arrivals) means a full list still holds
   * every commit with a ballot above its first.
   */
  recent?: RecentCommit[];
}

/** A committed version's identity (its writer and its timestamp, an HLC reading of the writer never reused) and the ballot it was committed under. */
export interface RecentCommit {
  writer: string;
  hlc: number;
  ballot: Ballot;
}

/** Commits a replica remembers per key (PaxosState.recent). */
export const recentCommitsMax = 16;

/** A replica's answer to prepare. */
export interface PaxosPromise {
  promised: boolean;
  /** The ballot it holds instead, when it refused (the proposer's clock moves past it). */
  refusedFor?: Ballot;
  accepted?: { ballot: Ballot; version: Version };
  committed?: Ballot;
  /** The commits with the latest ballots it saw (PaxosState.recent). */
  recent?: RecentCommit[];
  /** The key's versions in the replica's store. */
  versions: Version[];
}

/** A replica's answer to a proposal. */
export interface Acceptance {
  accepted: boolean;
  refusedFor?: Ballot;
}

/** prepare(b) on one replica: promised when b is later than every ballot it promised. */
export function prepare(state: PaxosState, ballot: Ballot): { ok: boolean; state: PaxosState } {
  if (state.promised !== undefined && compareBallot(ballot, state.promised) <= 0) return { ok: false, state };
  return { ok: true, state: { ...state, promised: ballot } };
}

/** propose(b, v) on one replica: accepted unless it promised a later ballot since. */
export function propose(state: PaxosState, ballot: Ballot, version: Version): { ok: boolean; state: PaxosState } {
  if (state.promised !== undefined && compareBallot(ballot, state.promised) < 0) return { ok: false, state };
  return { ok: true, state: { ...state, promised: ballot, accepted: { ballot, version } } };
}

/** commit(b, v) on one replica (the version itself is stored like a write): remembers the latest ballot committed and v among the recent commits. */
export function commit(state: PaxosState, ballot: Ballot, version: Version): PaxosState {
  const known = state.recent?.some((r) => r.writer === version.writer && r.hlc === version.hlc) ?? false;
  const later = state.committed === undefined || compareBallot(ballot, state.committed) > 0;
  if (known && !later) return state;
  const next: PaxosState = { ...state };
  if (later) next.committed = ballot;
  if (!known) {
    const recent = [...(state.recent ?? []), { writer: version.writer, hlc: version.hlc, ballot }];
    next.recent = recent.sort((a, b) => compareBallot(a.ballot, b.ballot)).slice(-recentCommitsMax);
  }
  return next;
}

/** True when one of the promises remembers committing `v`. */
export function committedIn(promises: readonly PaxosPromise[], v: Version): boolean {
  return promises.some((p) => p.recent?.some((r) => r.writer === v.writer && r.hlc === v.hlc) ?? false);
}

/**
 * What a majority of promises says: a proposal that may have been chosen
 * and must be finished first (accepted after the latest commit any of them
 * knows), or none.
 */
export function unfinished(promises: readonly PaxosPromise[]): { ballot: Ballot; version: Version } | undefined {
  let latestCommit: Ballot | undefined;
  let latestAccepted: { ballot: Ballot; version: Version } | undefined;
  for (const p of promises) {
    if (p.committed && (!latestCommit || compareBallot(p.committed, latestCommit) > 0)) latestCommit = p.committed;
    if (p.accepted && (!latestAccepted || compareBallot(p.accepted.ballot, latestAccepted.ballot) > 0)) latestAccepted = p.accepted;
  }
  if (!latestAccepted) return undefined;
  return !latestCommit || compareBallot(latestAccepted.ballot, latestCommit) > 0 ? latestAccepted : undefined;
}

/** The condition of a conditional write: absent (create only), or the current context is exactly this one. */
export type Condition = { ifAbsent: true } | { ifMatch: VClock };

/**
 * Whether `condition` holds for the key's current versions at HLC time
 * `nowHlc`: absent means no live value (never written, deleted or expired);
 * a match needs a live value whose context (the merge of every sibling's
 * clock, what a read returns) equals the one given.
 */
export function conditionHolds(condition: Condition, current: readonly Version[], context: VClock, nowHlc: number): boolean {
  const live = visibleValue(current, nowHlc);
  if ('ifAbsent' in condition) return live === undefined;
  return live !== undefined && compare(context, condition.ifMatch) === Order.Equal;
}

/**
 * True when one of `mine` (the versions a proposer proposed in this
 * operation, one per attempt) took effect: a current version is it or
 * descends from it. At most one of them can ever be chosen.
 */
export function tookEffect(mine: readonly Version[], current: readonly Version[]): boolean {
  return mine.some((m) => current.some((c) => {
    // versionOrder: a dotted version (siblings) descends from m only when its past holds m; otherwise the clock order.
    const order = versionOrder(m, c);
    return order === Order.Before || (order === Order.Equal && c.hlc === m.hlc && c.writer === m.writer);
  }));
}

/**
 * Bugs a test plants in a copy of the protocol to show that the
 * linearizability checker catches them (test/sim/conditional.test.ts);
 * only NodeDeps can set one, never configuration.
 *   ignoreUnfinished: a proposer never finishes a proposal that may have been chosen;
 *   acceptAnyBallot:  an acceptor promises and accepts whatever ballot comes.
 */
export const PlantedBug = { IgnoreUnfinished: 'ignoreUnfinished', AcceptAnyBallot: 'acceptAnyBallot' } as const;
export type PlantedBug = (typeof PlantedBug)[keyof typeof PlantedBug];
