/**
 * Key listing, the pure part (issue 12 item 4; NATS KV `keys()`, Riak
 * list-keys). A listing walks the whole hash space once, from 0 up, in
 * (hash, key UTF-8 bytes) order: the order every engine scans in
 * (storage/hash_order.ts). The walk is cut into spans, each the part of one
 * ring arc that lies in [0, 2^64-1] (the arc that wraps past zero gives two),
 * so every hash of a span has one preference list. The coordinator asks R
 * replicas of a span for a page of what they hold there and merges the pages
 * here: a key is listed when the union of its versions across the answers
 * is live (not a tombstone, not expired at the coordinator's HLC), exactly
 * as a read with R decides it.
 *
 * The position is all the state a listing has, so any node may serve the
 * next page: a ring that changes between pages changes which replicas are
 * asked, never which positions are visited, and each position is visited once.
 *
 * Pure: ring, pages and time in; keys and positions out.
 */
import { hashMax } from './moves.js';
import { successorIndex, type Ring } from './ring.js';
import { ConflictPolicy, hasLiveValue, union, type Version } from './version.js';

/** Where a listing goes on: entries with a hash of at least `hash`, skipping those of that hash with keys up to `afterKey`. */
export interface ListingPosition {
  hash: bigint;
  afterKey?: string;
}

/** Hashes from fromHash to toHash, both inclusive, within one arc and not wrapping. */
export interface ListingSpan {
  fromHash: bigint;
  toHash: bigint;
}

/** A key and its hash, in hash order. */
export interface HashedKey {
  hash: bigint;
  key: string;
}

/** What one replica answered for a span: its entries in hash order, and where it stopped (absent: it reached the span's end). */
export interface ReplicaKeysPage {
  items: (HashedKey & { versions: Version[] })[];
  next?: HashedKey;
}

/** The span of the ring arc that holds `hash`, cut at 2^64-1 (a ring without tokens is one span). */
export function spanAt(ring: Ring, hash: bigint): ListingSpan {
  const tokens = ring.tokens;
  if (tokens.length === 0) return { fromHash: 0n, toHash: hashMax };
  const first = tokens[0]!.position;
  const last = tokens[tokens.length - 1]!.position;
  if (hash > last) return { fromHash: last + 1n, toHash: hashMax };
  if (hash <= first) return { fromHash: 0n, toHash: first };
  const i = successorIndex(ring, hash);
  return { fromHash: tokens[i - 1]!.position + 1n, toHash: tokens[i]!.position };
}

/** The position just past a span, or undefined when the span ends the hash space (the listing is done). */
export function pastSpan(span: ListingSpan): ListingPosition | undefined {
  return span.toHash === hashMax ? undefined : { hash: span.toHash + 1n };
}

/** Negative, zero or positive as a sorts before, with or after b in (hash, key UTF-8 bytes) order. */
export function compareHashed(a: HashedKey, b: HashedKey): number {
  if (a.hash !== b.hash) return a.hash < b.hash ? -1 : 1;
  return Buffer.compare(Buffer.from(a.key, 'utf8'), Buffer.from(b.key, 'utf8'));
}

/**
 * Merges the pages R replicas answered for one span. Only entries up to the
 * earliest place a replica stopped count (beyond it that replica has not
 * spoken yet; the next request starts there). Answers the live keys in hash
 * order and where the listing goes on: undefined when every replica reached
 * the span's end.
 */
export function mergeKeyPages(pages: readonly ReplicaKeysPage[], nowHlc: number, siblingsMax: number, policy: ConflictPolicy = ConflictPolicy.Lww): { live: HashedKey[]; stop: HashedKey | undefined } {
  let stop: HashedKey | undefined;
  for (const p of pages) if (p.next !== undefined && (stop === undefined || compareHashed(p.next, stop) < 0)) stop = p.next;
  const byKey = new Map<string, { hash: bigint; answers: Version[][] }>();
  for (const p of pages) {
    for (const item of p.items) {
      if (stop !== undefined && compareHashed(item, stop) > 0) continue;
      const seen = byKey.get(item.key);
      if (seen) seen.answers.push(item.versions);
      else byKey.set(item.key, { hash: item.hash, answers: [item.versions] });
    }
  }
  const live: HashedKey[] = [];
  for (const [key, { hash, answers }] of byKey) {
    // Under siblings a key is listed while any sibling is live, as a get answers it.
    if (hasLiveValue(union(answers, siblingsMax, Number.POSITIVE_INFINITY, { policy }), nowHlc, policy)) live.push({ hash, key });
  }
  live.sort(compareHashed);
  return { live, stop };
}

/**
 * The longest head of `keys` that fits in `keysMax` keys and `bytesMax`
 * bytes (`bytesOf` each); `complete` is false when some were left (the
 * listing resumes after the last key taken, or where it was when none was).
 */
export function takeWithin(keys: readonly HashedKey[], keysMax: number, bytesMax: number, bytesOf: (key: string) => number): { taken: HashedKey[]; complete: boolean } {
  let bytes = 0;
  let n = 0;
  while (n < keys.length && n < keysMax) {
    const b = bytesOf(keys[n]!.key);
    if (bytes + b > bytesMax) break;
    bytes += b;
    n++;
  }
  return { taken: keys.slice(0, n), complete: n === keys.length };
}
