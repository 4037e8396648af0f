/**
 * Versions, siblings and reconciliation (Dynamo section 4.4, Riak siblings).
 *
 * A replica stores, per key, the set of versions none of which descends from
 * another (the siblings). Merging drops every version that another one
 * descends from. A read reconciles what the replicas returned: under `lww`
 * the concurrent siblings collapse into one version that carries the value of
 * the last writer and the merge of all their clocks, so writing it back (read
 * repair) supersedes every sibling on every replica.
 *
 * Under `siblings` (Riak's allow_mult) new versions carry a dot (dotted
 * version vectors, Almeida et al., "Scalable and Accurate Causality Tracking
 * for Eventually Consistent Stores"; Riak 2.0): the version's clock is its
 * causal past (the context it was written with) plus one event of its
 * writer, (writer, hlc), and `pastCounter` keeps the writer's entry of that
 * past. A version supersedes another only when its past holds the other's
 * whole clock (its dot included): two blind puts through one coordinator, or
 * two puts with the same stale context, are then siblings, where a plain
 * vector clock (one entry per coordinator) would order them and lose the
 * first. Versions without `pastCounter` (written under `lww`, collapsed, or
 * by older nodes) compare by their clocks as before.
 */
import { limits } from './limits.js';
import { advance, compare, counterOf, descends, mergeAll, Order, prune, setCounter, type VClock } from './vclock.js';
import { afterSeconds } from './hlc.js';

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
  /**
   * Dotted versions only (written under the `siblings` policy): the writer's
   * entry in the version's causal past, 0 when the past has none; always
   * below `clock[writer]`, which is the dot. Optional on disk and on the wire:
   * a node that does not know it reads the version as a plain vector clock.
   */
  pastCounter?: number;
}

export const ConflictPolicy = { Lww: 'lww', Siblings: 'siblings' } as const;
export type ConflictPolicy = (typeof ConflictPolicy)[keyof typeof ConflictPolicy];

/** Total order used by last-writer-wins: later timestamp, then larger writer id, then value bytes. */
export function lwwCompare(a: Version, b: Version): number {
  if (a.hlc !== b.hlc) return a.hlc - b.hlc;
  if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1;
  if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1; // a delete wins a perfect tie
  return Buffer.compare(a.value, b.value);
}

export function sameVersion(a: Version, b: Version): boolean {
  return lwwCompare(a, b) === 0 && compare(a.clock, b.clock) === Order.Equal && a.pastCounter === b.pastCounter;
}

/** A version's causal past: its clock without its own dot (the whole clock for a version without a dot). */
export function pastOf(v: Version): VClock {
  if (v.pastCounter === undefined) return v.clock;
  const past: Record<string, number> = { ...v.clock };
  if (v.pastCounter > 0) setCounter(past, v.writer, v.pastCounter);
  else delete past[v.writer];
  return past;
}

/** The writer's counter of a dotted version (its hlc when it was made), undefined without a dot. */
function dotOf(v: Version): number | undefined {
  return v.pastCounter === undefined ? undefined : counterOf(v.clock, v.writer);
}

/**
 * True when `a` supersedes `b`: `a`'s past holds `b`'s whole clock, or `a`
 * is a retry of `b` (the same put made again by the same coordinator from
 * the same context: same writer, same past, same contents, a later dot).
 * The second rule keeps a retried put from growing the sibling count; it
 * stays a partial order: whatever supersedes `a` has seen `a`'s dot, so
 * `b`'s, which is below it on the same entry, and `b`'s past, which is `a`'s.
 */
function supersedes(a: Version, b: Version): boolean {
  if (descends(pastOf(a), b.clock)) return true;
  const da = dotOf(a);
  const db = dotOf(b);
  // (Equal pastCounters first: a cheap test that most pairs fail.)
  return da !== undefined && db !== undefined && a.writer === b.writer && da > db && a.pastCounter === b.pastCounter
    && a.tombstone === b.tombstone && Buffer.compare(a.value, b.value) === 0 && compare(pastOf(a), pastOf(b)) === Order.Equal;
}

/**
 * How version `a` relates to `b` (After: `a` supersedes `b`). Between
 * versions without dots exactly the vector-clock order; with a dot on either
 * side, the dotted rule (`supersedes`), and two versions with the same dot
 * are Equal (one write, delivered twice).
 */
export function versionOrder(a: Version, b: Version): Order {
  if (a.pastCounter === undefined && b.pastCounter === undefined) return compare(a.clock, b.clock);
  const da = dotOf(a);
  if (da !== undefined && a.writer === b.writer && da === dotOf(b)) return Order.Equal;
  const aOverB = supersedes(a, b);
  const bOverA = supersedes(b, a);
  if (aOverB === bOverA) return aOverB ? Order.Equal : Order.Concurrent;
  return aOverB ? Order.After : Order.Before;
}

/**
 * Adds `incoming` to `siblings`: keeps exactly the versions that no other
 * version strictly descends from. Two versions with equal clocks but
 * different contents (possible only after clock pruning) resolve by LWW.
 * When more than `siblingsMax` remain, or they weigh more than `bytesMax`
 * (so that one key's record always fits in one NATS message), they collapse
 * into one by LWW, which bounds memory at the cost of the losers' values;
 * under a `siblings` bound only the oldest collapse (collapseOldest).
 * "Descends" is versionOrder: dotted versions by their past.
 */
export function mergeSiblings(siblings: readonly Version[], incoming: readonly Version[], siblingsMax: number, bytesMax = Number.POSITIVE_INFINITY, bound: SiblingsBound = {}): Version[] {
  let out: Version[] = [...siblings];
  for (const v of incoming) out = addOne(out, v);
  if (bound.policy === ConflictPolicy.Siblings) return collapseOldest(out, siblingsMax, bytesMax, bound.collapsed);
  if (out.length > siblingsMax || (out.length > 1 && versionsBytes(out) > bytesMax)) return [collapse(out)];
  return out.sort(lwwCompare);
}

/**
 * Under `lww`, one stored version `held` and one incoming `v` merged and
 * collapsed into one: what `[collapse(...)]` of mergeSiblings([held], [v])
 * answers (the replica's merge under lww), without its copies and its sort.
 * `[held]` when `v` adds nothing; a property test checks that the two agree.
 */
export function mergeOneLww(held: Version, v: Version): Version[] {
  const order = versionOrder(v, held);
  if (order === Order.Before) return [held];
  if (order === Order.Equal) return sameVersion(held, v) || lwwCompare(held, v) > 0 ? [held] : [v];
  if (order === Order.After) return [v];
  return [collapse([held, v])];
}

/** How a `siblings` cluster bounds a key's siblings (mergeSiblings, reconcile). */
export interface SiblingsBound {
  /** `siblings`: past the bound only the oldest collapse; otherwise (`lww`) all collapse into one, as always. */
  policy?: ConflictPolicy;
  /** Told how many versions were folded into others (goddb_siblings_collapsed_total). */
  collapsed?: (versions: number) => void;
}

/**
 * At most `siblingsMax` versions weighing at most `bytesMax`: past either,
 * two versions collapse into one that descends from both, again until the
 * bound holds. Versions of the same contents go first (the oldest such pair:
 * a put retried through several coordinators, which loses no value); then
 * the two oldest by LWW, so the newest writes stay siblings and the oldest
 * lose their values (counted by `collapsed`). Newest last, as mergeSiblings answers.
 */
export function collapseOldest(versions: readonly Version[], siblingsMax: number, bytesMax = Number.POSITIVE_INFINITY, collapsed?: (versions: number) => void): Version[] {
  let out = [...versions].sort(lwwCompare);
  let lost = 0;
  while (out.length > Math.max(1, siblingsMax) || (out.length > 1 && versionsBytes(out) > bytesMax)) {
    const pair = sameContentsPair(out);
    if (pair === undefined) lost++;
    const [i, j] = pair ?? [0, 1];
    const rest = out.filter((_, k) => k !== i && k !== j);
    out = addOne(rest, collapse([out[i]!, out[j]!])).sort(lwwCompare);
  }
  if (lost > 0) collapsed?.(lost);
  return out;
}

/** The first pair (by LWW, oldest first) of versions with the same contents, if any. */
function sameContentsPair(sorted: readonly Version[]): [number, number] | undefined {
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const a = sorted[i]!;
      const b = sorted[j]!;
      if (a.tombstone === b.tombstone && Buffer.compare(a.value, b.value) === 0) return [i, j];
    }
  }
  return undefined;
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
    const order = versionOrder(fresh, h);
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
    const order = versionOrder(v, s);
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
  // No dot: the collapsed version stands for several writes, its past is its whole clock.
  const { pastCounter: _dot, ...rest } = winner;
  return { ...rest, clock: prune(mergeAll(siblings.map((s) => s.clock)), limits.vclockEntriesMax, winner.writer) };
}

/**
 * Reconciles the sibling sets that replicas returned into what a read
 * answers and read repair writes back. Deterministic: the same answers in any
 * order give the same result on every node.
 */
export function reconcile(answers: readonly (readonly Version[])[], policy: ConflictPolicy, siblingsMax: number, collapsed?: (versions: number) => void, bytesMax = Number.POSITIVE_INFINITY): Version[] {
  const all = union(answers, Number.MAX_SAFE_INTEGER);
  if (all.length === 0) return [];
  switch (policy) {
    case ConflictPolicy.Lww:
      return [collapse(all)];
    default:
      return collapseOldest(all, siblingsMax, bytesMax, collapsed);
  }
}

/** Every version the answers hold that no other one descends from (what read repair writes back). */
export function union(answers: readonly (readonly Version[])[], siblingsMax: number, bytesMax = Number.POSITIVE_INFINITY, bound: SiblingsBound = {}): Version[] {
  let all: Version[] = [];
  for (const a of answers) all = mergeSiblings(all, a, siblingsMax, bytesMax, bound);
  return all;
}

/**
 * The answers when they agree on at most one version (every one empty, or
 * every one that same single version), else undefined. Then reconcile and
 * union both answer exactly that (merging a version already held changes
 * nothing, and one version never collapses), and no replica needs a repair:
 * a read can skip both unions (under `lww` replicas store one version per key,
 * so this is the common case).
 */
export function agreedSingle(answers: readonly (readonly Version[])[]): Version[] | undefined {
  const first = answers[0];
  if (first === undefined || first.length > 1) return undefined;
  for (let i = 1; i < answers.length; i++) {
    const a = answers[i]!;
    if (a.length !== first.length || (a.length === 1 && !sameVersion(a[0]!, first[0]!))) return undefined;
  }
  return [...first];
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

/**
 * What a read under `siblings` shows: the values of the live versions
 * (tombstones and expired ones left out), newest first by LWW, each value
 * once (a put retried through another coordinator is two versions of one
 * value). The first is the newest live value; empty when none is live.
 */
export function liveSiblings(versions: readonly Version[], nowHlc: number): Version[] {
  const out: Version[] = [];
  for (const v of [...versions].sort((a, b) => lwwCompare(b, a))) {
    if (v.tombstone || isExpired(v, nowHlc)) continue;
    if (!out.some((o) => Buffer.compare(o.value, v.value) === 0)) out.push(v);
  }
  return out;
}

/** True when a read of `versions` at `nowHlc` answers a value: under `lww` the winner's, under `siblings` any live sibling's. */
export function hasLiveValue(versions: readonly Version[], nowHlc: number, policy: ConflictPolicy): boolean {
  return policy === ConflictPolicy.Siblings ? liveSiblings(versions, nowHlc).length > 0 : visibleValue(versions, nowHlc) !== undefined;
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

/**
 * A coordinator's new version (a plain write or a conditional one): made
 * by `writer` at its HLC reading `now`, its clock past `context`, a
 * tombstone when `value` is null, expiring `ttlSeconds` after `now` when
 * given (values only). Under `siblings` it is dotted: its past is the
 * context alone, so it supersedes what the client read and nothing else
 * this node wrote meanwhile.
 */
export function newVersion(writer: string, now: number, value: Uint8Array | null, context: VClock, ttlSeconds: number | undefined, policy: ConflictPolicy): Version {
  if (now <= counterOf(context, writer)) throw new Error('assertion: the context was observed before the version was made');
  const version: Version = {
    clock: advance(context, writer, now, limits.vclockEntriesMax),
    hlc: now,
    writer,
    tombstone: value === null,
    value: value ?? new Uint8Array(0),
  };
  if (ttlSeconds !== undefined && value !== null) version.expiresHlc = afterSeconds(now, ttlSeconds);
  if (policy === ConflictPolicy.Siblings) version.pastCounter = counterOf(context, writer);
  return version;
}
