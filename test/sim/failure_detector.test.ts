/**
 * Issue 9 (failure detection): a paused node (SIGSTOP: no more heartbeats,
 * connection kept) is suspected within 2 s at the default 1 s interval, and
 * a node that only skips a beat is not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];

describe('phi accrual failure detection in a simulated cluster', () => {
  it('sim phi - a node whose heartbeats stop is marked down by every peer within 2 s, and up again when they resume', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    await c.clock.advance(20_000); // twenty heartbeats: the detector has learned the gaps
    const paused = c.node('n3');
    paused.node.membership.stop(); // SIGSTOP: its process sends nothing more
    await c.clock.advance(1_200);
    assert.ok(c.node('n1').node.membership.isUp('n3'), 'not convicted for one late heartbeat');
    await c.clock.advance(800); // 2 s after the pause
    for (const id of ['n1', 'n2']) assert.equal(c.node(id).node.membership.isUp('n3'), false, `${id} suspects n3 within 2 s`);
    assert.ok(c.node('n1').node.membership.suspicion('n3') > 8);
    // Through n1's coordinator: the paused process coordinates nothing (a queue-group request could reach it).
    const put = await c.clock.run(c.node('n1').node.coordinator.write('k', new TextEncoder().encode('v'), 2));
    assert.deepEqual({ acks: put.acks, asked: put.asked }, { acks: 2, asked: 2 }, 'writes go on with the two live replicas; the suspected node is not asked');
    paused.node.membership.start(); // SIGCONT
    await c.clock.advance(1_500);
    for (const id of ['n1', 'n2']) assert.equal(c.node(id).node.membership.isUp('n3'), true, `${id} sees n3 up again`);
    await c.stop();
  });
});
