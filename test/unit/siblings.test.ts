/**
 * The `siblings` conflict policy (issue 12 item 3): dotted versions
 * (core/version.ts versionOrder), the bound on siblings, the reply form
 * (protocol/siblings_reply.ts), the disk record, and the purge rule.
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>) and
 * realistic histories: each write is made as a coordinator makes it, from a
 * context that is the merge of some earlier versions (a read), with a dot
 * that is the coordinator's next HLC reading; some writes are retries (the
 * same context and value again, through the same or another coordinator).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { advance, compare, counterOf, emptyClock, Order, type VClock } from '../../src/core/vclock.js';
import { purgeCandidate } from '../../src/core/gc.js';
import { mergeKeyPages } from '../../src/core/key_listing.js';
import {
  ConflictPolicy,
  contextOf,
  liveSiblings,
  mergeSiblings,
  pastOf,
  reconcile,
  staleFloor,
  versionOrder,
  type Version,
} from '../../src/core/version.js';
import { Metrics } from '../../src/node/api/metrics.js';
import { decodeRecord, encodeRecord } from '../../src/protocol/codec.js';
import { decodeSiblings, encodeSiblings } from '../../src/protocol/siblings_reply.js';
import { versionSet } from '../helpers/versions.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_130);
const runs = (numRuns: number) => ({ seed, numRuns });
const unbounded = Number.MAX_SAFE_INTEGER;
const siblings = { policy: ConflictPolicy.Siblings };
const enc = new TextEncoder();

/** A version as the coordinator `writer` makes it at HLC `hlc` from `context` under `siblings`. */
function put(writer: string, hlc: number, context: VClock, value = 'v', tombstone = false): Version {
  return {
    clock: advance(context, writer, hlc, 16),
    hlc,
    writer,
    tombstone,
    value: tombstone ? new Uint8Array() : enc.encode(value),
    pastCounter: counterOf(context, writer),
  };
}

/** The same under `lww` (no dot): what every node wrote before this policy. */
function lwwPut(writer: string, hlc: number, context: VClock, value = 'v'): Version {
  const { pastCounter: _dot, ...v } = put(writer, hlc, context, value);
  return v;
}

const text = (v: Version) => new TextDecoder().decode(v.value);
const values = (vs: readonly Version[]) => vs.map(text).sort();

describe('siblings - dotted versions', () => {
  it('siblings - two blind puts through one coordinator are siblings (a plain vector clock ordered them and lost the first)', () => {
    const first = put('n1', 10, emptyClock, 'alice');
    const second = put('n1', 20, emptyClock, 'bob');
    assert.equal(compare(second.clock, first.clock), Order.After, 'the anomaly of the old model: {n1:20} descends {n1:10}');
    assert.equal(versionOrder(second, first), Order.Concurrent);
    assert.deepEqual(values(mergeSiblings([first], [second], unbounded, unbounded, siblings)), ['alice', 'bob']);
    // Under lww (no dots) nothing changes: the second supersedes the first, as before.
    assert.deepEqual(values(mergeSiblings([lwwPut('n1', 10, emptyClock, 'alice')], [lwwPut('n1', 20, emptyClock, 'bob')], unbounded)), ['bob']);
  });

  it('siblings - two puts with the same stale context are siblings, through one coordinator or two', () => {
    const base = put('n2', 5, emptyClock, 'base');
    const ctx = contextOf([base]);
    const a = put('n1', 10, ctx, 'a');
    for (const b of [put('n1', 20, ctx, 'b'), put('n3', 20, ctx, 'b')]) {
      assert.equal(versionOrder(a, base), Order.After, 'each supersedes what it read');
      assert.equal(versionOrder(a, b), Order.Concurrent);
      assert.deepEqual(values(mergeSiblings([base], [a, b], unbounded, unbounded, siblings)), ['a', 'b']);
    }
  });

  it('siblings - a put with the context of a read supersedes every sibling read, and nothing written after the read', () => {
    const a = put('n1', 10, emptyClock, 'a');
    const b = put('n1', 20, emptyClock, 'b');
    const c = put('n2', 30, emptyClock, 'c');
    const read = mergeSiblings([], [a, b, c], unbounded, unbounded, siblings);
    const later = put('n1', 40, emptyClock, 'later'); // after the read, through the resolving coordinator
    const resolved = put('n1', 50, contextOf(read), 'resolved');
    for (const r of read) assert.equal(versionOrder(resolved, r), Order.After, text(r));
    assert.equal(versionOrder(resolved, later), Order.Concurrent, 'a write the client never saw stays a sibling');
    assert.deepEqual(values(mergeSiblings(read, [later, resolved], unbounded, unbounded, siblings)), ['later', 'resolved']);
  });

  it('siblings - a retry (same coordinator, context and value) supersedes the first attempt; through another coordinator it is one value in a read', () => {
    const ctx = contextOf([put('n2', 5, emptyClock, 'base')]);
    const first = put('n1', 10, ctx, 'x');
    const again = put('n1', 11, ctx, 'x');
    assert.equal(versionOrder(again, first), Order.After);
    assert.deepEqual(mergeSiblings([first], [again], unbounded, unbounded, siblings), [again]);
    assert.deepEqual(mergeSiblings([again], [first], unbounded, unbounded, siblings), [again]);
    assert.equal(versionOrder(put('n1', 11, ctx, 'y'), first), Order.Concurrent, 'another value is another write');
    const elsewhere = put('n3', 12, ctx, 'x');
    const stored = mergeSiblings([first], [again, elsewhere], unbounded, unbounded, siblings);
    assert.equal(stored.length, 2, 'two coordinators made two writes');
    assert.deepEqual(liveSiblings(stored, 0).map(text), ['x'], 'a read shows the value once');
  });

  it('siblings - the same version delivered twice is one version', () => {
    const v = put('n1', 10, emptyClock, 'x');
    assert.equal(versionOrder(v, { ...v }), Order.Equal);
    assert.deepEqual(mergeSiblings([v], [{ ...v }, v], unbounded, unbounded, siblings), [v]);
  });

  it('siblings - the past of a dotted version is its context; an undotted version is its own past', () => {
    const v = put('n1', 10, { n1: 4, n2: 7 });
    assert.deepEqual(pastOf(v), { n1: 4, n2: 7 });
    assert.deepEqual(pastOf(put('n1', 10, { n2: 7 })), { n2: 7 });
    const old = lwwPut('n1', 10, { n2: 7 });
    assert.deepEqual(pastOf(old), old.clock);
  });

  it('siblings - stale writes: a concurrent fresh version is kept, one whose dot a held version has seen is refused with a floor', () => {
    const held = [put('n1', 10, emptyClock, 'a')];
    assert.equal(staleFloor(held, put('n1', 20, emptyClock, 'b'), ConflictPolicy.Siblings), undefined);
    assert.equal(staleFloor(held, put('n2', 5, emptyClock, 'b'), ConflictPolicy.Siblings), undefined, 'an older timestamp is fine: no LWW under siblings');
    const seen = [put('n2', 30, { n1: 25 }, 'saw n1:25')];
    assert.equal(staleFloor(seen, put('n1', 25, emptyClock, 'reissued'), ConflictPolicy.Siblings), 30, 'the counter went back (a wiped disk)');
    assert.equal(staleFloor(held, put('n1', 10, emptyClock, 'same dot, other value'), ConflictPolicy.Siblings), 10);
  });
});

describe('siblings - the bound', () => {
  it('siblings - past siblingsMax the oldest collapse by LWW into one that descends from them; the newest stay', () => {
    const writes = Array.from({ length: 20 }, (_, i) => put(`w${i % 3}`, 100 + i, emptyClock, `v${i}`));
    let counted = 0;
    const out = mergeSiblings([], writes, 16, unbounded, { policy: ConflictPolicy.Siblings, collapsed: (n) => (counted += n) });
    assert.equal(out.length, 16);
    assert.equal(counted, 4, 'five oldest folded into one: four versions lost');
    const kept = out.map(text);
    for (let i = 5; i < 20; i++) assert.ok(kept.includes(`v${i}`), `v${i} is one of the 15 newest`);
    const folded = out.find((v) => v.pastCounter === undefined)!;
    assert.equal(text(folded), 'v4', 'the collapsed one holds the newest of the oldest');
    for (let i = 0; i < 5; i++) assert.equal(versionOrder(folded, writes[i]!), Order.After);
    for (let i = 5; i < 20; i++) assert.equal(versionOrder(folded, writes[i]!), Order.Concurrent);
    // lww keeps its rule: past the bound everything collapses into one.
    assert.equal(mergeSiblings([], writes, 16).length, 1);
  });

  it('siblings - past the bound, copies of one value (a put retried through other coordinators) fold first: no value is lost', () => {
    const distinct = Array.from({ length: 16 }, (_, i) => put(`w${i % 3}`, 100 + i, emptyClock, `v${i}`));
    const retries = Array.from({ length: 6 }, (_, i) => put(`r${i}`, 50 + i, emptyClock, 'v0'));
    let lost = 0;
    const out = mergeSiblings([], [...retries, ...distinct], 16, unbounded, { policy: ConflictPolicy.Siblings, collapsed: (n) => (lost += n) });
    assert.equal(out.length, 16);
    assert.deepEqual(values(out), distinct.map(text).sort());
    assert.equal(lost, 0, 'nothing counted: no value was lost');
    for (const r of retries) assert.ok(out.some((o) => versionOrder(o, r) === Order.After), 'each copy is superseded by the folded one');
  });

  it('siblings - a byte bound collapses the oldest until the rest fit', () => {
    const big = Array.from({ length: 6 }, (_, i) => put('n1', 10 + i, emptyClock, 'x'.repeat(1000) + i));
    const out = mergeSiblings([], big, 16, 3500, siblings);
    assert.ok(out.length >= 2 && out.length <= 3, `${out.length} siblings`);
    assert.ok(out.map(text).includes('x'.repeat(1000) + 5), 'the newest stays');
  });

  it('siblings - reconcile keeps every concurrent version under siblings, collapses under lww', () => {
    const a = put('n1', 10, emptyClock, 'a');
    const b = put('n2', 11, emptyClock, 'b');
    assert.deepEqual(values(reconcile([[a], [b]], ConflictPolicy.Siblings, 16)), ['a', 'b']);
    assert.deepEqual(values(reconcile([[a], [b]], ConflictPolicy.Lww, 16)), ['b']);
    let counted = 0;
    assert.equal(reconcile([[a], [b]], ConflictPolicy.Siblings, 1, (n) => (counted += n)).length, 1);
    assert.equal(counted, 1);
  });
});

// ---- realistic histories for the properties ----

interface Step {
  writer: number;
  /** Indexes (mod the versions so far) of the versions the writer's client read first. */
  read: number[];
  value: number;
  tombstone: boolean;
  /** Retry an earlier write (mod the writes so far) with the same context and value, through `writer`. */
  retry: number | undefined;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  writer: fc.integer({ min: 0, max: 2 }),
  read: fc.array(fc.nat(), { maxLength: 3 }),
  value: fc.integer({ min: 0, max: 3 }),
  tombstone: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
  retry: fc.option(fc.nat(), { nil: undefined }),
});

function history(steps: readonly Step[]): Version[] {
  const out: Version[] = [];
  const made: { context: VClock; value: string; tombstone: boolean }[] = [];
  steps.forEach((s, i) => {
    const writer = `n${s.writer}`;
    const hlc = 100 + i; // one HLC for the cluster: every dot unique, each coordinator's increasing
    let context: VClock;
    let value: string;
    let tombstone: boolean;
    if (s.retry !== undefined && made.length > 0) {
      ({ context, value, tombstone } = made[s.retry % made.length]!);
    } else {
      context = contextOf(out.length === 0 ? [] : s.read.map((r) => out[r % out.length]!));
      value = `v${s.value}`;
      tombstone = s.tombstone;
    }
    made.push({ context, value, tombstone });
    out.push(put(writer, hlc, context, value, tombstone));
  });
  return out;
}

const historyArb = fc.array(stepArb, { maxLength: 12 }).map(history);

function shuffledArb<T>(xs: T[]): fc.Arbitrary<T[]> {
  return fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length });
}

const merge = (a: readonly Version[], b: readonly Version[]) => mergeSiblings(a, b, unbounded, unbounded, siblings);

describe('siblings - merge properties', () => {
  it(`siblings - merge is commutative: any order of the same versions gives the same set (seed ${seed})`, () => {
    fc.assert(
      fc.property(historyArb.chain((h) => fc.tuple(fc.constant(h), shuffledArb(h))), fc.integer({ min: 1, max: 6 }), ([h, shuffled], max) => {
        assert.deepEqual(versionSet(merge([], shuffled)), versionSet(merge([], h)));
        assert.deepEqual(versionSet(mergeSiblings([], shuffled, max, unbounded, siblings)), versionSet(mergeSiblings([], h, max, unbounded, siblings)));
      }),
      runs(500),
    );
  });

  it(`siblings - merge is associative: (A+B)+C = A+(B+C), and one by one equals all at once (seed ${seed})`, () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), fc.nat(), (h, i, j) => {
        const [x, y] = [i % (h.length + 1), j % (h.length + 1)].sort((p, q) => p - q);
        const [a, b, c] = [h.slice(0, x), h.slice(x, y), h.slice(y)];
        assert.deepEqual(versionSet(merge(merge(a, b), c)), versionSet(merge(a, merge(b, c))));
        assert.deepEqual(versionSet(h.reduce((acc, v) => merge(acc, [v]), [] as Version[])), versionSet(merge([], h)));
      }),
      runs(500),
    );
  });

  it(`siblings - merge is idempotent, answers an antichain, and keeps or supersedes every input (seed ${seed})`, () => {
    fc.assert(
      fc.property(historyArb, (h) => {
        const out = merge([], h);
        assert.deepEqual(versionSet(merge(out, out)), versionSet(out));
        assert.deepEqual(versionSet(merge(out, h)), versionSet(out));
        for (const p of out) for (const q of out) if (p !== q) assert.equal(versionOrder(p, q), Order.Concurrent);
        for (const v of h) assert.ok(out.some((o) => o === v || versionOrder(o, v) === Order.After), 'every input is kept or superseded');
      }),
      runs(500),
    );
  });

  it(`siblings - a put with the context of a read supersedes everything read, and the rest stays (seed ${seed})`, () => {
    fc.assert(
      fc.property(historyArb, fc.array(fc.nat(), { maxLength: 5 }), fc.integer({ min: 0, max: 2 }), (h, picks, w) => {
        if (h.length === 0) return;
        const read = merge([], picks.map((p) => h[p % h.length]!));
        const resolved = put(`n${w}`, 1000, contextOf(read), 'resolved');
        for (const r of read) assert.equal(versionOrder(resolved, r), Order.After);
        const after = merge(merge([], h), [resolved]);
        assert.ok(after.includes(resolved), 'nothing supersedes the resolving put');
        for (const r of read) assert.ok(!after.includes(r), 'no sibling read survives it');
        // Versions by coordinators absent from the context stay (the context cannot cover their dots).
        for (const v of merge([], h)) if (counterOf(contextOf(read), v.writer) === 0) assert.ok(after.includes(v));
      }),
      runs(500),
    );
  });
});

describe('siblings - record, reply form, purge', () => {
  it('siblings - pastCounter survives the disk record; records without it read as before; a dot not above its past is refused', () => {
    const v = put('n1', 10, { n1: 4, n2: 7 }, 'x');
    const [back] = decodeRecord(encodeRecord([v]));
    assert.equal(back?.pastCounter, 4);
    assert.equal(versionOrder(back!, v), Order.Equal);
    const [plain] = decodeRecord(encodeRecord([lwwPut('n1', 10, {}, 'x')]));
    assert.equal(plain?.pastCounter, undefined);
    assert.throws(() => decodeRecord(encodeRecord([{ ...v, pastCounter: 10 }])), /pastCounter 10 is not below/);
  });

  it('siblings - the reply form: values back to back, lengths in a header', () => {
    const parts = [enc.encode('hello'), new Uint8Array(), Uint8Array.from([0, 255, 44])];
    const { data, lengths } = encodeSiblings(parts);
    assert.equal(lengths, '5,0,3');
    assert.deepEqual(decodeSiblings(data, lengths).map((p) => [...p]), parts.map((p) => [...p]));
    for (const bad of ['5,0', '5,0,4', '5,x,3', '', '-1,9']) assert.throws(() => decodeSiblings(data, bad), Error, bad);
  });

  it('siblings - a key with a live sibling beside a dead tombstone is not purged; lww still purges a shadowed value', () => {
    const graceSeconds = 1;
    const nowHlc = 10_000_000; // 10 s of HLC time: everything below is dead for longer than the grace
    const value = put('n1', 10, emptyClock, 'live');
    const del = put('n2', 20, emptyClock, '', true);
    assert.equal(purgeCandidate([value, del], nowHlc, graceSeconds), undefined);
    const { pastCounter: _dot, ...lwwDel } = del;
    // Key listing agrees with a get: listed under siblings (a live sibling), not under lww (a tombstone wins).
    const page = { items: [{ hash: 1n, key: 'k', versions: [value, del] }] };
    assert.deepEqual(mergeKeyPages([page], 0, 16, ConflictPolicy.Siblings).live.map((k) => k.key), ['k']);
    assert.deepEqual(mergeKeyPages([page], 0, 16).live, []);
    assert.equal(purgeCandidate([lwwPut('n1', 10, emptyClock, 'live'), lwwDel], nowHlc, graceSeconds), 'tombstone');
    assert.equal(purgeCandidate([put('n1', 10, emptyClock, '', true), del], nowHlc, graceSeconds), 'tombstone');
  });

  it('siblings - /metrics has goddb_siblings_collapsed_total', async () => {
    const zero = () => 0;
    const metrics = new Metrics('n1', {
      inflight: zero, membersUp: zero, readRepairs: zero, staleRetries: zero, staleRefusals: zero, skewRefusals: zero, malformedReplicaRequests: zero, unconfirmedMembers: zero,
      hlc: zero, handoffKeysSent: zero, handoffBytesSent: zero, handoffActive: zero, keys: async () => 0, ringMembers: zero, ringOwnedRatio: zero, memberStates: () => [],
      settled: () => true, keysDeleted: zero, siblingsCollapsed: () => 7,
    });
    assert.match(await metrics.registry.metrics(), /goddb_siblings_collapsed_total\{node_id="n1"\} 7/);
  });
});
