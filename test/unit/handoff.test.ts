/**
 * Ownership handoff: how much a join moves (core/moves.ts pendingOwners),
 * transfers in reports and /metrics, the configured rate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newTransfer, sameRing, TransferKind } from '../../src/core/handoff.js';
import { pendingOwners } from '../../src/core/moves.js';
import { buildRing, type RingMember } from '../../src/core/ring.js';
import { allocateTokens, initialTokens, replicatedOwnership } from '../../src/core/tokens.js';
import { loadConfig } from '../../src/config/load.js';
import { Metrics } from '../../src/node/api/metrics.js';
import { parseRingReport, transferReport } from '../../src/protocol/placement_report.js';

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
  it('handoff - with allocated tokens a join moves about the joiner\'s share (at most 1.1x the ideal N/(n+1)), all of it to the joiner', () => {
    const n = 3;
    const samples = 20_000;
    const step = (1n << 64n) / BigInt(samples);
    let worst = 0;
    for (const count of [3, 4, 5, 8, 12, 16]) {
      const { before, after, joiner } = joinRings(count, 10, n);
      let moved = 0;
      for (let i = 0; i < samples; i++) {
        const gained = pendingOwners(before, after, BigInt(i) * step + step / 2n, n);
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
    for (let i = 0n; i < 1000n; i++) assert.deepEqual(pendingOwners(before, before, i * 18_446_744_073_709_551n, 3), []);
  });

  it('handoff - the rate is configured by handoff.bytesPerSecond (default 50 MiB/s), flag and env', () => {
    assert.equal(loadConfig({ flags: {}, env: {} }).handoff.bytesPerSecond, 50 * 1024 * 1024);
    assert.equal(loadConfig({ flags: { 'handoff-bytes-per-second': '10MiB' }, env: {} }).handoff.bytesPerSecond, 10 * 1024 * 1024);
    assert.equal(loadConfig({ flags: {}, env: { GODDB_HANDOFF_BYTES_PER_SECOND: '2000' } }).handoff.bytesPerSecond, 2000);
    assert.throws(() => loadConfig({ flags: { 'handoff-bytes-per-second': '0' }, env: {} }));
  });

  it('handoff - /metrics shows keys and bytes pulled and deleted, the pulls under way, members by state and liveness, and settled', async () => {
    const zero = () => 0;
    const metrics = new Metrics('n1', {
      inflight: zero, membersUp: zero, readRepairs: zero, staleRetries: zero, staleRefusals: zero, skewRefusals: zero,
      malformedReplicaRequests: zero, unconfirmedMembers: zero, hlc: zero,
      handoffKeysSent: () => 7, handoffBytesSent: () => 700, handoffActive: () => 2,
      keys: async () => 0, ringMembers: zero, ringOwnedRatio: zero,
      memberStates: () => [{ state: 'up', status: 'up' }, { state: 'up', status: 'up' }, { state: 'joining', status: 'up' }, { state: 'removing', status: 'down' }],
      settled: () => false,
      keysDeleted: () => 5,
    });
    const text = await metrics.registry.metrics();
    for (const line of [
      'goddb_handoff_keys_sent_total{node_id="n1"} 7',
      'goddb_handoff_bytes_sent_total{node_id="n1"} 700',
      'goddb_handoff_active{node_id="n1"} 2',
      'goddb_handoff_keys_deleted_total{node_id="n1"} 5',
      'goddb_ring_settled{node_id="n1"} 0',
      'goddb_members{state="up",liveness="up",node_id="n1"} 2',
      'goddb_members{state="joining",liveness="up",node_id="n1"} 1',
      'goddb_members{state="removing",liveness="down",node_id="n1"} 1',
    ]) {
      assert.ok(text.includes(line), line);
    }
  });

  it('handoff - the ring report carries transfers under way; malformed ones from another node are dropped', () => {
    const t = transferReport({ ...newTransfer(TransferKind.Ownership, 'n1', 'n4', 10), keysSent: 3, bytesSent: 300 });
    const raw = JSON.parse(JSON.stringify({ replication: 3, settled: false, members: [], transfers: [t, { ...t, keysSent: -1 }, { kind: 'ownership' }] }));
    assert.deepEqual(parseRingReport(raw)?.transfers, [{ kind: 'ownership', source: 'n1', target: 'n4', state: 'running', keysSent: 3, bytesSent: 300, keysTotal: null, bytesTotal: null, startedMs: 10 }]);
    assert.equal(parseRingReport({ replication: 3, settled: true, members: [] })?.transfers, undefined, 'an earlier version reports none');
  });
});
