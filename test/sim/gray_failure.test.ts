/**
 * Issue 10 (gray failures): a member whose heartbeats flow but whose replica
 * requests hang (a stuck disk, a stalled loop) stops costing clients a
 * request timeout per operation: after two replica requests to it time out
 * in a row, each coordinator routes around it (before, and without, the
 * failure detector convicting it), tries it again after two request
 * timeouts, and uses it again once it answers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, GodDbError } from '../../src/core/errors.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];
const value = new TextEncoder().encode('v');

/** Runs one write through n1's coordinator; its outcome (ok, or the error code) and how long it took in simulated ms. */
async function timedWrite(c: SimCluster, key: string, w: number): Promise<{ code: number; ms: number }> {
  const start = c.clock.monotonicMs();
  try {
    await c.clock.run(c.node('n1').node.coordinator.write(key, value, w));
    return { code: 200, ms: c.clock.monotonicMs() - start };
  } catch (err) {
    return { code: err instanceof GodDbError ? err.code : ErrorCode.Internal, ms: c.clock.monotonicMs() - start };
  }
}

describe('gray failures in a simulated cluster', () => {
  it('sim gray - a member that heartbeats but does not answer replica requests is asked last after two timeouts with no answer, tried again later, and used again once it answers', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids, { requestTimeoutMs: 1_000 });
    await c.start();
    await c.clock.advance(3_000);
    const coordinator = c.node('n1').node.coordinator;
    // n3's replica subjects stall; its gossip goes on.
    c.bus.stall('n3', (subject) => subject.startsWith('god.sim.node.n3.') && !subject.endsWith('.probe') && !subject.endsWith('.members'));

    const first = await timedWrite(c, 'k1', 3);
    const second = await timedWrite(c, 'k2', 3);
    assert.deepEqual([first.code, second.code], [ErrorCode.Timeout, ErrorCode.Timeout], `seed ${seed}: W=3 waits for n3 until its requests time out`);
    assert.deepEqual(coordinator.responsiveness.shunned(), ['n3'], 'n3 is routed around after two timeouts');
    assert.ok(c.node('n1').node.membership.isUp('n3'), 'while the failure detector still sees it up');

    // Routed around, not left out: it is still up in placement, and asked last. A read at R=2
    // asks the two others first, so it does not wait for n3 (nor for the speculative retry).
    assert.equal(coordinator.placementOf('k4').replicas.find((r) => r.node === 'n3')?.up, true, 'n3 stays in placement, up');
    for (const key of ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']) {
      const start = c.clock.monotonicMs();
      await c.clock.run(coordinator.read(key, 2));
      assert.ok(c.clock.monotonicMs() - start < 50, `R=2 read of ${key} took ${c.clock.monotonicMs() - start} ms: n3 was asked`);
    }
    const quorum = await timedWrite(c, 'k4', 2);
    assert.equal(quorum.code, 200);

    // Two request timeouts later it is tried again; still stalled, it is routed around again at once.
    await c.clock.advance(2_100);
    assert.deepEqual(coordinator.responsiveness.shunned(), []);
    const retried = await timedWrite(c, 'k5', 3);
    assert.equal(retried.code, ErrorCode.Timeout);
    assert.deepEqual(coordinator.responsiveness.shunned(), ['n3'], 'one more timeout routes around it again');

    // Recovered: what it held is handled, and once tried again it is used.
    c.bus.unstall('n3');
    await c.clock.advance(2_100);
    const back = await timedWrite(c, 'k6', 3);
    assert.equal(back.code, 200, `seed ${seed}: n3 answers again and counts toward W=3`);
    assert.deepEqual(coordinator.responsiveness.shunned(), []);
    assert.ok(coordinator.responsiveness.shuns >= 2);
    await c.stop();
  });
});
