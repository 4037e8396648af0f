import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { visibleValue } from '../../src/core/version.js';
import { ClientOp } from '../../src/protocol/subjects.js';
import { parseRingReport } from '../../src/protocol/placement_report.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
const victim = 'n5';

async function stored(c: SimCluster, id: string, key: string): Promise<string | undefined> {
  const v = visibleValue(await c.node(id).node.replica.get(key), 0);
  return v ? Buffer.from(v.value).toString('utf8') : undefined;
}

/** Keys whose preference list (as n1 sees it) holds the victim. */
function keysOwnedBy(c: SimCluster, owner: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const key = `h.${i}`;
    if (c.node('n1').node.coordinator.placementOf(key).replicas.some((r) => r.node === owner)) out.push(key);
  }
  return out;
}

/** Hints every running node keeps for `owner`, by holder. */
function hintsFor(c: SimCluster, owner: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of c.nodes.values()) {
    if (!n.up) continue;
    const held = n.node.hints.pending().get(owner) ?? 0;
    if (held > 0) out.set(n.id, held);
  }
  return out;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

describe('sloppy quorum and hinted handoff (simulated)', () => {
  it('hints - an owner down: writes succeed with hints on the fallback, which survive its restart and reach the owner once it is back', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const keys = keysOwnedBy(c, victim, 20);
    await c.crash(victim);
    await c.clock.advance(5_000);
    for (const id of ids.filter((i) => i !== victim)) assert.equal(c.node(id).node.membership.isUp(victim), false, `${id} sees ${victim} down`);
    for (const [i, key] of keys.entries()) {
      const put = await c.request(ClientOp.Put, key, `v${i}`, { 'KV-W': '2' });
      assert.equal(put.code, 200, put.message);
    }
    await c.clock.advance(100);
    const held = hintsFor(c, victim);
    assert.equal(sum(held), keys.length, 'one hint per key, on its fallback');
    for (const key of keys) {
      const fallback = c.node('n1').node.coordinator.placementOf(key).fallbacks.find((f) => f.standsInFor === victim);
      assert.ok(fallback, `${key} has a fallback for ${victim}`);
      assert.equal(await stored(c, fallback.node, key), undefined, 'a hint is not the fallback\'s own copy');
    }
    // goddb status: the ring report of a holder lists its hints per owner, and parses back.
    const [holder, count] = [...held].sort((a, b) => b[1] - a[1])[0]!;
    const report = parseRingReport(JSON.parse(JSON.stringify(c.node(holder).node.coordinator.ringReport())));
    assert.deepEqual(report?.hints, { [victim]: count });

    // The holder restarts: its hints are still there, and replay resumes.
    await c.clock.run(c.restart(holder, { wipe: false }));
    assert.equal(c.node(holder).node.hints.pending().get(victim), count, 'hints survive a restart of their holder');
    assert.equal(sum(hintsFor(c, victim)), keys.length);

    await c.revive(victim);
    await c.clock.advance(10_000);
    assert.equal(sum(hintsFor(c, victim)), 0, 'every hint was delivered and deleted');
    const delivered = [...c.nodes.values()].reduce((s, n) => s + n.node.hints.deliveredTotal, 0);
    assert.equal(delivered, keys.length, 'each hint delivered once');
    for (const [i, key] of keys.entries()) assert.equal(await stored(c, victim, key), `v${i}`, `${victim} alone holds the latest ${key}`);
    await c.stop();
  });

  it('hints - W=3 with one owner down succeeds with sloppy quorum (KV-Sloppy: 1) and is refused (503) without it, the default', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const [key] = keysOwnedBy(c, victim, 1);
    await c.crash(victim);
    await c.clock.advance(5_000);
    const sloppy = await c.request(ClientOp.Put, key!, 'a', { 'KV-W': '3', 'KV-Sloppy': '1' });
    assert.equal(sloppy.code, 200, sloppy.message);
    assert.equal(sloppy.header('KV-Acks'), '3/3', 'two replicas and a hint');
    for (const headers of [{ 'KV-W': '3' }, { 'KV-W': '3', 'KV-Sloppy': '0' }] as Record<string, string>[]) {
      const strict = await c.request(ClientOp.Put, key!, 'b', headers);
      assert.equal(strict.code, 503, JSON.stringify(headers));
      assert.match(strict.message, /2 of 3 replicas up, W=3 needed/);
    }
    const bad = await c.request(ClientOp.Put, key!, 'c', { 'KV-Sloppy': 'maybe' });
    assert.equal(bad.code, 400);
    assert.equal((await c.request(ClientOp.Get, key!)).value, 'a');
    await c.stop();
  });

  it('hints - under strict quorum (the default) the hints are still written, but count toward no quorum', async () => {
    const c = new SimCluster(simSeed(), ids, { hints: { sloppyQuorum: false, windowMs: 3 * 3600 * 1000, bytesMax: 1 << 20 } });
    await c.start();
    const keys = keysOwnedBy(c, victim, 5);
    await c.crash(victim);
    await c.clock.advance(5_000);
    for (const key of keys) {
      const put = await c.request(ClientOp.Put, key, 'x');
      assert.equal(put.code, 200);
      assert.equal(put.header('KV-Acks'), '2/2', 'the two live replicas; the hint is not counted');
    }
    assert.equal((await c.request(ClientOp.Put, keys[0]!, 'y', { 'KV-W': '3' })).code, 503);
    assert.equal((await c.request(ClientOp.Put, keys[0]!, 'z', { 'KV-W': '3', 'KV-Sloppy': 'true' })).code, 200, 'a request may ask for sloppy quorum');
    await c.clock.advance(100);
    // One hint per key; the refused W=3 write's hint merged with the key's (its outcome is open anyway).
    assert.equal(sum(hintsFor(c, victim)), keys.length, 'every write left a hint for the down owner');
    await c.stop();
  });

  it('hints - the hints of an owner that was removed are dropped (its ranges moved to others)', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const keys = keysOwnedBy(c, victim, 10);
    await c.crash(victim);
    await c.clock.advance(5_000);
    for (const key of keys) assert.equal((await c.request(ClientOp.Put, key, 'v')).code, 200);
    await c.clock.advance(100);
    assert.equal(sum(hintsFor(c, victim)), keys.length);
    const removed = await c.requestVia('n1', ClientOp.Remove, victim);
    assert.equal(removed.code, 200, removed.message);
    const live = ids.filter((id) => id !== victim);
    for (let waited = 0; !live.every((id) => c.node(id).node.membership.stateOf(victim) === 'removed'); waited += 1_000) {
      assert.ok(waited < 60_000, `${victim} removed within a minute`);
      await c.clock.advance(1_000);
    }
    await c.clock.advance(3_000);
    assert.equal(sum(hintsFor(c, victim)), 0, 'hints for a removed member are dropped');
    assert.equal(live.reduce((s, id) => s + c.node(id).node.hints.dropped.owner_gone, 0), keys.length);
    for (const key of keys) assert.equal((await c.request(ClientOp.Get, key, '', { 'KV-R': '3' })).value, 'v', `${key} lives on its new owners`);
    await c.stop();
  });

  it('hints - hints older than the window are dropped, and an owner down longer gets none', async () => {
    const windowMs = 60_000;
    const c = new SimCluster(simSeed(), ids, { hints: { sloppyQuorum: true, windowMs, bytesMax: 256 * 1024 * 1024 } });
    await c.start();
    const keys = keysOwnedBy(c, victim, 10);
    await c.crash(victim);
    await c.clock.advance(5_000);
    for (const key of keys) assert.equal((await c.request(ClientOp.Put, key, 'old')).code, 200);
    await c.clock.advance(100);
    assert.equal(sum(hintsFor(c, victim)), keys.length);
    await c.clock.advance(2 * windowMs);
    assert.equal(sum(hintsFor(c, victim)), 0, 'expired hints are dropped');
    const dropped = [...c.nodes.values()].reduce((s, n) => s + n.node.hints.dropped.window, 0);
    assert.equal(dropped, keys.length);
    const late = await c.request(ClientOp.Put, keys[0]!, 'late');
    assert.equal(late.code, 200, late.message);
    assert.equal(late.header('KV-Acks'), '2/2', 'no hint for an owner down longer than the window');
    await c.clock.advance(100);
    assert.equal(sum(hintsFor(c, victim)), 0);
    await c.revive(victim);
    await c.clock.advance(5_000);
    assert.equal(await stored(c, victim, keys[1]!), undefined, 'nothing was delivered');
    await c.stop();
  });
});
