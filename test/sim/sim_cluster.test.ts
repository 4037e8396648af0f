import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientOp } from '../../src/protocol/subjects.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];

describe('simulated cluster harness', () => {
  it('sim cluster - a restart keeps the engine and metadata, or wipes both; the clock offset comes back as asked', async () => {
    const c = new SimCluster(simSeed(), ids, {}, { clockOffsetsMs: { n2: 2_000 } });
    await c.start();
    assert.equal(c.node('n2').clock.nowMs() - c.clock.nowMs(), 2_000);
    assert.equal((await c.request(ClientOp.Put, 'kept', 'v', { 'KV-W': '3' })).code, 200);
    const { engine, meta } = c.node('n2');
    await c.clock.run(c.restart('n2', { wipe: false, clockOffsetMs: -30_000 }));
    assert.equal(c.node('n2').engine, engine, 'the same disk');
    assert.equal(c.node('n2').meta, meta);
    assert.equal(c.node('n2').clock.nowMs() - c.clock.nowMs(), -30_000, 'restarted 30 s behind');
    assert.equal(await c.convergedValue('kept'), 'v');
    await c.clock.run(c.restart('n2', { wipe: true }));
    assert.notEqual(c.node('n2').engine, engine, 'a new disk');
    assert.notEqual(c.node('n2').meta, meta);
    assert.deepEqual(await c.node('n2').node.replica.get('kept'), [], 'nothing on it');
    assert.equal(await c.convergedValue('kept'), 'v', 'the other replicas still hold it');
    c.skew('n1', 7_000);
    assert.equal(c.node('n1').clock.nowMs() - c.clock.nowMs(), 7_000);
    await c.stop();
  });

  it('sim cluster - clients on their own connections run concurrently while the test runs the clock', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const clients = ['a', 'b', 'c'].map((name) => c.connectClient(name));
    const replies = await c.clock.run(Promise.all(clients.map((client, i) => client.request(ClientOp.Put, `k${i}`, `v${i}`))));
    assert.deepEqual(replies.map((r) => r.code), [200, 200, 200]);
    for (let i = 0; i < 3; i++) assert.equal((await c.request(ClientOp.Get, `k${i}`)).value, `v${i}`);
    await c.stop();
  });
});
