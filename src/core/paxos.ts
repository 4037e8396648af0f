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
import { visibleValue, type Version } from './version.js';

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
}

/** A replica's answer to prepare. */
export interface PaxosPromise {
  promised: boolean;
  /** The ballot it holds instead, when it refused (the proposer's clock moves past it). */
  refusedFor?: Ballot;
  accepted?: { ballot: Ballot; version: Version };
  committed?: Ballot;
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

/** commit(b) on one replica (the version itself is stored like a write): remembers the latest ballot committed. */
export function commit(state: PaxosState, ballot: Ballot): PaxosState {
  if (state.committed !== undefined && compareBallot(ballot, state.committed) <= 0) return state;
  return { ...state, committed: ballot };
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
    const order = compare(m.clock, c.clock);
    return order === Order.Before || (order === Order.Equal && c.hlc === m.hlc && c.writer === m.writer);
  }));
}
