/**
 * Tombstone and TTL purge, the pure part (issue 10 part 3, issue 12; Cassandra's
 * gc_grace_seconds). The node's sweep (node/gc/sweeper.ts) asks this which
 * stored keys may go, then checks with every replica before purging.
 *
 * The rule. A key is a purge candidate when what it reads as has been dead
 * for longer than the grace period, judged on the HLC. What it reads as is
 * its last-writer-wins winner (core/version.ts visibleValue); the siblings
 * that winner outranks are shadowed (a delete sent without a context is a
 * sibling of the value it deletes, and wins by its later timestamp):
 * - a tombstone winner is dead from its own timestamp (`hlc`);
 * - a value winner with a time to live is dead from its expiry (`expiresHlc`);
 * - a value winner without one is live: the key stays. So a key rewritten
 *   after its delete (a later value, with or without the delete's context)
 *   is never purged.
 * Under the `siblings` policy a concurrent live value is not shadowed (a read
 * shows it), so every sibling must be dead: a key holding a dotted version
 * (only `siblings` writes them, core/version.ts) is a candidate only then.
 *
 * Why the grace period, and why counted from the expiry for TTL values: a
 * purge removes the version that shadows older ones. What may still hold an
 * older version is a replica that missed the delete (the sweep refuses unless
 * every replica holds the same versions), a hint on its way (hints live at
 * most hints.windowMs, below the grace, and hold only versions written
 * before the one that shadows them) and a replica brought up to date by read
 * repair or anti-entropy, which must run within the grace period (as
 * Cassandra's repair must within gc_grace_seconds). An expired value behaves
 * like a tombstone written at its expiry, so the grace counts from there:
 * a replica that missed the TTL write and holds an older value without one
 * gets the whole grace period to be repaired before the shadowing version
 * may go, as it would for a delete.
 */
import { logicalPerMs } from './hlc.js';
import { lwwCompare, type Version } from './version.js';

export const PurgeKind = { Tombstone: 'tombstone', Expired: 'expired' } as const;
export type PurgeKind = (typeof PurgeKind)[keyof typeof PurgeKind];

/** The grace period in HLC units (ms x 1000). */
export function graceHlc(graceSeconds: number): number {
  return graceSeconds * 1000 * logicalPerMs;
}

/** The HLC time from which a version is dead (deleted or expired), or undefined while it is a live value. */
export function deadSince(v: Version): number | undefined {
  if (v.tombstone) return v.hlc;
  return v.expiresHlc;
}

/**
 * Whether a key holding `versions` may be purged at `nowHlc` (see the rule
 * above): 'tombstone' when its winner is a tombstone, 'expired' when it is
 * an expired value; undefined when the key must stay.
 */
export function purgeCandidate(versions: readonly Version[], nowHlc: number, graceSeconds: number): PurgeKind | undefined {
  let winner: Version | undefined;
  for (const v of versions) if (!winner || lwwCompare(v, winner) > 0) winner = v;
  if (winner === undefined) return undefined;
  if (versions.length > 1 && versions.some((v) => v.pastCounter !== undefined)) {
    if (!versions.every((v) => { const d = deadSince(v); return d !== undefined && d + graceHlc(graceSeconds) <= nowHlc; })) return undefined;
  }
  const dead = deadSince(winner);
  if (dead === undefined || dead + graceHlc(graceSeconds) > nowHlc) return undefined;
  return winner.tombstone ? PurgeKind.Tombstone : PurgeKind.Expired;
}

/** Why a sweep left a candidate in place this time (goddb_gc_skipped_total{reason}). */
export const SkipReason = {
  /** The ring is moving: the preference list is about to change. */
  Moving: 'moving',
  /** This node is not one of the key's replicas (the move's cleanup deletes it). */
  NotReplica: 'not_replica',
  /** A replica of the key is down. */
  Down: 'down',
  /** A replica did not answer (timeout, error). */
  Unreachable: 'unreachable',
  /** A replica holds other versions (repair brings it the same first). */
  Differs: 'differs',
  /** A replica speaks a protocol older than purges (a rolling upgrade under way). */
  OldProtocol: 'old_protocol',
} as const;
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason];
