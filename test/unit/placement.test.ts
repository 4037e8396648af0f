/**
 * Placement is one pure function (src/core/placement.ts): replicas,
 * fallbacks annotated with the down replica each stands in for, pending
 * owners; and the JSON that `goddb owners` and `goddb status` read.
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>); a
 * failing property prints its seed and path, and the same seed replays it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { noPending, ownershipPercent, pendingFromRanges, placement } from '../../src/core/placement.js';
import { buildRing, keyHash, preferenceList, type Ring } from '../../src/core/ring.js';
import { clusterStatus } from '../../src/client/ring_status.js';
import type { NodeInfo } from '../../src/client/nodes.js';
import { ownersTable, statusColumns, statusTable } from '../../src/cli/one_shot.js';
import { hashHex, ownersReport, parseOwnersReport, parseRingReport } from '../../src/protocol/placement_report.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_209);
const runs = (numRuns: number) => ({ seed, numRuns });

/** A ring of 1 to 12 members (1 to 12 virtual nodes each), some of them down, a key hash and N. */
const caseArb = fc
  .record({
    members: fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: 1, maxLength: 12 }),
    vnodes: fc.integer({ min: 1, max: 12 }),
    downMask: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    hash: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    n: fc.integer({ min: 1, max: 5 }),
  })
  .map(({ members, vnodes, downMask, hash, n }) => {
    const ring = buildRing(members.map((id) => ({ id, virtualNodes: vnodes })));
    const down = new Set(members.filter((_, i) => downMask[i]));
    return { ring, members, down, isUp: (id: string) => members.includes(id) && !down.has(id), hash, n };
  });

describe('placement', () => {
  it(`placement - replicas are the preference list: N distinct members (all of them when fewer), liveness as given (seed ${seed})`, () => {
    fc.assert(
      fc.property(caseArb, ({ ring, members, isUp, hash, n }) => {
        const p = placement(ring, hash, n, isUp);
        const nodes = p.replicas.map((r) => r.node);
        assert.deepEqual(nodes, preferenceList(ring, hash, n));
        assert.equal(new Set(nodes).size, nodes.length);
        assert.equal(nodes.length, Math.min(n, members.length));
        for (const r of p.replicas) assert.equal(r.up, isUp(r.node));
        assert.equal(p.keyHash, hash);
      }),
      runs(300),
    );
  });

  it(`placement - fallbacks are up, disjoint from the replicas, one per down replica while healthy members remain, in ring order (seed ${seed})`, () => {
    fc.assert(
      fc.property(caseArb, ({ ring, members, isUp, hash, n }) => {
        const p = placement(ring, hash, n, isUp);
        const replicas = new Set(p.replicas.map((r) => r.node));
        const down = p.replicas.filter((r) => !r.up).map((r) => r.node);
        const walk = preferenceList(ring, hash, members.length);
        const healthyBeyond = walk.slice(p.replicas.length).filter(isUp);
        assert.equal(p.fallbacks.length, Math.min(down.length, healthyBeyond.length));
        assert.deepEqual(p.fallbacks.map((f) => f.node), healthyBeyond.slice(0, p.fallbacks.length), 'the next healthy members clockwise');
        assert.deepEqual(p.fallbacks.map((f) => f.standsInFor), down.slice(0, p.fallbacks.length), 'each stands in for a down replica, in order');
        for (const f of p.fallbacks) {
          assert.ok(isUp(f.node));
          assert.ok(!replicas.has(f.node));
        }
        assert.deepEqual(p.pending, []);
      }),
      runs(300),
    );
  });

  it(`placement - asked again and again on one ring (the walks it remembers per token), with liveness changing, it answers as the preference list does (seed ${seed})`, () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.array(fc.record({ hash: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), downMask: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }) }), { minLength: 1, maxLength: 40 }),
        ({ ring, members, n }, asks) => {
          for (const { hash, downMask } of [...asks, ...asks]) {
            const isUp = (id: string) => !downMask[members.indexOf(id)];
            const p = placement(ring, hash, n, isUp);
            const walk = preferenceList(ring, hash, members.length);
            assert.deepEqual(p.replicas, walk.slice(0, Math.min(n, members.length)).map((node) => ({ node, up: isUp(node) })));
            const down = p.replicas.filter((r) => !r.up).map((r) => r.node);
            const healthyBeyond = walk.slice(p.replicas.length).filter(isUp);
            assert.deepEqual(p.fallbacks, healthyBeyond.slice(0, down.length).map((node, i) => ({ node, standsInFor: down[i]! })));
          }
        },
      ),
      runs(200),
    );
  });

  it(`placement - the same ring, liveness and key give the same placement (seed ${seed})`, () => {
    fc.assert(
      fc.property(caseArb, ({ ring, members, isUp, hash, n }) => {
        // A ring built again from the members in another order is the same ring.
        const again = buildRing([...members].reverse().map((id) => ({ id, virtualNodes: ring.tokens.length / members.length })));
        assert.deepEqual(placement(again, hash, n, isUp), placement(ring, hash, n, isUp));
      }),
      runs(200),
    );
  });

  it('placement - three members and N=3, one down: it is listed down and there is no fallback; with four, the fourth stands in', () => {
    const three = buildRing(['a', 'b', 'c'].map((id) => ({ id, virtualNodes: 10 })));
    const hash = keyHash('k');
    const p3 = placement(three, hash, 3, (id) => id !== 'b');
    assert.deepEqual(p3.replicas.find((r) => r.node === 'b'), { node: 'b', up: false });
    assert.deepEqual(p3.fallbacks, []);
    const four = buildRing(['a', 'b', 'c', 'd'].map((id) => ({ id, virtualNodes: 10 })));
    const list = preferenceList(four, hash, 3);
    const other = ['a', 'b', 'c', 'd'].find((id) => !list.includes(id))!;
    const p4 = placement(four, hash, 3, (id) => id !== list[1]);
    assert.deepEqual(p4.fallbacks, [{ node: other, standsInFor: list[1] }]);
  });

  it('placement - an empty ring places nowhere', () => {
    const empty: Ring = { tokens: [], nodeCount: 0 };
    assert.deepEqual(placement(empty, 5n, 3, () => true), { keyHash: 5n, replicas: [], fallbacks: [], pending: [] });
  });

  it('placement - pending owners come from the moving ranges that hold the key (wrapping past zero), never a replica twice', () => {
    const ring = buildRing(['a', 'b', 'c', 'd'].map((id) => ({ id, virtualNodes: 4 })));
    const pending = pendingFromRanges([
      { start: 100n, end: 200n, to: ['d', 'e'] },
      { start: (1n << 64n) - 10n, end: 5n, to: ['f'] },
    ]);
    const list = preferenceList(ring, 150n, 3);
    assert.deepEqual(placement(ring, 150n, 3, () => true, pending).pending, ['d', 'e'].filter((id) => !list.includes(id)));
    assert.deepEqual(placement(ring, 3n, 3, () => true, pending).pending, ['f']);
    assert.deepEqual(placement(ring, 100n, 3, () => true, pending).pending, [], 'the start of a range is not in it');
    assert.deepEqual(placement(ring, 150n, 3, () => true, noPending).pending, []);
  });

  it(`placement - shares of the ring counting replicas sum to min(N, members) x 100% (seed ${seed})`, () => {
    fc.assert(
      fc.property(caseArb, ({ ring, members, n }) => {
        const owns = ownershipPercent(ring, n);
        assert.deepEqual([...owns.keys()].sort(), [...members].sort());
        const total = [...owns.values()].reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(total - Math.min(n, members.length) * 100) < 1e-6, `${total}`);
      }),
      runs(100),
    );
  });
});

describe('placement reports', () => {
  const ring = buildRing(['s1', 's2', 's3', 's4'].map((id) => ({ id, virtualNodes: 10 })));

  it('owners - the JSON names the key, its hash in 16 hex digits, the answering node, replicas, fallbacks and pending owners, and parses back', () => {
    const hash = keyHash('user.42');
    const list = preferenceList(ring, hash, 3);
    const report = ownersReport('user.42', 's1', 3, placement(ring, hash, 3, (id) => id !== list[0]));
    const json = JSON.parse(JSON.stringify(report)) as unknown;
    assert.deepEqual(Object.keys(json as object), ['key', 'hash', 'node', 'replication', 'replicas', 'fallbacks', 'pending']);
    assert.match(report.hash, /^[0-9a-f]{16}$/);
    assert.equal(BigInt(`0x${report.hash}`), hash);
    assert.deepEqual(report.replicas, list.map((node, i) => ({ node, up: i !== 0 })));
    assert.equal(report.fallbacks.length, 1);
    assert.equal(report.fallbacks[0]!.standsInFor, list[0]);
    assert.deepEqual(parseOwnersReport(json), report);
    assert.equal(hashHex(1n), '0000000000000001');
    const text = ownersTable(report);
    assert.match(text, /^key {3}user\.42\nhash {2}[0-9a-f]{16}\nseen {2}by s1 \(N=3\)\n\n#/);
    assert.match(text, new RegExp(`\\n-\\s+${report.fallbacks[0]!.node}\\s+fallback\\s+up\\s+${list[0]}\\n`));
  });

  it('owners - an answer that is not an owners report does not parse', () => {
    assert.equal(parseOwnersReport(null), undefined);
    assert.equal(parseOwnersReport({ key: 'k', hash: '00', node: 'n', replication: 3, replicas: [{ node: 'a' }], fallbacks: [], pending: [] }), undefined);
    assert.equal(parseOwnersReport({ key: 'k', hash: '00', node: 'n', replication: 3, replicas: [], fallbacks: [], pending: [1] }), undefined);
  });

  it('status - members merge the answering nodes\' views; a node of an earlier version (no ring, no keys) and a silent member show "-"', () => {
    const report = (status: Record<string, string>, keys?: number) => ({
      replication: 3,
      settled: true,
      members: ['s1', 's2', 's3'].map((id) => ({ id, status: status[id] ?? 'up', virtualNodes: 10, owns: 100 })),
      ...(keys === undefined ? {} : { keys }),
    });
    const node = (nodeId: string, ring?: ReturnType<typeof report>): NodeInfo => ({ nodeId, cluster: 'c', version: '0.1.0', started: 't', requests: { get: { '200': 2 } }, ...(ring ? { ring } : {}) });
    const nodes = [node('s1', report({ s3: 'down' }, 7)), node('s2', report({})), node('old')];
    const status = clusterStatus(nodes);
    assert.equal(status.settled, true);
    assert.equal(status.replication, 3);
    assert.deepEqual(status.members.map((m) => [m.id, m.status, m.virtualNodes, m.owns, m.keys, m.answered]), [
      ['old', null, null, null, null, true],
      ['s1', 'up', 10, 100, 7, true],
      ['s2', 'up', 10, 100, null, true],
      ['s3', 'disputed', 10, 100, null, false],
    ]);
    assert.deepEqual(status.members[3]!.seenBy, { s1: 'down', s2: 'up' });
    const [header, ...rows] = statusTable(nodes).trim().split('\n').map((l) => l.split(/\s+/));
    assert.deepEqual(header, [...statusColumns]);
    assert.deepEqual(rows, [
      ['old', 'c', '0.1.0', 't', '2', '0', '0', '0', '0', '0', '-', '-', '-', '-', '-', '-', '-', '-'],
      ['s1', 'c', '0.1.0', 't', '2', '0', '0', '0', '0', '0', '-', 'up', '10', '100.0%', '7', '-', '-', '-'],
      ['s2', 'c', '0.1.0', 't', '2', '0', '0', '0', '0', '0', '-', 'up', '10', '100.0%', '-', '-', '-', '-'],
      ['s3', 'c', '-', '-', '-', '-', '-', '-', '-', '-', '-', 'down:s1;up:s2', '10', '100.0%', '-', '-', '-', '-'],
    ]);
    assert.equal(clusterStatus([node('old')]).settled, null, 'nobody reports a ring: unknown');
    assert.equal(clusterStatus([node('s1', { ...report({}), settled: false })]).settled, false);
  });

  it('status - a ring report with a malformed member keeps the others; one without members is none', () => {
    assert.deepEqual(parseRingReport({ replication: 3, settled: true, members: [{ id: 'a', status: 'up', virtualNodes: 10, owns: 50 }, { id: 'b' }] }), {
      replication: 3,
      settled: true,
      members: [{ id: 'a', status: 'up', virtualNodes: 10, owns: 50 }],
    });
    assert.equal(parseRingReport({ replication: 3, settled: true }), undefined);
    assert.equal(parseRingReport(undefined), undefined);
    assert.equal(parseRingReport({ replication: 3, settled: true, members: [], keys: 12 })?.keys, 12);
    assert.equal(parseRingReport({ replication: 3, settled: true, members: [], keys: -1 })?.keys, undefined, 'a negative count is dropped');
    assert.equal(parseRingReport({ replication: 3, settled: true, members: [], keys: '12' })?.keys, undefined, 'a string is dropped');
  });
});
