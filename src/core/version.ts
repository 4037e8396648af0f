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
import { limits } from './limits.js';
import { compare, counterOf, mergeAll, Order, prune, type VClock } from './vclock.js';

export interface Version {
  clock: VClock;
  /**
   * The coordinator's hybrid logical clock when it wrote the version
   * (core/hlc.ts: ms x 1000 + logical); orders concurrent versions for LWW.
   */
  hlc: number;
  /** Id of the coordinating node; breaks timestamp ties deterministically. */
  writer: string;
  tombstone: boolean;
  /** Empty for tombstones. */
  value: Uint8Array;
  /**
   * The HLC time from which the version reads as absent (a put with a TTL):
   * above `hlc`; never on tombstones. Conflict resolution ignores it: an
   * expired version is still a write that happened and supersedes older ones.
   */
  expiresHlc?: number;
}

export const ConflictPolicy = { Lww: 'lww' } as const;
export type ConflictPolicy = (typeof ConflictPolicy)[keyof typeof ConflictPolicy];

/** Total order used by last-writer-wins: later timestamp, then larger writer id, then value bytes. */
export function lwwCompare(a: Version, b: Version): number {
  if (a.hlc !== b.hlc) return a.hlc - b.hlc;
  if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1;
  if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1; // a delete wins a perfect tie
  return Buffer.compare(a.value, b.value);
}

export function sameVersion(a: Version, b: Version): boolean {
  return lwwCompare(a, b) === 0 && compare(a.clock, b.clock) === Order.Equal;
}

/**
 * Adds `incoming` to `siblings`: keeps exactly the versions that no other
 * version strictly descends from. Two versions with equal clocks but
 * different contents (possible only after clock pruning) resolve by LWW.
 * When more than `siblingsMax` remain, or they weigh more than `bytesMax`
 * (so that one key's record always fits in one NATS message), they collapse
 * into one by LWW, which bounds memory at the cost of the losers' values.
 */
export function mergeSiblings(siblings: readonly Version[], incoming: readonly Version[], siblingsMax: number, bytesMax = Number.POSITIVE_INFINITY): Version[] {
  let out: Version[] = [...siblings];
  for (const v of incoming) out = addOne(out, v);
  if (out.length > siblingsMax || (out.length > 1 && versionsBytes(out) > bytesMax)) return [collapse(out)];
  return out.sort(lwwCompare);
}

/** Framing, timestamp, flags and writer id of one encoded version, beyond its value and clock. */
const versionOverheadBytes = 96;

/** An upper estimate of the encoded size of `versions` (CBOR: value bytes, clock entries, fields). */
export function versionsBytes(versions: readonly Version[]): number {
  let n = 0;
  for (const v of versions) {
    n += versionOverheadBytes + v.value.length + v.writer.length;
    for (const id of Object.keys(v.clock)) n += id.length + 12;
  }
  return n;
}

/**
 * Whether a coordinator's new version `fresh` would take effect on a replica
 * holding `held`. It must supersede, or under last-writer-wins outrank,
 * every version held; a version held that it neither descends from nor
 * outranks means the coordinator's clock is behind this key's history (a
 * clock set back, a wiped disk, skew between coordinators). Answers the
 * floor the coordinator's clock must pass to write a version that wins, or
 * undefined when `fresh` is fine. Under a siblings policy a concurrent
 * version is kept beside the held ones, so only causal staleness counts.
 */
export function staleFloor(held: readonly Version[], fresh: Version, policy: ConflictPolicy): number | undefined {
  let floor: number | undefined;
  for (const h of held) {
    const order = compare(fresh.clock, h.clock);
    if (order === Order.After) continue;
    const stale =
      order === Order.Equal ? !sameVersion(h, fresh)
        : order === Order.Before ? true
          : policy === ConflictPolicy.Lww && lwwCompare(h, fresh) > 0;
    if (stale) floor = Math.max(floor ?? 0, h.hlc, counterOf(h.clock, fresh.writer));
  }
  return floor;
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
  // Pruned like any clock: the winner has the largest timestamp, so a sibling
  // that pruning lets back in as concurrent loses to it again under LWW.
  return { ...winner, clock: prune(mergeAll(siblings.map((s) => s.clock)), limits.vclockEntriesMax, winner.writer) };
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
export function union(answers: readonly (readonly Version[])[], siblingsMax: number, bytesMax = Number.POSITIVE_INFINITY): Version[] {
  let all: Version[] = [];
  for (const a of answers) all = mergeSiblings(all, a, siblingsMax, bytesMax);
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

/** True when `v` has a time to live and the HLC time `nowHlc` has reached it. */
export function isExpired(v: Version, nowHlc: number): boolean {
  return v.expiresHlc !== undefined && nowHlc >= v.expiresHlc;
}

/**
 * The value a read answers, or undefined when the key is absent, deleted or
 * expired at `nowHlc` (the reading coordinator's HLC): an expired winner
 * hides the key like a tombstone, and an older live sibling does not show through.
 */
export function visibleValue(versions: readonly Version[], nowHlc: number): Version | undefined {
  let winner: Version | undefined;
  for (const v of versions) if (!winner || lwwCompare(v, winner) > 0) winner = v;
  return winner && !winner.tombstone && !isExpired(winner, nowHlc) ? winner : undefined;
}
