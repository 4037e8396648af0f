/**
 * Issue 9: range moves survive restarts. A joining node killed in the middle
 * of its pulls comes back joining, resumes each arc from the cursor it kept
 * (it does not pull again what it already had), and ends up with every key
 * it replicates; a node that has left refuses to start again on its data.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyHash, preferenceList } from '../../src/core/ring.js';
import { visibleValue } from '../../src/core/version.js';
import { ClientOp } from '../../src/protocol/subjects.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];

async function settle(c: SimCluster, members: string[], maxMs = 60_000): Promise<void> {
  const start = c.clock.monotonicMs();
  while (!members.every((id) => c.node(id).node.coordinator.ringReport().settled)) {
    assert.ok(c.clock.monotonicMs() - start < maxMs, `not settled within ${maxMs} ms`);
    await c.clock.advance(50);
  }
}

describe('range moves across restarts', () => {
  it('sim moves - a joiner killed mid-pull resumes from its kept cursors and ends with every key it replicates', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids, { quorum: { replication: 3, readQuorum: 2, writeQuorum: 3 }, handoff: { bytesPerSecond: 4_000, ringDelayMs: 500 } });
    await c.start();
    const client = c.connectClient('writer');
    const keys = Array.from({ length: 400 }, (_, i) => `k.${i}`);
    const replies = await c.clock.run(Promise.all(keys.map((k) => client.request(ClientOp.Put, k, `v.${k}`, { 'KV-W': '3' }))));
    assert.ok(replies.every((r) => r.code === 200));
    await settle(c, ids);
    await c.clock.run(c.startOne('n4'));
    // Pull part of the keys, then kill the joiner.
    for (let i = 0; i < 400 && c.node('n4').node.moves.keysPulled < 60; i++) await c.clock.advance(50);
    const before = c.node('n4').node.moves.keysPulled;
    assert.ok(before > 0, `seed ${seed}: some keys arrived before the crash`);
    await c.crash('n4');
    await c.clock.advance(2_000);
    const revived = await c.revive('n4');
    assert.equal(revived.node.membership.ownState().state, 'joining', 'it comes back joining');
    await settle(c, [...ids, 'n4']);
    const ring = c.node('n1').node.membership.ring();
    const gained = keys.filter((k) => preferenceList(ring, keyHash(k), 3).includes('n4'));
    for (const k of gained) {
      const v = visibleValue(await c.node('n4').node.replica.get(k), 0);
      assert.equal(v && Buffer.from(v.value).toString(), `v.${k}`, `seed ${seed}: n4 holds ${k}`);
    }
    const after = revived.node.moves.keysPulled;
    // Resumed, not restarted: the second process pulled what was left (and at most the page in flight again).
    assert.ok(after <= gained.length - before + 64, `seed ${seed}: pulled ${after} after the restart, ${before} before, ${gained.length} gained`);
    console.log(`# n4 pulled ${before} keys, was killed, and pulled ${after} more of ${gained.length} after its restart`);
    await c.stop();
  });

  it('sim moves - a node that has left refuses to start again on its data directory', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, [...ids, 'n4'], { handoff: { bytesPerSecond: 1_000_000, ringDelayMs: 500 } });
    await c.start();
    await settle(c, [...ids, 'n4']);
    const client = c.connectClient('admin');
    const reply = await c.clock.run(client.request(ClientOp.Leave, 'n4', ''));
    assert.equal(reply.code, 200, reply.message);
    await c.clock.run(c.node('n4').node.left);
    for (const id of ids) assert.equal(c.node(id).node.membership.stateOf('n4'), 'left');
    await c.crash('n4');
    await assert.rejects(c.revive('n4'), /n4 has left the cluster/);
    await c.stop();
  });
});
