/**
 * Tictac trees (src/core/tictac.ts).
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { keyHash } from '../../src/core/ring.js';
import { branchOf, compareTrees, DigestVersion, digestVersionDefault, newTree, segmentCount, segmentOf, setSegment, updateTree, versionsDigest, type TictacTree } from '../../src/core/tictac.js';
import type { Version } from '../../src/core/version.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_130);
const runs = (numRuns: number) => ({ seed, numRuns });

const versionArb: fc.Arbitrary<Version> = fc.record({
  clock: fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 1, max: 5 }), { maxKeys: 3, noNullPrototype: true }),
  hlc: fc.integer({ min: 1, max: 1000 }),
  writer: fc.constantFrom('a', 'b', 'c'),
  tombstone: fc.constant(false),
  value: fc.uint8Array({ maxLength: 8 }),
});
const keyArb = fc.constantFrom(...Array.from({ length: 40 }, (_, i) => `k${i}`));
/** A history of puts (a new version set) and deletes (undefined) of a few keys. */
const historyArb = fc.array(fc.tuple(keyArb, fc.option(fc.array(versionArb, { minLength: 1, maxLength: 3 }), { nil: undefined })), { maxLength: 200 });

/** The tree over a key -> versions map, built from scratch. */
function treeOf(store: Map<string, Version[]>): TictacTree {
  const t = newTree();
  for (const [k, vs] of store) updateTree(t, keyHash(k), 0n, versionsDigest(k, vs));
  return t;
}

function sameTree(a: TictacTree, b: TictacTree): boolean {
  return a.root === b.root && a.branches.every((x, i) => x === b.branches[i]) && a.segments.every((x, i) => x === b.segments[i]);
}

/** The version sets whose digests are pinned, each format's in its own test. */
function pinnedSets(): [string, Version[]][] {
  const b = (text: string) => Buffer.from(text, 'utf8');
  const big = Buffer.alloc(70_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 255;
  return [
    ['user.42', [{ clock: { n1: 3 }, hlc: 1764530000000123, writer: 'n1', tombstone: false, value: b('hello') }]],
    ['user.42', [{ clock: { n2: 1, n1: 4 }, hlc: 1764530000000999, writer: 'n2', tombstone: true, value: new Uint8Array(0) }]],
    ['ключ✓', [{ clock: { b: 2, a: 1 }, hlc: 5000, writer: 'b', tombstone: false, value: b('v'), expiresHlc: 9000 }]],
    ['', [{ clock: {}, hlc: 1, writer: '', tombstone: false, value: new Uint8Array(0) }]],
    ['s', [
      { clock: { c: 1 }, hlc: 20, writer: 'c', tombstone: false, value: b('z') },
      { clock: { a: 2, b: 1 }, hlc: 10, writer: 'b', tombstone: false, value: b('y'), pastCounter: 0 },
      { clock: { a: 1 }, hlc: 10, writer: 'a', tombstone: false, value: b('x') },
      { clock: { b: 9 }, hlc: 10, writer: 'b', tombstone: true, value: new Uint8Array(0) },
      { clock: { b: 8 }, hlc: 10, writer: 'b', tombstone: false, value: b('a') },
    ]],
    ['big', [{ clock: { n1: 1, n3: 7, n2: 2 }, hlc: 77, writer: 'n3', tombstone: false, value: big }]],
    ['big2', [
      { clock: { n1: 1 }, hlc: 78, writer: 'n1', tombstone: false, value: big.subarray(0, 40_000) },
      { clock: { n2: 1 }, hlc: 78, writer: 'n2', tombstone: false, value: big.subarray(1) },
    ]],
  ];
}

describe('tictac', () => {
  it('tictac - an incrementally updated tree equals one rebuilt from scratch over any history of puts and deletes', () => {
    fc.assert(
      fc.property(historyArb, (history) => {
        const store = new Map<string, Version[]>();
        const tree = newTree();
        for (const [key, versions] of history) {
          const before = versionsDigest(key, store.get(key) ?? []);
          if (versions === undefined) store.delete(key);
          else store.set(key, versions);
          updateTree(tree, keyHash(key), before, versionsDigest(key, versions ?? []));
        }
        assert.ok(sameTree(tree, treeOf(store)));
        assert.deepEqual(compareTrees(tree, treeOf(store)), []);
      }),
      runs(200),
    );
  });

  it('tictac - equal sets give equal roots whatever the order of keys and of versions', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(keyArb, fc.array(versionArb, { minLength: 1, maxLength: 3 })), { maxLength: 40 }), (entries) => {
        const a = new Map(entries);
        const b = new Map([...a].reverse().map(([k, vs]) => [k, [...vs].reverse()] as [string, Version[]]));
        assert.equal(treeOf(a).root, treeOf(b).root);
      }),
      runs(200),
    );
  });

  it('tictac - one differing key shows up in exactly its segment', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(keyArb, fc.array(versionArb, { minLength: 1, maxLength: 2 })), { minLength: 1, maxLength: 40 }), versionArb, fc.nat(), (entries, extra, pick) => {
        const a = new Map(entries);
        const keys = [...a.keys()];
        const key = keys[pick % keys.length]!;
        const b = new Map(a);
        b.set(key, [...a.get(key)!, { ...extra, hlc: 5000 }]);
        assert.deepEqual(compareTrees(treeOf(a), treeOf(b)), [segmentOf(keyHash(key))]);
        const c = new Map(a);
        c.delete(key);
        assert.deepEqual(compareTrees(treeOf(a), treeOf(c)), [segmentOf(keyHash(key))]);
      }),
      runs(200),
    );
  });

  it('tictac - the digest changes with the value, the clock, the tombstone and the expiry, and is 0 only for nothing', () => {
    const v: Version = { clock: { a: 1 }, hlc: 10, writer: 'a', tombstone: false, value: new Uint8Array([1]) };
    for (const format of [DigestVersion.Full, DigestVersion.Metadata, DigestVersion.Fast]) {
      const d = versionsDigest('k', [v], format);
      assert.equal(versionsDigest('k', [], format), 0n);
      assert.notEqual(d, 0n);
      assert.notEqual(versionsDigest('k', [{ ...v, value: new Uint8Array([1, 1]) }], format), d, 'a value of another length');
      assert.notEqual(versionsDigest('k', [{ ...v, clock: { a: 2 } }], format), d);
      assert.notEqual(versionsDigest('k', [{ ...v, hlc: 11 }], format), d);
      assert.notEqual(versionsDigest('k', [{ ...v, writer: 'b' }], format), d);
      assert.notEqual(versionsDigest('k', [{ ...v, tombstone: true, value: new Uint8Array() }], format), d);
      assert.notEqual(versionsDigest('k', [{ ...v, expiresHlc: 20 }], format), d);
      assert.notEqual(versionsDigest('j', [v], format), d);
      assert.equal(versionsDigest('k', [{ ...v, clock: { b: 1, a: 1 } }], format), versionsDigest('k', [{ ...v, clock: { a: 1, b: 1 } }], format));
    }
    // Full sees the value's bytes; Metadata and Fast (the default) its length only, never the bytes.
    assert.notEqual(versionsDigest('k', [{ ...v, value: new Uint8Array([2]) }], DigestVersion.Full), versionsDigest('k', [v], DigestVersion.Full));
    assert.equal(versionsDigest('k', [{ ...v, value: new Uint8Array([2]) }], DigestVersion.Metadata), versionsDigest('k', [v], DigestVersion.Metadata));
    assert.equal(versionsDigest('k', [{ ...v, value: new Uint8Array([2]) }], DigestVersion.Fast), versionsDigest('k', [v], DigestVersion.Fast));
    assert.equal(digestVersionDefault, DigestVersion.Fast);
    assert.equal(versionsDigest('k', [v]), versionsDigest('k', [v], DigestVersion.Fast));
    const formats = [DigestVersion.Full, DigestVersion.Metadata, DigestVersion.Fast].map((f) => versionsDigest('k', [v], f));
    assert.equal(new Set(formats).size, 3, 'each format its own digest');
  });

  it('tictac - digests are the bytes older nodes compute (fixed vectors, both the scratch and the streamed layout)', () => {
    // Computed by versionsDigest before it laid fields out in one buffer (commit 7b083cc): trees of nodes
    // of that version must compare equal with this one's.
    const full = [0x96a63c5405b0924an, 0x379cecea575c3118n, 0x93046f4c4a97a1f7n, 0xf9d6608853f7d6e3n, 0x5303f2ef33b8bba6n, 0x2439367f9b156f0fn, 0x61317f98e87f52cdn];
    const vectors: [string, Version[], bigint][] = pinnedSets().map(([key, versions], i) => [key, versions, full[i]!]);
    assert.equal(full.length, vectors.length);
    for (const [key, versions, digest] of vectors) assert.equal(versionsDigest(key, versions, DigestVersion.Full), digest, key);
    // Metadata digests (format 2), from referenceDigest below when format 2 was made: pinned likewise.
    const metadata: bigint[] = vectors.map(([key, versions]) => referenceDigest(key, versions, DigestVersion.Metadata));
    for (const [i, [key, versions]] of vectors.entries()) assert.equal(versionsDigest(key, versions, DigestVersion.Metadata), metadata[i], key);
    assert.deepEqual(metadata.map((d) => d.toString(16).padStart(16, '0')), METADATA_VECTORS);
  });

  it('tictac - the digest equals the field-by-field MD5 of its layout for any version set, large or not, in both formats', () => {
    const text = fc.string({ unit: 'binary', maxLength: 6 });
    // Numbers are written in two halves below 10^8, the low one zero-padded: its edges.
    const digitEdges = fc.constantFrom(0, 9, 10, 99_999_999, 100_000_000, 100_000_001, 100_000_010, 1_000_000_000_000_000, 2 ** 53 - 1);
    const anyVersion: fc.Arbitrary<Version> = fc.record({
      // Up to 12 ids: a clock of more than 8 is sorted by Array.prototype.sort, fewer by insertion.
      clock: fc.dictionary(text, fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), digitEdges), { maxKeys: 12, noNullPrototype: true }),
      hlc: fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 1 }), digitEdges, fc.double({ noNaN: true })),
      writer: text,
      tombstone: fc.boolean(),
      value: fc.oneof(fc.uint8Array({ maxLength: 16 }), fc.integer({ min: 0, max: 20_000 }).map((n) => new Uint8Array(n).fill(n & 255))),
      expiresHlc: fc.option(fc.integer({ min: 0, max: 2 ** 53 - 1 }), { nil: undefined }),
    }, { requiredKeys: ['clock', 'hlc', 'writer', 'tombstone', 'value'] });
    fc.assert(
      fc.property(text, fc.array(anyVersion, { minLength: 1, maxLength: 4 }), (key, versions) => {
        assert.equal(versionsDigest(key, versions, DigestVersion.Full), referenceDigest(key, versions, DigestVersion.Full));
        assert.equal(versionsDigest(key, versions, DigestVersion.Metadata), referenceDigest(key, versions, DigestVersion.Metadata));
      }),
      runs(300),
    );
  });

  it('tictac - Fast digests are pinned: every node computes these for these sets, on any platform', () => {
    // Computed when format 3 was made (session 12); a change here breaks comparisons with nodes already running it.
    const fast = [0x48f93434e369e8bbn, 0x4dd0d383ecb0ca34n, 0xc23885975d89d0dbn, 0x3ea456bf8ffc3025n, 0xe5ebffd9747fbffbn, 0xf10ce602ade04688n, 0x1a709c1973852e90n, 0x30ccdd3e470f0fe7n];
    const odd: [string, Version[]] = ['odd', [{ clock: { 'n\u{1F600}': 2 ** 53 - 1 }, hlc: 12.5, writer: 'n\u{1F600}', tombstone: false, value: new Uint8Array(70_000), expiresHlc: 0 }]];
    const vectors: [string, Version[], bigint][] = [...pinnedSets(), odd].map(([key, versions], i) => [key, versions, fast[i]!]);
    assert.equal(fast.length, vectors.length);
    for (const [key, versions, digest] of vectors) assert.equal(versionsDigest(key, versions, DigestVersion.Fast), digest, key);
  });

  it('tictac - a Fast digest depends on the set alone (not the order of its versions or clock entries) and changes with any field it covers', () => {
    const text = fc.string({ unit: 'binary', maxLength: 6 });
    const anyVersion: fc.Arbitrary<Version> = fc.record({
      clock: fc.dictionary(text, fc.integer({ min: 0, max: 2 ** 53 - 1 }), { maxKeys: 6, noNullPrototype: true }),
      hlc: fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
      writer: text,
      tombstone: fc.boolean(),
      value: fc.uint8Array({ maxLength: 16 }),
      expiresHlc: fc.option(fc.integer({ min: 0, max: 2 ** 53 - 1 }), { nil: undefined }),
    }, { requiredKeys: ['clock', 'hlc', 'writer', 'tombstone', 'value'] });
    const fast = (key: string, versions: Version[]) => versionsDigest(key, versions, DigestVersion.Fast);
    const reordered = (v: Version): Version => ({ ...v, clock: Object.fromEntries(Object.entries(v.clock).reverse()) });
    fc.assert(
      fc.property(text, fc.array(anyVersion, { minLength: 1, maxLength: 4 }), fc.nat(), (key, versions, pick) => {
        const d = fast(key, versions);
        assert.notEqual(d, 0n);
        assert.equal(fast(key, [...versions].reverse().map(reordered)), d, 'the same set in another order');
        const i = pick % versions.length;
        const v = versions[i]!;
        const changed = (w: Version) => fast(key, versions.map((x, j) => (j === i ? w : x)));
        assert.notEqual(fast(`${key}x`, versions), d, 'another key');
        assert.notEqual(changed({ ...v, hlc: v.hlc + 1 === v.hlc ? v.hlc * 2 + 1 : v.hlc + 1 }), d, 'the hlc');
        assert.notEqual(changed({ ...v, writer: `${v.writer}w` }), d, 'the writer');
        assert.notEqual(changed({ ...v, tombstone: !v.tombstone }), d, 'the tombstone');
        assert.notEqual(changed({ ...v, expiresHlc: (v.expiresHlc ?? -1) + 1 }), d, 'the expiry');
        assert.notEqual(changed({ ...v, value: new Uint8Array(v.value.length + 1) }), d, "the value's length");
        assert.notEqual(changed({ ...v, clock: { ...v.clock, [`${Object.keys(v.clock).join('')}z`]: 1 } }), d, 'a clock entry more'); // longer than any id it has
        const first = Object.keys(v.clock)[0];
        if (first !== undefined) assert.notEqual(changed({ ...v, clock: { ...v.clock, [first]: v.clock[first]! + 1 } }), d, 'a counter');
        assert.notEqual(fast(key, [...versions, { ...v, hlc: -1 }]), d, 'a version more');
      }),
      runs(300),
    );
  });

  it('tictac - setSegment keeps the branch and the root consistent', () => {
    const t = newTree();
    updateTree(t, 5n, 0n, 77n);
    setSegment(t, 5, 0n);
    assert.equal(t.root, 0n);
    assert.equal(t.branches[branchOf(5)], 0n);
    setSegment(t, segmentCount - 1, 9n);
    assert.equal(t.root, 9n);
  });
});

/**
 * versionsDigest as it was written first (one Buffer per field, streamed into MD5): the bytes every
 * version must keep; for Metadata the value's field is its 4-byte length alone.
 */
function referenceDigest(key: string, versions: readonly Version[], format: DigestVersion): bigint {
  const sorted = [...versions].sort((a, b) => {
    if (a.hlc !== b.hlc) return a.hlc - b.hlc;
    if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1;
    if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1;
    return Buffer.compare(a.value, b.value);
  });
  const h = createHash('md5');
  const field = (bytes: Uint8Array) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len);
    h.update(bytes);
  };
  field(Buffer.from(key, 'utf8'));
  for (const v of sorted) {
    field(Buffer.from(`${v.hlc}|${v.writer}|${v.tombstone ? 1 : 0}|${v.expiresHlc ?? ''}`, 'utf8'));
    field(Buffer.from(Object.keys(v.clock).sort().map((id) => `${id}:${v.clock[id]}`).join(','), 'utf8'));
    if (format === DigestVersion.Full) field(v.value);
    else {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(v.value.length);
      h.update(len);
    }
  }
  const d = h.digest().readBigUInt64BE(0);
  return d === 0n ? 1n : d;
}

/**
 * The Metadata digests of the fixed vectors above, in their order (hex), as computed when format 2
 * was made. Where every value is empty (the second and fourth) the two formats lay out the same bytes.
 */
const METADATA_VECTORS = ['c3c463be93eb56ce', '379cecea575c3118', '814298841c3271b5', 'f9d6608853f7d6e3', 'd6597f78dbfa1577', '841ec0981ce1637c', 'd80f85e27f433464'];
