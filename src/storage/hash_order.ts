/**
 * The order every engine's scanRange yields in: by key hash (the ring
 * position, core/ring.ts keyHash), then by the key's UTF-8 bytes. Handoff
 * streams a ring range in this order and resumes from the last entry sent.
 */
import assert from 'node:assert/strict';
import type { HashCursor, HashRange, StorageEngine } from './engine.js';

export const hashMax = (1n << 64n) - 1n;
/** Entries read per batch of a range scan when the caller gives none. */
export const rangeBatchSizeDefault = 256;

/** Asserts the caller kept the contract: a non-wrapping range of 64-bit hashes and a positive integer batch size. */
export function checkRangeArgs(range: HashRange, batchSize: number): void {
  const { fromHash, toHash } = range;
  assert.ok(0n <= fromHash && fromHash <= toHash && toHash <= hashMax, `hash range must be 0 <= from <= to <= 2^64-1, got ${fromHash}..${toHash}`);
  assert.ok(Number.isInteger(batchSize) && batchSize > 0, `range scan batch size must be a positive integer, got ${batchSize}`);
}

/**
 * Where a scan of `range` starts: after `after` when it lies inside the range,
 * at the range's start when `after` precedes it, and nowhere (undefined) when
 * `after` is past the range's end.
 */
export function startOf(range: HashRange, after: HashCursor | undefined): { hash: bigint; after?: string } | undefined {
  if (after === undefined || after.hash < range.fromHash) return { hash: range.fromHash };
  if (after.hash > range.toHash) return undefined;
  return { hash: after.hash, after: after.key };
}

/** Negative, zero or positive as (hash, key bytes) a sorts before, with or after b. */
export function compareHashOrder(a: HashCursor, b: HashCursor): number {
  if (a.hash !== b.hash) return a.hash < b.hash ? -1 : 1;
  // UTF-16 code-unit order (`<` on strings) differs from UTF-8 byte order above U+D7FF.
  return Buffer.compare(Buffer.from(a.key, 'utf8'), Buffer.from(b.key, 'utf8'));
}

/** The hash as 8 bytes, big-endian, so byte order is numeric order. */
export function hashBytes(hash: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(hash);
  return bytes;
}

/** The hash as 16 lowercase hex digits: fixed width, so string order is numeric order. */
export function hashHex(hash: bigint): string {
  return hash.toString(16).padStart(16, '0');
}

/**
 * True when `engine` holds no record of its own: one read of its first entry
 * in hash order. Not `count()`, which for Redis counts the whole db, so the
 * namespaces sharing it (data, hints, Paxos) would count each other's keys.
 */
export async function holdsNoRecord(engine: Pick<StorageEngine, 'scanRange'>): Promise<boolean> {
  for await (const _ of engine.scanRange({ fromHash: 0n, toHash: hashMax }, { batchSize: 1 })) return false;
  return true;
}
