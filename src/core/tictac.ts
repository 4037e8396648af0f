/**
 * Tictac hash trees for anti-entropy (issue 10; Riak's tictac AAE,
 * martinsumner/leveled `leveled_tictac.erl`).
 *
 * A tree covers one key range. Each key falls into one segment (the low bits
 * of its ring hash, so keys spread evenly over the segments whatever the
 * range); a segment holds the XOR of the digests of its keys, a branch the
 * XOR of its segments, the root the XOR of the branches. Because XOR is its
 * own inverse, a write updates the tree in constant time (XOR the old
 * digest out, the new one in) and nothing is ever rescanned; unlike a
 * Merkle tree of sorted hashes (Cassandra's MerkleTree, rebuilt per
 * repair), two trees over the same keys are equal exactly when every
 * segment is, whatever order the writes came in.
 *
 * Two replicas compare roots, then branches, then the segments of the
 * differing branches, and exchange only the keys of differing segments.
 *
 * Pure: no I/O, no clocks; MD5 (core/md5.ts, node:crypto for a set too
 * large for the scratch buffer) is a pure function.
 */
import { createHash } from 'node:crypto';
import { md5High64 } from './md5.js';
import type { Version } from './version.js';

/** Segments per branch and branches per tree: 32 x 32 = 1024 segments (Riak's "small" tree). */
export const segmentsPerBranch = 32;
export const branchCount = 32;
export const segmentCount = segmentsPerBranch * branchCount;

/** The segment of a key, from its ring hash (core/ring.ts keyHash). */
export function segmentOf(hash: bigint): number {
  return Number(hash & BigInt(segmentCount - 1));
}

export function branchOf(segment: number): number {
  return Math.floor(segment / segmentsPerBranch);
}

/**
 * What a digest covers. `Full` (1, anti-entropy's first): every version's
 * metadata and its value's bytes. `Metadata` (2): the value's length
 * instead of its bytes, as Riak's tictac trees hash an object's version
 * vector rather than the object: a replica write digests the versions it
 * replaces and the new ones, and MD5 over a 1 MiB value twice was 2.8 ms
 * per replica write. In correct operation a version's (hlc, writer) names
 * one write and so one value; what `Metadata` no longer sees is two
 * replicas holding different bytes under one version (a corrupted copy).
 * `Fast` (3, the default): the same fields as `Metadata`, mixed by a 64-bit
 * non-cryptographic hash (fastDigest below) instead of laid out as text for
 * MD5: the tree upkeep of every replica write digests twice, and with MD5
 * that was about a fifth of a put's CPU under load. Nodes whose digests
 * differ must not compare trees: every one of their segments would differ
 * (node/aae says which it uses in each exchange).
 */
export const DigestVersion = { Full: 1, Metadata: 2, Fast: 3 } as const;
export type DigestVersion = (typeof DigestVersion)[keyof typeof DigestVersion];
export const digestVersionDefault: DigestVersion = DigestVersion.Fast;

/**
 * A 64-bit digest of a key's stored version set, the same on every replica
 * that holds the same set whatever order it arrived in: versions sorted by
 * (hlc, writer, value), each with its clock entries sorted, tombstone,
 * expiry and value (or, `Metadata`, the value's length). 0n for no versions
 * (an absent key adds nothing). The key is part of it, so two keys with
 * equal versions do not cancel out.
 */
export function versionsDigest(key: string, versions: readonly Version[], format: DigestVersion = digestVersionDefault): bigint {
  if (versions.length === 0) return 0n;
  const sorted = versions.length === 1 ? versions : [...versions].sort(canonicalOrder);
  const withValues = format === DigestVersion.Full;
  const d =
    format === DigestVersion.Fast ? fastDigest(key, sorted)
    : fitsScratch(key, sorted, withValues) ? digestInScratch(key, sorted, withValues)
    : digestStreamed(key, sorted, withValues).readBigUInt64BE(0);
  return d === 0n ? 1n : d; // 0n means "nothing here"
}

/*
 * The digest is MD5 over a sequence of length-prefixed fields (4-byte
 * big-endian length, then the bytes), so that field boundaries cannot shift
 * between two different sets: the key, then per version its
 * `hlc|writer|tombstone|expiresHlc` text, its clock as `id:counter` joined by
 * commas in id order, and its value (`Metadata`: the value's length alone,
 * 4 bytes, no bytes after it). Trees of other nodes compare with these
 * digests, so the bytes of a format never change; a set that fits a scratch
 * buffer is laid out there and hashed in one call (the common case: it
 * allocates no Buffer per field), a larger one is streamed field by field
 * (the same bytes).
 */
const scratchBytes = 16 * 1024;
const scratch = Buffer.allocUnsafe(scratchBytes);

/** An upper bound of the fields' bytes (3 UTF-8 bytes per UTF-16 unit at most) fits the scratch. */
function fitsScratch(key: string, versions: readonly Version[], withValues: boolean): boolean {
  let bytes = 4 + 3 * key.length;
  for (const v of versions) {
    bytes += 12 + 3 * (v.writer.length + 60) + (withValues ? v.value.length : 0);
    for (const id in v.clock) bytes += 3 * id.length + 32;
    if (bytes > scratchBytes) return false;
  }
  return true;
}

function digestInScratch(key: string, versions: readonly Version[], withValues: boolean): bigint {
  let at = textField(0, key);
  for (const v of versions) {
    // The `hlc|writer|tombstone|expiresHlc` field, written in place: numbers turned into text
    // were a third of a digest's time.
    let start = at;
    at += 4;
    at += writeInteger(v.hlc, at);
    scratch[at++] = 0x7c; // '|'
    at += writeText(v.writer, at);
    scratch[at++] = 0x7c;
    scratch[at++] = v.tombstone ? 0x31 : 0x30;
    scratch[at++] = 0x7c;
    if (v.expiresHlc != null) at += writeInteger(v.expiresHlc, at);
    scratch.writeUInt32BE(at - start - 4, start);
    start = at;
    at += 4;
    const ids = sortedIds(v.clock);
    for (let i = 0; i < ids.length; i++) {
      if (i > 0) scratch[at++] = 0x2c; // ','
      at += writeText(ids[i]!, at);
      scratch[at++] = 0x3a; // ':'
      at += writeInteger(v.clock[ids[i]!]!, at);
    }
    scratch.writeUInt32BE(at - start - 4, start);
    scratch.writeUInt32BE(v.value.length, at);
    at += 4;
    if (withValues) {
      scratch.set(v.value, at);
      at += v.value.length;
    }
  }
  return md5High64(scratch, at);
}

/**
 * Writes `n` in decimal at `at`, the bytes `String(n)` has; returns their
 * count. In two halves of at most eight digits, each small enough for
 * integer arithmetic (an HLC reading has sixteen).
 */
function writeInteger(n: number, at: number): number {
  if (!Number.isSafeInteger(n) || n < 0) return writeText(String(n), at);
  if (n < halfDigitsBound) return writeDigits(n, at, 0);
  const high = Math.floor(n / halfDigitsBound); // below 2^53 / 10^8: one half
  const written = writeDigits(high, at, 0);
  return written + writeDigits(n - high * halfDigitsBound, at + written, 8);
}

const halfDigitsBound = 100_000_000;

/** `n` (0 <= n < 10^8) in decimal at `at`, zero-padded to `width` digits; their count. */
function writeDigits(n: number, at: number, width: number): number {
  let digits = 1;
  for (let rest = n; rest >= 10; rest = (rest / 10) | 0) digits++;
  if (digits < width) digits = width;
  for (let i = digits - 1, rest = n; i >= 0; i--, rest = (rest / 10) | 0) scratch[at + i] = 0x30 + (rest % 10);
  return digits;
}

/** A clock's ids in the order Array.prototype.sort gives (UTF-16 code units); a few by insertion, without the sort's setup. */
function sortedIds(clock: Version['clock']): string[] {
  const ids = Object.keys(clock);
  if (ids.length > 8) return ids.sort();
  for (let i = 1; i < ids.length; i++) {
    const id = ids[i]!;
    let j = i - 1;
    for (; j >= 0 && ids[j]! > id; j--) ids[j + 1] = ids[j]!;
    ids[j + 1] = id;
  }
  return ids;
}

/** Writes `text` as a field at `at`; returns where the next field starts. */
function textField(at: number, text: string): number {
  const n = writeText(text, at + 4);
  scratch.writeUInt32BE(n, at);
  return at + 4 + n;
}

/** Writes `text` as UTF-8 at `at`, its bytes' count: short ASCII text byte by byte (cheaper than a call into C++), other text by Buffer.write. */
function writeText(text: string, at: number): number {
  if (text.length > 64) return scratch.write(text, at);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return scratch.write(text, at);
    scratch[at + i] = c;
  }
  return text.length;
}

function digestStreamed(key: string, versions: readonly Version[], withValues: boolean): Buffer {
  const h = createHash('md5');
  field(h, Buffer.from(key, 'utf8'));
  for (const v of versions) {
    field(h, Buffer.from(`${v.hlc}|${v.writer}|${v.tombstone ? 1 : 0}|${v.expiresHlc ?? ''}`, 'utf8'));
    const clock = Object.keys(v.clock).sort().map((id) => `${id}:${v.clock[id]}`).join(',');
    field(h, Buffer.from(clock, 'utf8'));
    if (withValues) field(h, v.value);
    else h.update(uint32(v.value.length));
  }
  return h.digest();
}

function field(h: ReturnType<typeof createHash>, bytes: Uint8Array): void {
  h.update(uint32(bytes.length));
  h.update(bytes);
}

function uint32(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n);
  return out;
}

/*
 * The `Fast` digest: MurmurHash3's 32-bit mixing steps (Austin Appleby's
 * public-domain x86_32 body and finalizer) run in two lanes of different
 * constants, the second also folding in the first after every word, and
 * finalized together into 64 bits. What it mixes, as 32-bit words: the
 * format, the key (its length, then its UTF-16 code units two by two), the
 * number of versions, then per version (sorted as for the other formats) its
 * hlc, writer, tombstone, expiry (absent or its value) and value length,
 * and its clock as an entry count and two sums, one per lane, of each
 * entry's own digest (the id and the counter), so that the entries' order
 * does not matter and no list of ids is sorted. Numbers go in as the two
 * halves of their IEEE 754 bits, big-endian, whatever the platform. No text
 * is laid out and nothing is allocated but the result: about a tenth of a
 * microsecond for one version, against about one with MD5. Not a
 * cryptographic hash: like the 64 bits of MD5 before it, it finds
 * replicas that drifted apart, it does not stand up to a writer crafting
 * collisions (read repair still compares the versions themselves).
 */
let lane1 = 0;
let lane2 = 0;
let words = 0;
const numberBits = new DataView(new ArrayBuffer(8));

function mixWord(k: number): void {
  let k1 = Math.imul(k, 0xcc9e2d51);
  k1 = Math.imul((k1 << 15) | (k1 >>> 17), 0x1b873593);
  lane1 ^= k1;
  lane1 = (Math.imul((lane1 << 13) | (lane1 >>> 19), 5) + 0xe6546b64) | 0;
  let k2 = Math.imul(k, 0x239b961b);
  k2 = Math.imul((k2 << 16) | (k2 >>> 16), 0xab0e9789);
  lane2 ^= k2;
  lane2 = (Math.imul((lane2 << 17) | (lane2 >>> 15), 5) + 0x38b34ae5 + lane1) | 0;
  words++;
}

function mixNumber(n: number): void {
  numberBits.setFloat64(0, n);
  mixWord(numberBits.getUint32(0));
  mixWord(numberBits.getUint32(4));
}

function mixText(text: string): void {
  const n = text.length;
  mixWord(n);
  let i = 0;
  for (; i + 1 < n; i += 2) mixWord(text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16));
  if (i < n) mixWord(text.charCodeAt(i));
}

function finalMix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Starts a digest's lanes (`seed` tells the key's stream from a clock entry's). */
function startLanes(seed: number): void {
  lane1 = seed;
  lane2 = ~seed;
  words = 0;
}

/** Ends the lanes: lane1 and lane2 hold the 64 bits. */
function finishLanes(): void {
  lane1 ^= words;
  lane2 ^= words;
  lane1 = (lane1 + lane2) | 0;
  lane2 = (lane2 + lane1) | 0;
  lane1 = finalMix(lane1);
  lane2 = finalMix(lane2);
  lane1 = (lane1 + lane2) | 0;
  lane2 = (lane2 + lane1) | 0;
}

const fastSeed = 0x7c3f0003;
const entrySeed = 0x51ed2701;

/** clockSums' result beside its entry count: each lane's sum of the entries' own digests. */
let clockSum1 = 0;
let clockSum2 = 0;

/** The clock's entry count; its sums in clockSum1 and clockSum2. The lanes of the digest under way are left as they were. */
function clockSums(clock: Version['clock']): number {
  const outer1 = lane1;
  const outer2 = lane2;
  const outerWords = words;
  let s1 = 0;
  let s2 = 0;
  let entries = 0;
  for (const id in clock) {
    startLanes(entrySeed);
    mixText(id);
    mixNumber(clock[id]!);
    finishLanes();
    s1 = (s1 + lane1) | 0;
    s2 = (s2 + lane2) | 0;
    entries++;
  }
  lane1 = outer1;
  lane2 = outer2;
  words = outerWords;
  clockSum1 = s1;
  clockSum2 = s2;
  return entries;
}

function fastDigest(key: string, versions: readonly Version[]): bigint {
  startLanes(fastSeed);
  mixWord(DigestVersion.Fast);
  mixText(key);
  mixWord(versions.length);
  for (const v of versions) {
    mixNumber(v.hlc);
    mixText(v.writer);
    mixWord(v.tombstone ? 1 : 0);
    if (v.expiresHlc == null) mixWord(0);
    else {
      mixWord(1);
      mixNumber(v.expiresHlc);
    }
    mixWord(v.value.length);
    mixWord(clockSums(v.clock));
    mixWord(clockSum1);
    mixWord(clockSum2);
  }
  finishLanes();
  numberBits.setUint32(0, lane1 >>> 0);
  numberBits.setUint32(4, lane2 >>> 0);
  return numberBits.getBigUint64(0);
}

function canonicalOrder(a: Version, b: Version): number {
  if (a.hlc !== b.hlc) return a.hlc - b.hlc;
  if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1;
  if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1;
  return Buffer.compare(a.value, b.value);
}

/** One range's tree: 1024 segments, 32 branches, a root; 8 bytes each. */
export interface TictacTree {
  segments: BigUint64Array;
  branches: BigUint64Array;
  root: bigint;
}

export function newTree(): TictacTree {
  return { segments: new BigUint64Array(segmentCount), branches: new BigUint64Array(branchCount), root: 0n };
}

/** A key's digest changed from `before` to `after` (0n: absent): O(1). */
export function updateTree(tree: TictacTree, hash: bigint, before: bigint, after: bigint): void {
  const delta = before ^ after;
  if (delta === 0n) return;
  const seg = segmentOf(hash);
  tree.segments[seg] = tree.segments[seg]! ^ delta;
  const br = branchOf(seg);
  tree.branches[br] = tree.branches[br]! ^ delta;
  tree.root ^= delta;
}

/** Sets one segment to `value` (a segment recomputed from storage), keeping its branch and the root consistent. */
export function setSegment(tree: TictacTree, segment: number, value: bigint): void {
  const delta = tree.segments[segment]! ^ value;
  if (delta === 0n) return;
  tree.segments[segment] = value;
  const br = branchOf(segment);
  tree.branches[br] = tree.branches[br]! ^ delta;
  tree.root ^= delta;
}

export function branchHashes(tree: TictacTree): bigint[] {
  return [...tree.branches];
}

/** The segment hashes of the given branches, branch after branch (32 each). */
export function segmentHashes(tree: TictacTree, branches: readonly number[]): bigint[] {
  const out: bigint[] = [];
  for (const b of branches) for (let s = b * segmentsPerBranch; s < (b + 1) * segmentsPerBranch; s++) out.push(tree.segments[s]!);
  return out;
}

/** Indices where two equally long hash lists differ. */
export function differing(a: readonly bigint[], b: readonly bigint[]): number[] {
  if (a.length !== b.length) throw new Error(`assertion: hash lists of ${a.length} and ${b.length}`);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

/** The segments that differ within the given branches, from both sides' segmentHashes of them. */
export function differingSegments(branches: readonly number[], ours: readonly bigint[], theirs: readonly bigint[]): number[] {
  return differing(ours, theirs).map((i) => branches[Math.floor(i / segmentsPerBranch)]! * segmentsPerBranch + (i % segmentsPerBranch));
}

/** Compares two trees top-down, as an exchange does (branches, not the root alone: two deltas could cancel there): the differing segments. */
export function compareTrees(a: TictacTree, b: TictacTree): number[] {
  const branches = differing(branchHashes(a), branchHashes(b));
  return differingSegments(branches, segmentHashes(a, branches), segmentHashes(b, branches));
}
