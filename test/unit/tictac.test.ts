/**
 * Tictac trees (src/core/tictac.ts).
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { keyHash } from '../../src/core/ring.js';
import { branchOf, compareTrees, newTree, segmentCount, segmentOf, setSegment, updateTree, versionsDigest, type TictacTree } from '../../src/core/tictac.js';
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
    const d = versionsDigest('k', [v]);
    assert.equal(versionsDigest('k', []), 0n);
    assert.notEqual(d, 0n);
    assert.notEqual(versionsDigest('k', [{ ...v, value: new Uint8Array([2]) }]), d);
    assert.notEqual(versionsDigest('k', [{ ...v, clock: { a: 2 } }]), d);
    assert.notEqual(versionsDigest('k', [{ ...v, tombstone: true, value: new Uint8Array() }]), d);
    assert.notEqual(versionsDigest('k', [{ ...v, expiresHlc: 20 }]), d);
    assert.notEqual(versionsDigest('j', [v]), d);
    assert.equal(versionsDigest('k', [{ ...v, clock: { b: 1, a: 1 } }]), versionsDigest('k', [{ ...v, clock: { a: 1, b: 1 } }]));
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
