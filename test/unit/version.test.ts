/**
 * Versions, siblings and reconciliation (src/core/version.ts).
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>); a
 * failing property prints its seed and path, and the same seed replays it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compare, counterOf, descends, Order, type VClock } from '../../src/core/vclock.js';
import { limits } from '../../src/core/limits.js';
import {
  agreedSingle,
  collapse,
  ConflictPolicy,
  contextOf,
  isUpToDate,
  lwwCompare,
  mergeOneLww,
  mergeSiblings,
  reconcile,
  union,
  visibleValue,
  type Version,
} from '../../src/core/version.js';
import { versionSet } from '../helpers/versions.js';

const seed = Number(process.env['FC_SEED'] ?? 20_250_103);
const runs = (numRuns: number) => ({ seed, numRuns });
const unbounded = Number.MAX_SAFE_INTEGER;

function version(clock: VClock, hlc: number, writer: string, value = 'v', tombstone = false): Version {
  return { clock, hlc, writer, tombstone, value: tombstone ? new Uint8Array() : new TextEncoder().encode(value) };
}

function text(v: Version | undefined): string | undefined {
  return v === undefined ? undefined : new TextDecoder().decode(v.value);
}


// Small domains so that random versions often share clocks, timestamps and writers.
const clockArb: fc.Arbitrary<VClock> = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 1, max: 3 }), {
  maxKeys: 4,
  noNullPrototype: true,
});
const versionArb: fc.Arbitrary<Version> = fc
  .record({
    clock: clockArb,
    hlc: fc.integer({ min: 0, max: 3 }),
    writer: fc.constantFrom('a', 'b', 'c'),
    tombstone: fc.boolean(),
    value: fc.constantFrom('x', 'y', 'zz'),
  })
  .map((r) => version(r.clock, r.hlc, r.writer, r.value, r.tombstone));
const versionsArb = fc.array(versionArb, { maxLength: 10 });

function withPermutation<T>(arb: fc.Arbitrary<T[]>): fc.Arbitrary<[T[], T[]]> {
  return arb.chain((xs) => fc.tuple(fc.constant(xs), fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length })));
}

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

describe('version - lwwCompare', () => {
  it('version - lww: the later timestamp wins whatever the writer', () => {
    assert.ok(lwwCompare(version({}, 2, 'a'), version({}, 1, 'z')) > 0);
    assert.ok(lwwCompare(version({}, 1, 'z'), version({}, 2, 'a')) < 0);
  });

  it('version - lww: on equal timestamps the larger writer id wins', () => {
    assert.ok(lwwCompare(version({}, 5, 'b'), version({}, 5, 'a')) > 0);
    assert.ok(lwwCompare(version({}, 5, 'a'), version({}, 5, 'b')) < 0);
  });

  it('version - lww: on a perfect tie a delete wins, then the larger value bytes', () => {
    assert.ok(lwwCompare(version({}, 5, 'a', '', true), version({}, 5, 'a', 'zzz')) > 0);
    assert.ok(lwwCompare(version({}, 5, 'a', 'b'), version({}, 5, 'a', 'a')) > 0);
    assert.ok(lwwCompare(version({}, 5, 'a', 'ab'), version({}, 5, 'a', 'a')) > 0);
    assert.equal(lwwCompare(version({ a: 1 }, 5, 'a', 'x'), version({ b: 1 }, 5, 'a', 'x')), 0, 'clocks do not take part');
  });

  it(`version - lwwCompare is a total order: antisymmetric, transitive, zero only for equal contents (seed ${seed})`, () => {
    fc.assert(
      fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
        assert.ok(sign(lwwCompare(a, b)) === -sign(lwwCompare(b, a)));
        assert.equal(lwwCompare(a, a), 0);
        if (lwwCompare(a, b) <= 0 && lwwCompare(b, c) <= 0) assert.ok(lwwCompare(a, c) <= 0);
        const sameContents =
          a.hlc === b.hlc && a.writer === b.writer && a.tombstone === b.tombstone && Buffer.compare(a.value, b.value) === 0;
        assert.equal(lwwCompare(a, b) === 0, sameContents);
      }),
      runs(500),
    );
  });
});

describe('version - mergeSiblings', () => {
  it('version - a newer incoming version replaces the one it descends from', () => {
    const old = version({ a: 1 }, 1, 'a', 'old');
    const next = version({ a: 2 }, 2, 'a', 'new');
    assert.deepEqual(mergeSiblings([old], [next], 16), [next]);
  });

  it('version - an obsolete incoming version is dropped', () => {
    const old = version({ a: 1 }, 9, 'a', 'old');
    const next = version({ a: 2 }, 2, 'a', 'new');
    assert.deepEqual(mergeSiblings([next], [old], 16), [next], 'causality wins over a later timestamp');
  });

  it('version - concurrent versions are kept as siblings, sorted by lww', () => {
    const x = version({ a: 1 }, 2, 'a', 'x');
    const y = version({ b: 1 }, 1, 'b', 'y');
    assert.deepEqual(mergeSiblings([x], [y], 16), [y, x]);
  });

  it('version - a version that descends several siblings replaces them all', () => {
    const x = version({ a: 1 }, 1, 'a', 'x');
    const y = version({ b: 1 }, 1, 'b', 'y');
    const z = version({ a: 1, b: 1, c: 1 }, 2, 'c', 'z');
    assert.deepEqual(mergeSiblings([x, y], [z], 16), [z]);
  });

  it('version - equal clocks with different contents keep the lww winner', () => {
    const loser = version({ a: 1 }, 1, 'a', 'lose');
    const winner = version({ a: 1 }, 2, 'a', 'win');
    assert.deepEqual(mergeSiblings([loser], [winner], 16), [winner]);
    assert.deepEqual(mergeSiblings([winner], [loser], 16), [winner]);
  });

  it('version - merging the same version twice keeps one copy', () => {
    const x = version({ a: 1 }, 1, 'a', 'x');
    const y = version({ b: 1 }, 1, 'b', 'y');
    assert.deepEqual(mergeSiblings([x, y], [x, y], 16), mergeSiblings([x, y], [], 16));
    assert.equal(mergeSiblings([], [x, x, x], 16).length, 1);
  });

  it('version - exactly siblingsMax siblings are kept; one more collapses them to one by lww', () => {
    const vs = ['a', 'b', 'c'].map((id, i) => version({ [id]: 1 }, i, id, `v${i}`));
    assert.equal(mergeSiblings([], vs, 3).length, 3);
    const collapsed = mergeSiblings([], vs, 2);
    assert.equal(collapsed.length, 1);
    assert.equal(text(collapsed[0]), 'v2');
    assert.deepEqual(collapsed[0]!.clock, { a: 1, b: 1, c: 1 });
    for (const v of vs) assert.ok(descends(collapsed[0]!.clock, v.clock));
  });

  it('version - mergeSiblings does not change its inputs', () => {
    const x = version({ a: 1 }, 1, 'a', 'x');
    const y = version({ b: 1 }, 1, 'b', 'y');
    const siblings = [y, x];
    mergeSiblings(siblings, [version({ a: 2, b: 1 }, 3, 'a', 'z')], 16);
    assert.deepEqual(siblings, [y, x]);
  });

  it(`version - the result is an antichain that covers every input (seed ${seed})`, () => {
    fc.assert(
      fc.property(versionsArb, (vs) => {
        const out = mergeSiblings([], vs, unbounded);
        for (let i = 0; i < out.length; i++) {
          for (let j = i + 1; j < out.length; j++) assert.equal(compare(out[i]!.clock, out[j]!.clock), Order.Concurrent);
        }
        for (const v of vs) assert.ok(out.some((o) => descends(o.clock, v.clock)), 'every input is kept or superseded');
        for (const o of out) assert.ok(vs.includes(o), 'nothing is invented below siblingsMax');
        for (let i = 1; i < out.length; i++) assert.ok(lwwCompare(out[i - 1]!, out[i]!) <= 0, 'sorted by lww');
      }),
      runs(500),
    );
  });

  it(`version - any permutation of the incoming versions yields the same set (seed ${seed})`, () => {
    fc.assert(
      fc.property(withPermutation(versionsArb), fc.integer({ min: 1, max: 6 }), ([vs, shuffled], siblingsMax) => {
        assert.deepEqual(versionSet(mergeSiblings([], shuffled, siblingsMax)), versionSet(mergeSiblings([], vs, siblingsMax)));
      }),
      runs(500),
    );
  });

  it(`version - merging one by one equals merging all at once (seed ${seed})`, () => {
    fc.assert(
      fc.property(versionsArb, versionsArb, (xs, ys) => {
        const stepwise = ys.reduce((acc, v) => mergeSiblings(acc, [v], unbounded), mergeSiblings([], xs, unbounded));
        assert.deepEqual(versionSet(stepwise), versionSet(mergeSiblings([], [...xs, ...ys], unbounded)));
      }),
      runs(300),
    );
  });

  it(`version - merging is idempotent: a result absorbs itself and its inputs (seed ${seed})`, () => {
    fc.assert(
      fc.property(versionsArb, fc.integer({ min: 1, max: 6 }), (vs, siblingsMax) => {
        const out = mergeSiblings([], vs, siblingsMax);
        assert.deepEqual(versionSet(mergeSiblings(out, out, siblingsMax)), versionSet(out));
        assert.deepEqual(versionSet(mergeSiblings(out, vs, siblingsMax)), versionSet(out));
        assert.ok(out.length <= siblingsMax);
      }),
      runs(300),
    );
  });
});

describe('version - mergeOneLww', () => {
  // Some versions dotted (written under siblings, then read under lww): versionOrder compares those by their past.
  const maybeDotted: fc.Arbitrary<Version> = fc.tuple(versionArb, fc.boolean(), fc.nat()).map(([v, dotted, n]) => {
    const dot = counterOf(v.clock, v.writer);
    return dotted && dot > 0 ? { ...v, pastCounter: n % dot } : v;
  });

  it(`version - mergeOneLww answers what the replica's lww merge of one held and one incoming version did (seed ${seed})`, () => {
    fc.assert(
      fc.property(maybeDotted, maybeDotted, fc.constantFrom(unbounded, 1), (held, v, bytesMax) => {
        const merged = mergeSiblings([held], [v], limits.siblingsMax, bytesMax);
        const before = merged.length > 1 ? [collapse(merged)] : merged;
        assert.deepEqual(mergeOneLww(held, v), before);
      }),
      runs(2000),
    );
  });

  it('version - a blind put concurrent with the held version collapses into one holding the later value and both clocks', () => {
    const held = version({ a: 5, b: 3 }, 5, 'a', 'old');
    const put = version({ c: 9 }, 9, 'c', 'new');
    const [one, ...rest] = mergeOneLww(held, put);
    assert.deepEqual(rest, []);
    assert.equal(text(one), 'new');
    assert.deepEqual(one!.clock, { a: 5, b: 3, c: 9 });
    assert.deepEqual(mergeOneLww(held, version({ a: 4 }, 4, 'a', 'older')), [held], 'an obsolete version adds nothing');
  });
});

describe('version - collapse', () => {
  it('version - collapsing nothing is a programmer error', () => {
    assert.throws(() => collapse([]), /collapse of no versions/);
  });

  it('version - collapsing one version returns it unchanged', () => {
    const x = version({ a: 1 }, 1, 'a', 'x');
    assert.equal(collapse([x]), x);
  });

  it('version - a collapsed tombstone stays a tombstone', () => {
    const del = version({ a: 1 }, 9, 'a', '', true);
    const put = version({ b: 1 }, 1, 'b', 'y');
    const c = collapse([put, del]);
    assert.equal(c.tombstone, true);
    assert.deepEqual(c.clock, { a: 1, b: 1 });
  });

  it(`version - collapse descends every sibling and holds the lww winner's contents (seed ${seed})`, () => {
    fc.assert(
      fc.property(fc.array(versionArb, { minLength: 1, maxLength: 8 }), (vs) => {
        const c = collapse(vs);
        for (const v of vs) {
          assert.ok(descends(c.clock, v.clock));
          assert.ok(lwwCompare(c, v) >= 0);
        }
        assert.ok(vs.some((v) => lwwCompare(c, v) === 0), 'the contents are one of the siblings');
      }),
      runs(500),
    );
  });
});

describe('version - reconcile', () => {
  it('version - reconciling no answers, or only empty ones, gives nothing', () => {
    assert.deepEqual(reconcile([], ConflictPolicy.Lww, 16), []);
    assert.deepEqual(reconcile([[], []], ConflictPolicy.Lww, 16), []);
  });

  it('version - lww reconciles concurrent answers into one version that supersedes them', () => {
    const x = version({ a: 1 }, 1, 'a', 'x');
    const y = version({ b: 1 }, 2, 'b', 'y');
    const out = reconcile([[x], [y]], ConflictPolicy.Lww, 16);
    assert.equal(out.length, 1);
    assert.equal(text(out[0]), 'y');
    assert.deepEqual(out[0]!.clock, { a: 1, b: 1 });
  });

  it('version - a newer answer beats an older one whatever their timestamps', () => {
    const old = version({ a: 1 }, 9, 'a', 'old');
    const next = version({ a: 2 }, 1, 'a', 'new');
    assert.deepEqual(reconcile([[old], [next]], ConflictPolicy.Lww, 16), [next]);
  });

  it(`version - reconcile gives the same result whatever the order of answers and their versions (seed ${seed})`, () => {
    const answersArb = fc.array(fc.array(versionArb, { maxLength: 4 }), { maxLength: 4 });
    const arb = answersArb.chain((answers) =>
      fc.tuple(
        fc.constant(answers),
        fc.shuffledSubarray(answers, { minLength: answers.length, maxLength: answers.length }),
        fc.nat(),
      ),
    );
    fc.assert(
      fc.property(arb, ([answers, shuffled, rotate]) => {
        const reordered = shuffled.map((a) => (a.length === 0 ? a : [...a.slice(rotate % a.length), ...a.slice(0, rotate % a.length)]));
        const expected = reconcile(answers, ConflictPolicy.Lww, 16);
        assert.deepEqual(versionSet(reconcile(reordered, ConflictPolicy.Lww, 16)), versionSet(expected));
        assert.ok(expected.length <= 1);
        const all = answers.flat();
        if (all.length > 0) for (const v of all) assert.ok(descends(expected[0]!.clock, v.clock));
      }),
      runs(500),
    );
  });
});

describe('version - isUpToDate, contextOf, visibleValue', () => {
  const x = version({ a: 1 }, 1, 'a', 'x');
  const y = version({ b: 1 }, 2, 'b', 'y');
  const merged = collapse([x, y]);

  it('version - a replica holding exactly the reconciled versions is up to date', () => {
    assert.equal(isUpToDate([merged], [merged]), true);
    assert.equal(isUpToDate([{ ...merged, value: Uint8Array.from(merged.value) }], [merged]), true, 'by contents, not identity');
    assert.equal(isUpToDate([y, x], [x, y]), true, 'order does not matter');
  });

  it('version - a replica missing a version or holding the unreconciled siblings is not up to date', () => {
    assert.equal(isUpToDate([], [merged]), false);
    assert.equal(isUpToDate([x], [merged]), false);
    assert.equal(isUpToDate([x, y], [merged]), false);
    assert.equal(isUpToDate([x], [y]), false);
    assert.equal(isUpToDate([version({ a: 1 }, 1, 'a', 'other')], [x]), false, 'same clock, other contents');
  });

  it('version - every replica is up to date when nothing was reconciled', () => {
    assert.equal(isUpToDate([], []), true);
  });

  it('version - contextOf merges every sibling clock', () => {
    assert.deepEqual(contextOf([]), {});
    assert.deepEqual(contextOf([x, y, version({ a: 3 }, 0, 'a')]), { a: 3, b: 1 });
  });

  it('version - visibleValue is undefined for no versions', () => {
    assert.equal(visibleValue([], 0), undefined);
  });

  it('version - visibleValue is undefined when a tombstone wins', () => {
    assert.equal(visibleValue([version({ a: 2 }, 5, 'a', '', true)], 0), undefined);
    assert.equal(visibleValue([x, version({ b: 1 }, 9, 'b', '', true)], 0), undefined);
  });

  it('version - visibleValue is the lww winner among live siblings', () => {
    assert.equal(visibleValue([y, x], 0), y);
    assert.equal(visibleValue([x, y], 0), y);
    assert.equal(visibleValue([version({ b: 1 }, 0, 'b', '', true), x], 0), x, 'an older delete does not hide a later write');
  });

  it('version - visibleValue hides a winner from the moment its expiry is reached', () => {
    const ttl = { ...y, expiresHlc: 100 };
    assert.equal(visibleValue([ttl], 99), ttl);
    assert.equal(visibleValue([ttl], 100), undefined, 'expired at exactly expiresHlc');
    assert.equal(visibleValue([ttl], 5000), undefined);
    assert.equal(visibleValue([x, ttl], 100), undefined, 'an older live sibling does not show through an expired winner');
    assert.equal(visibleValue([ttl, version({ c: 1 }, 3, 'c', 'later')], 5000)?.hlc, 3, 'a later write without expiry is live');
  });

  it('version - an expiry changes no merge: an expired version supersedes and outranks like any write', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 }), (a, b) => {
        const older = version({ a: 1 }, a, 'a', 'old');
        const newer = { ...version({ b: 1 }, a + b, 'b', 'new'), expiresHlc: a + b + 1 };
        const merged = reconcile([[older], [newer]], ConflictPolicy.Lww, 16);
        assert.equal(merged.length, 1);
        assert.equal(merged[0]!.expiresHlc, a + b + 1, 'the collapsed version keeps the winner\'s expiry');
        assert.equal(visibleValue(merged, a + b + 1), undefined);
      }),
      runs(200),
    );
  });
});

describe('version - union', () => {
  it('version - union keeps every version no other answer descends from, and only those', () => {
    const old = version({ a: 1 }, 1, 'a', 'old');
    const newer = version({ a: 2 }, 2, 'a', 'newer');
    const other = version({ b: 1 }, 3, 'b', 'other');
    const all = union([[old], [newer, other], []], unbounded);
    assert.deepEqual(all.map((v) => Buffer.from(v.value).toString()).sort(), ['newer', 'other']);
    assert.equal(isUpToDate([newer, other], all), true, 'a replica holding both is not behind');
    assert.equal(isUpToDate([old], all), false, 'a replica holding only the old one is');
    assert.deepEqual(union([], unbounded), []);
  });
});

describe('version - agreedSingle', () => {
  it('version - answers agreeing on one version, or on none, are that; anything else is undefined', () => {
    const x = version({ a: 1 }, 1, 'a', 'x');
    const y = version({ b: 1 }, 2, 'b', 'y');
    assert.deepEqual(agreedSingle([[x], [version({ a: 1 }, 1, 'a', 'x')]]), [x]);
    assert.deepEqual(agreedSingle([[], []]), []);
    assert.equal(agreedSingle([]), undefined);
    assert.equal(agreedSingle([[x], [y]]), undefined);
    assert.equal(agreedSingle([[x], []]), undefined);
    assert.equal(agreedSingle([[], [x]]), undefined);
    assert.equal(agreedSingle([[x, y], [x, y]]), undefined, 'siblings go the long way');
  });

  it(`version - when answers agree, reconcile and union give the same and every answer is up to date (seed ${seed})`, () => {
    const answersArb = fc.oneof(
      fc.array(fc.array(versionArb, { maxLength: 1 }), { minLength: 1, maxLength: 3 }),
      fc.tuple(fc.array(versionArb, { maxLength: 1 }), fc.integer({ min: 1, max: 3 })).map(([a, n]) => Array.from({ length: n }, () => a.map((v) => ({ ...v })))),
    );
    fc.assert(
      fc.property(answersArb, (answers) => {
        const agreed = agreedSingle(answers);
        if (agreed === undefined) return;
        assert.deepEqual(agreed, reconcile(answers, ConflictPolicy.Lww, 16));
        assert.deepEqual(agreed, reconcile(answers, ConflictPolicy.Siblings, 16));
        const all = union(answers, 16);
        assert.deepEqual(agreed, all);
        for (const a of answers) assert.equal(isUpToDate(a, all), true);
      }),
      runs(300),
    );
  });
});

describe('disk record formats', () => {
  it('record - format 2 round trips; a format-1 record (protocol-1 nodes: timestampMs, v and kind) reads with its timestamp in HLC units', async () => {
    const { encodeRecord, decodeRecord, Kind } = await import('../../src/protocol/codec.js');
    const { Encoder } = await import('cbor-x');
    const v: Version = { clock: { n1: 1_700_000_000_000_123 }, hlc: 1_700_000_000_000_123, writer: 'n1', tombstone: false, value: Buffer.from('x') };
    assert.deepEqual(decodeRecord(encodeRecord([v])).map((x) => ({ ...x, value: Buffer.from(x.value).toString() })), [{ ...v, value: 'x' }]);
    const old = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false }).encode({
      v: 1,
      kind: Kind.StoredRecord,
      versions: [{ clock: { n1: 1_700_000_000_000_456 }, timestampMs: 1_700_000_000_000, writer: 'n1', tombstone: false, value: Buffer.from('old') }],
    });
    const [read] = decodeRecord(old);
    assert.equal(read!.hlc, 1_700_000_000_000_000);
    assert.equal(Buffer.from(read!.value).toString(), 'old');
    assert.throws(() => decodeRecord(new Encoder({ useRecords: false, mapsAsObjects: true }).encode({ f: 3, versions: [] })), /record format 3/);
  });
});
