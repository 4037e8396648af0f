/**
 * Range moves, the pure part (core/moves.ts): arcs, spans, pull tasks and
 * their sources, pending owners, foreign arcs; and the wire forms of range
 * pages and member records (protocol/codec.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Encoder } from 'cbor-x';
import fc from 'fast-check';
import { applyHeartbeat, applyState, MemberState, stateNewer, type MemberView } from '../../src/core/membership.js';
import { arcsOf, foreignArcs, hashMax, inArc, pendingOwners, pullTasks, ringFingerprint, spansOf } from '../../src/core/moves.js';
import { buildRing, keyHash, preferenceList, type Ring } from '../../src/core/ring.js';
import { allocateTokens, initialTokens } from '../../src/core/tokens.js';
import { decode, encode, Kind, ProtocolError } from '../../src/protocol/codec.js';

const n = 3;
const raw = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

function ringOf(layout: ReadonlyMap<string, bigint[]>): Ring {
  return buildRing([...layout].map(([id, tokens]) => ({ id, virtualNodes: tokens.length, tokens })));
}

function cluster(ids: string[]): Map<string, bigint[]> {
  return initialTokens(new Map(ids.map((id) => [id, 10])), n);
}

function withJoiner(layout: Map<string, bigint[]>, id: string): Map<string, bigint[]> {
  const placed = [...layout].flatMap(([nodeId, ts]) => ts.map((position) => ({ position, nodeId })));
  const caps = new Map([...layout.keys(), id].map((m) => [m, 10]));
  return new Map([...layout, [id, allocateTokens(placed, id, 10, caps, n)]]);
}

const keys = Array.from({ length: 2000 }, (_, i) => `key-${i}`);

describe('moves - arcs and spans', () => {
  it('moves - arcs cover the ring once: every hash is in exactly one arc, and one arc is the whole ring for one token', () => {
    const ring = ringOf(cluster(['a', 'b', 'c']));
    const arcs = arcsOf([ring]);
    assert.equal(arcs.length, ring.tokens.length);
    for (const k of keys.slice(0, 300)) assert.equal(arcs.filter((a) => inArc(keyHash(k), a)).length, 1, k);
    for (const edge of [0n, hashMax, ring.tokens[0]!.position]) assert.equal(arcs.filter((a) => inArc(edge, a)).length, 1);
    const single = arcsOf([buildRing([{ id: 'a', virtualNodes: 1, tokens: [42n] }])]);
    assert.deepEqual(single, [{ start: 42n, end: 42n }]);
    assert.deepEqual(spansOf(single[0]!), [{ fromHash: 43n, toHash: hashMax }, { fromHash: 0n, toHash: 42n }]);
  });

  it('moves - a wrapping arc is two spans, a plain one is one; spans hold exactly the arc', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, hashMax), fc.bigInt(0n, hashMax), fc.bigInt(0n, hashMax), (start, end, h) => {
        const arc = { start, end };
        const spans = spansOf(arc);
        assert.equal(spans.some((s) => h >= s.fromHash && h <= s.toHash), inArc(h, arc));
        for (const s of spans) assert.ok(s.fromHash <= s.toHash);
      }),
    );
  });
});

describe('moves - pull tasks', () => {
  it('moves - a joiner pulls exactly the arcs of the keys it will replicate, each from the one member it replaces', () => {
    const before = cluster(['a', 'b', 'c', 'd']);
    const serving = ringOf(before);
    const future = ringOf(withJoiner(before, 'e'));
    const tasks = pullTasks({ base: undefined, serving, future, n, self: 'e', isUp: () => true });
    for (const k of keys) {
      const h = keyHash(k);
      const task = tasks.find((t) => inArc(h, t.arc));
      const next = preferenceList(future, h, n);
      assert.equal(task !== undefined, next.includes('e'), `${k}: pulled exactly when e will replicate it`);
      if (task) {
        const replaced = preferenceList(serving, h, n).filter((id) => !next.includes(id));
        assert.deepEqual(task.sources, replaced, `${k}: from the member e takes the place of`);
      }
    }
    // The members that stay gain nothing from a join.
    for (const id of before.keys()) assert.deepEqual(pullTasks({ base: serving, serving, future, n, self: id, isUp: () => true }), []);
  });

  it('moves - when the replaced member is removed, every other serving replica is a source, down ones too (the arc waits for them)', () => {
    const layout = cluster(['a', 'b', 'c', 'd', 'e']);
    const base = ringOf(layout);
    // d is removing: out of the future ring, still in the serving ring, and down.
    const future = ringOf(new Map([...layout].filter(([id]) => id !== 'd')));
    const gainers = new Set<string>();
    for (const self of ['a', 'b', 'c', 'e']) {
      const tasks = pullTasks({ base, serving: base, future, n, self, isUp: (id) => id !== 'd', dead: (id) => id === 'd' });
      if (tasks.length > 0) gainers.add(self);
      for (const t of tasks) {
        const serving = preferenceList(base, t.arc.end, n);
        assert.ok(serving.includes('d'), 'only arcs d replicated move');
        assert.deepEqual(t.sources, serving.filter((id) => id !== self && id !== 'd'));
      }
      // Liveness does not shrink the sources: a survivor that is down may hold the only copy of a write.
      const others = pullTasks({ base, serving: base, future, n, self, isUp: (id) => id === self, dead: (id) => id === 'd' });
      assert.deepEqual(others, tasks);
      // Not removed, only down: d is still a source, and the arc waits for it.
      for (const t of pullTasks({ base, serving: base, future, n, self, isUp: (id) => id !== 'd' })) assert.ok(t.sources.includes('d'));
    }
    assert.ok(gainers.size > 0);
  });

  it('moves - a leaving member is the source of what the others gain; it gains nothing', () => {
    const layout = cluster(['a', 'b', 'c', 'd']);
    const serving = ringOf(layout);
    const future = ringOf(new Map([...layout].filter(([id]) => id !== 'b')));
    assert.deepEqual(pullTasks({ base: serving, serving, future, n, self: 'b', isUp: () => true }), []);
    let arcs = 0;
    for (const self of ['a', 'c', 'd']) {
      for (const t of pullTasks({ base: serving, serving, future, n, self, isUp: () => true })) {
        assert.deepEqual(t.sources, ['b']);
        arcs++;
      }
    }
    assert.ok(arcs > 0);
  });

  it('moves - pending owners are the future list less the serving one; foreign arcs are those a node replicates in neither ring', () => {
    const before = cluster(['a', 'b', 'c', 'd']);
    const serving = ringOf(before);
    const future = ringOf(withJoiner(before, 'e'));
    const foreign = foreignArcs(serving, future, n, 'a');
    for (const k of keys) {
      const h = keyHash(k);
      const now = preferenceList(serving, h, n);
      const next = preferenceList(future, h, n);
      assert.deepEqual(pendingOwners(serving, future, h, n), next.filter((id) => !now.includes(id)));
      assert.equal(foreign.some((a) => inArc(h, a)), !now.includes('a') && !next.includes('a'), k);
    }
    assert.notEqual(ringFingerprint(serving), ringFingerprint(future));
    assert.equal(ringFingerprint(serving), ringFingerprint(ringOf(before)));
  });
});

describe('moves - member states', () => {
  it('moves - a newer state version wins; at equal versions the later state; a removal outlives the member\'s old word', () => {
    assert.ok(stateNewer({ state: MemberState.Up, stateVersion: 2 }, { state: MemberState.Removed, stateVersion: 1 }));
    assert.ok(stateNewer({ state: MemberState.Removed, stateVersion: 1 }, { state: MemberState.Removing, stateVersion: 1 }));
    assert.ok(!stateNewer({ state: MemberState.Up, stateVersion: 1 }, { state: MemberState.Up, stateVersion: 1 }));
    let view: MemberView = applyHeartbeat(new Map(), { id: 'x', virtualNodes: 10, incarnation: 'i1', heartbeat: 1, state: MemberState.Up, stateVersion: 1 }, 0, 10);
    view = applyState(view, 'x', { state: MemberState.Removing, stateVersion: 2 });
    assert.equal(view.get('x')!.state, MemberState.Removing);
    // x's later heartbeat (it was only partitioned) still says up at version 1: the removal stays.
    view = applyHeartbeat(view, { id: 'x', virtualNodes: 10, incarnation: 'i1', heartbeat: 2, state: MemberState.Up, stateVersion: 1 }, 5, 10);
    assert.equal(view.get('x')!.state, MemberState.Removing);
    assert.equal(view.get('x')!.heartbeat, 2);
  });
});

describe('moves - wire', () => {
  it('moves - range pages and member records round-trip, bigints as 16 hex digits', () => {
    const req = { kind: Kind.RangeRequest, from: 'n4', fromHash: 1n, toHash: hashMax, after: { hash: 77n, key: 'k' }, bytesMax: 1000 } as const;
    assert.deepEqual(decode(encode(req), Kind.RangeRequest), req);
    const reply = { kind: Kind.RangeReply, items: [{ key: 'k', versions: [] }], next: { hash: hashMax, key: 'k' } };
    assert.deepEqual(decode(encode(reply as never), Kind.RangeReply), reply);
    const records = { kind: Kind.Members, records: [{ id: 'n1', incarnation: 'i', virtualNodes: 2, heartbeat: 3, state: MemberState.Leaving, stateVersion: 4, synced: 'abc', tokens: [5n, 6n] }] } as const;
    assert.deepEqual(decode(encode({ ...records, records: [...records.records] } as never), Kind.Members), { kind: Kind.Members, records: [{ ...records.records[0], tokens: [5n, 6n] }] });
  });

  it('moves - a malformed range request or member record is refused with the reason', () => {
    const bad: [object, Kind, RegExp][] = [
      [{ v: 2, kind: Kind.RangeRequest, from: 'n4', fromHash: '02', toHash: 'ff', bytesMax: 1 }, Kind.RangeRequest, /fromHash is not 16 hex digits/],
      [{ v: 2, kind: Kind.RangeRequest, from: 'n4', fromHash: 'ffffffffffffffff', toHash: '0000000000000000', bytesMax: 1 }, Kind.RangeRequest, /fromHash is above toHash/],
      [{ v: 2, kind: Kind.Members, records: [{ id: 'n1', incarnation: 'i', virtualNodes: 1, heartbeat: 1, state: 'gone', stateVersion: 1, synced: '' }] }, Kind.Members, /state gone is not one of/],
      [{ v: 2, kind: Kind.Members, records: [{ id: 'n1', incarnation: 'i', virtualNodes: 1, heartbeat: 1, state: 'up', stateVersion: 1, synced: 'xyz' }] }, Kind.Members, /synced is not a ring fingerprint/],
    ];
    for (const [msg, kind, why] of bad) {
      assert.throws(() => decode(rawEncode(msg), kind), (err: unknown) => err instanceof ProtocolError && why.test(err.message));
    }
  });
});

/** CBOR of an arbitrary object, as a forger would send it. */
function rawEncode(msg: object): Uint8Array {
  return raw.encode(msg);
}
