/**
 * Versions, siblings and reconciliation (Dynamo section 4.4, Riak siblings).
 *
 * A replica stores, per key, the set of versions none of which descends from
 * another (the siblings). Merging drops every version that another one
 * descends from. A read reconciles what the replicas returned: under `lww`
 * the concurrent siblings collapse into one version that carries the value of
 * the last writer and the merge of all their clocks, so writing it back (read
 * repair) supersedes every sibling on every replica.
 */
import { compare, mergeAll, Order, type VClock } from './vclock.js';

export interface Version {
  clock: VClock;
  /** Wall-clock milliseconds at the coordinator that wrote it. */
  timestampMs: number;
  /** Id of the coordinating node; breaks timestamp ties deterministically. */
  writer: string;
  tombstone: boolean;
  /** Empty for tombstones. */
  value: Uint8Array;
}

export const ConflictPolicy = { Lww: 'lww' } as const;
export type ConflictPolicy = (typeof ConflictPolicy)[keyof typeof ConflictPolicy];

/** Total order used by last-writer-wins: later timestamp, then larger writer id, then value bytes. */
export function lwwCompare(a: Version, b: Version): number {
  if (a.timestampMs !== b.timestampMs) return a.timestampMs - b.timestampMs;
  if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1;
  if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1; // a delete wins a perfect tie
  return Buffer.compare(a.value, b.value);
}

function sameVersion(a: Version, b: Version): boolean {
  return lwwCompare(a, b) === 0 && compare(a.clock, b.clock) === Order.Equal;
}

/**
 * Adds `incoming` to `siblings`: keeps exactly the versions that no other
 * version strictly descends from. Two versions with equal clocks but
 * different contents (possible only after clock pruning) resolve by LWW.
 * When more than `siblingsMax` remain they collapse into one by LWW, which
 * bounds memory at the cost of the loser's value.
 */
export function mergeSiblings(siblings: readonly Version[], incoming: readonly Version[], siblingsMax: number): Version[] {
  let out: Version[] = [...siblings];
  for (const v of incoming) out = addOne(out, v);
  if (out.length > siblingsMax) return [collapse(out)];
  return out.sort(lwwCompare);
}

function addOne(set: Version[], v: Version): Version[] {
  const kept: Version[] = [];
  for (const s of set) {
    const order = compare(v.clock, s.clock);
    if (order === Order.Before) return set; // v is obsolete
    if (order === Order.Equal) {
      if (sameVersion(s, v) || lwwCompare(s, v) > 0) return set;
      continue; // v replaces s
    }
    if (order === Order.After) continue; // s is obsolete
    kept.push(s);
  }
  kept.push(v);
  return kept;
}

/** One version that descends from every sibling, holding the LWW winner's contents. */
export function collapse(siblings: readonly Version[]): Version {
  if (siblings.length === 0) throw new Error('collapse of no versions');
  let winner = siblings[0]!;
  for (const s of siblings) if (lwwCompare(s, winner) > 0) winner = s;
  if (siblings.length === 1) return winner;
  return { ...winner, clock: mergeAll(siblings.map((s) => s.clock)) };
}

/**
 * Reconciles the sibling sets that replicas returned into what a read
 * answers and read repair writes back. Deterministic: the same answers in any
 * order give the same result on every node.
 */
export function reconcile(answers: readonly (readonly Version[])[], policy: ConflictPolicy, siblingsMax: number): Version[] {
  const all = union(answers, Number.MAX_SAFE_INTEGER);
  if (all.length === 0) return [];
  switch (policy) {
    case ConflictPolicy.Lww:
      return [collapse(all)];
    default:
      return all.length > siblingsMax ? [collapse(all)] : all;
  }
}

/** Every version the answers hold that no other one descends from (what read repair writes back). */
export function union(answers: readonly (readonly Version[])[], siblingsMax: number): Version[] {
  let all: Version[] = [];
  for (const a of answers) all = mergeSiblings(all, a, siblingsMax);
  return all;
}

/** True when a replica that answered `held` already has everything in `reconciled`. */
export function isUpToDate(held: readonly Version[], reconciled: readonly Version[]): boolean {
  if (reconciled.length === 0) return true;
  if (held.length !== reconciled.length) return false;
  return reconciled.every((r) => held.some((h) => sameVersion(h, r)));
}

/** The causal context of a read: the merge of every sibling's clock. */
export function contextOf(versions: readonly Version[]): VClock {
  return mergeAll(versions.map((v) => v.clock));
}

/** The value a read answers, or undefined when the key is absent or deleted. */
export function visibleValue(versions: readonly Version[]): Version | undefined {
  let winner: Version | undefined;
  for (const v of versions) if (!winner || lwwCompare(v, winner) > 0) winner = v;
  return winner && !winner.tombstone ? winner : undefined;
}
