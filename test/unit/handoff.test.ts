/**
 * Ownership handoff, the pure part (src/core/handoff.ts): which members gain
 * a key when the ring changes, and which one member sends it to them.
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>); a
 * failing property prints its seed and path, and the same seed replays it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { finishTransfer, handoffTargets, keyHandoff, newTransfer, ringHas, sameRing, TransferKind, TransferState } from '../../src/core/handoff.js';
import { buildRing, preferenceList, type RingMember } from '../../src/core/ring.js';
import { allocateTokens, initialTokens, replicatedOwnership } from '../../src/core/tokens.js';
import { loadConfig } from '../../src/config/load.js';
import { Metrics } from '../../src/node/api/metrics.js';
import { parseRingReport, transferReport } from '../../src/protocol/placement_report.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_130);
const runs = (numRuns: number) => ({ seed, numRuns });

const idArb = fc.stringMatching(/^[a-z][a-z0-9]{0,4}$/);
const hashArb = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

/** Two rings over overlapping member sets (joins, leaves or both at once), a key hash and N. */
const changeArb = fc
  .record({
    ids: fc.uniqueArray(idArb, { minLength: 2, maxLength: 10 }),
    keepMask: fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }),
    addMask: fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }),
    vnodes: fc.integer({ min: 1, max: 8 }),
    hash: hashArb,
    n: fc.integer({ min: 1, max: 4 }),
  })
  .map(({ ids, keepMask, addMask, vnodes, hash, n }) => {
    const [first, ...rest] = ids;
    // The first member is in both rings, so the new ring is never empty.
    const before = [first!, ...rest.filter((_, i) => keepMask[i] || !addMask[i])];
    const after = [first!, ...rest.filter((_, i) => keepMask[i] || addMask[i])];
    const ring = (members: string[]) => buildRing(members.map((id): RingMember => ({ id, virtualNodes: vnodes })));
    return { before: ring(before), after: ring(after), members: [...new Set([...before, ...after])], hash, n };
  });

/** A ring of `ids` joined by `joiner` (all with `vnodes`), with tokens from core/tokens.ts. */
function joinRings(count: number, vnodes: number, n: number) {
  const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const caps = new Map(ids.map((id) => [id, vnodes]));
  const layout = initialTokens(caps, n);
  const placed = [...layout].flatMap(([nodeId, ts]) => ts.map((position) => ({ position, nodeId })));
  const joiner = `n${count + 1}`;
  const mine = allocateTokens(placed, joiner, vnodes, new Map([...caps, [joiner, vnodes]]), n);
  const members = [...layout].map(([id, tokens]): RingMember => ({ id, virtualNodes: vnodes, tokens }));
  const before = buildRing(members);
  const after = buildRing([...members, { id: joiner, virtualNodes: vnodes, tokens: mine }]);
  return { before, after, joiner, ids };
}

describe('handoff', () => {
  it(`handoff - only a key whose replicas changed moves, and only to members new to its preference list (seed ${seed})`, () => {
    fc.assert(
      fc.property(changeArb, ({ before, after, hash, n }) => {
        const old = preferenceList(before, hash, n);
        const next = preferenceList(after, hash, n);
        const { gained, sender } = keyHandoff(before, after, hash, n);
        assert.deepEqual(gained, next.filter((id) => !old.includes(id)));
        if (new Set(old).size === new Set([...old, ...next]).size && old.length === next.length) assert.deepEqual(gained, []);
        if (gained.length === 0) assert.equal(sender, undefined);
      }),
      runs(500),
    );
  });

  it(`handoff - one member sends each gained key, once per gained replica: an old replica still in the ring (seed ${seed})`, () => {
    fc.assert(
      fc.property(changeArb, ({ before, after, members, hash, n }) => {
        const { gained, sender } = keyHandoff(before, after, hash, n);
        const sent = members.flatMap((self) => handoffTargets(before, after, hash, n, self).map((to) => `${self}>${to}`));
        if (sender === undefined) {
          assert.deepEqual(sent, []);
          return;
        }
        assert.ok(preferenceList(before, hash, n).includes(sender), 'the sender held the key as a replica');
        assert.ok(ringHas(after, sender), 'the sender is still a member');
        assert.deepEqual(sent, gained.map((to) => `${sender}>${to}`));
      }),
      runs(500),
    );
  });

  it(`handoff - a join moves keys only to the joiner, sent by the first old replica (seed ${seed})`, () => {
    fc.assert(
      fc.property(fc.uniqueArray(idArb, { minLength: 2, maxLength: 10 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4 }), hashArb, (ids, vnodes, n, hash) => {
        const [joiner, ...rest] = ids;
        const ring = (members: string[]) => buildRing(members.map((id) => ({ id, virtualNodes: vnodes })));
        const before = ring(rest);
        const after = ring(ids);
        const { gained, sender } = keyHandoff(before, after, hash, n);
        assert.ok(gained.every((id) => id === joiner), `gained ${gained.join(',')}`);
        if (gained.length > 0) assert.equal(sender, preferenceList(before, hash, n)[0]);
      }),
      runs(500),
    );
  });

  it('handoff - with allocated tokens a join moves about the joiner\'s share (at most 1.1x the ideal N/(n+1)), all of it to the joiner', () => {
    const n = 3;
    const samples = 20_000;
    const step = (1n << 64n) / BigInt(samples);
    let worst = 0;
    for (const count of [3, 4, 5, 8, 12, 16]) {
      const { before, after, joiner } = joinRings(count, 10, n);
      let moved = 0;
      for (let i = 0; i < samples; i++) {
        const { gained } = keyHandoff(before, after, BigInt(i) * step + step / 2n, n);
        assert.ok(gained.every((id) => id === joiner));
        moved += gained.length;
      }
      const fraction = moved / samples;
      const ideal = Math.min(n, count + 1) / (count + 1);
      const owned = replicatedOwnership(after.tokens, n).get(joiner)!;
      assert.ok(Math.abs(fraction - owned) < 0.01, `${count} -> ${count + 1}: moved ${fraction.toFixed(4)} of the keys, the joiner owns ${owned.toFixed(4)}`);
      assert.ok(fraction <= 1.1 * ideal, `${count} -> ${count + 1}: moved ${fraction.toFixed(4)}, ideal ${ideal.toFixed(4)}`);
      worst = Math.max(worst, fraction / ideal);
    }
    console.log(`# a join moved at most ${worst.toFixed(3)}x the ideal share (key copies per key, N=3, 10 vnodes, 3 to 16 nodes)`);
  });

  it('handoff - the same ring moves nothing; sameRing compares tokens', () => {
    const { before, after } = joinRings(4, 10, 3);
    assert.ok(sameRing(before, buildRing([...before.tokens.reduce((m, t) => m.set(t.nodeId, [...(m.get(t.nodeId) ?? []), t.position]), new Map<string, bigint[]>())].map(([id, tokens]) => ({ id, virtualNodes: tokens.length, tokens })))));
    assert.ok(!sameRing(before, after));
    for (let i = 0n; i < 1000n; i++) assert.deepEqual(keyHandoff(before, before, i * 18_446_744_073_709_551n, 3), { gained: [], sender: undefined });
  });

  it('handoff - the rate is configured by handoff.bytesPerSecond (default 50 MiB/s), flag and env', () => {
    assert.equal(loadConfig({ flags: {}, env: {} }).handoff.bytesPerSecond, 50 * 1024 * 1024);
    assert.equal(loadConfig({ flags: { 'handoff-bytes-per-second': '10MiB' }, env: {} }).handoff.bytesPerSecond, 10 * 1024 * 1024);
    assert.equal(loadConfig({ flags: {}, env: { GODDB_HANDOFF_BYTES_PER_SECOND: '2000' } }).handoff.bytesPerSecond, 2000);
    assert.throws(() => loadConfig({ flags: { 'handoff-bytes-per-second': '0' }, env: {} }));
  });

  it('handoff - /metrics shows keys and bytes sent and the transfers under way', async () => {
    const zero = () => 0;
    const metrics = new Metrics('n1', {
      inflight: zero, membersUp: zero, readRepairs: zero, staleRetries: zero, staleRefusals: zero, skewRefusals: zero,
      malformedReplicaRequests: zero, unconfirmedMembers: zero, hlc: zero,
      handoffKeysSent: () => 7, handoffBytesSent: () => 700, handoffActive: () => 2,
      keys: async () => 0, ringMembers: zero, ringOwnedRatio: zero,
    });
    const text = await metrics.registry.metrics();
    for (const line of ['goddb_handoff_keys_sent_total{node_id="n1"} 7', 'goddb_handoff_bytes_sent_total{node_id="n1"} 700', 'goddb_handoff_active{node_id="n1"} 2']) {
      assert.ok(text.includes(line), line);
    }
  });

  it('handoff - the ring report carries transfers under way; malformed ones from another node are dropped', () => {
    const t = transferReport({ ...newTransfer(TransferKind.Ownership, 'n1', 'n4', 10), keysSent: 3, bytesSent: 300 });
    const raw = JSON.parse(JSON.stringify({ replication: 3, settled: false, members: [], transfers: [t, { ...t, keysSent: -1 }, { kind: 'ownership' }] }));
    assert.deepEqual(parseRingReport(raw)?.transfers, [{ kind: 'ownership', source: 'n1', target: 'n4', state: 'running', keysSent: 3, bytesSent: 300, keysTotal: null, bytesTotal: null, startedMs: 10 }]);
    assert.equal(parseRingReport({ replication: 3, settled: true, members: [] })?.transfers, undefined, 'an earlier version reports none');
  });

  it('handoff - a transfer is done when every key arrived, failed otherwise, with its totals', () => {
    const t = newTransfer(TransferKind.Ownership, 'n1', 'n4', 10);
    assert.equal(t.state, TransferState.Running);
    const done = finishTransfer({ ...t, keysSent: 5, bytesSent: 500 }, 20);
    assert.deepEqual([done.state, done.keysTotal, done.bytesTotal, done.finishedMs], [TransferState.Done, 5, 500, 20]);
    const failed = finishTransfer({ ...t, keysSent: 5, bytesSent: 500, keysFailed: 2 }, 20);
    assert.deepEqual([failed.state, failed.keysTotal, failed.bytesTotal], [TransferState.Failed, 7, undefined]);
  });
});
