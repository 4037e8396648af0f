/**
 * Issue 9 (tokens): a node joining a running cluster chooses its tokens once
 * it has heard the ring, every member places it at those tokens, and a
 * restart does not move it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replicatedOwnership } from '../../src/core/tokens.js';
import { derivedTokens } from '../../src/node/membership/placement_tokens.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];
const ringOf = (c: SimCluster, id: string) => c.node(id).node.membership.ring().tokens.map((t) => `${t.position.toString(16)}:${t.nodeId}`).join(',');

describe('tokens of a joining node', () => {
  it('sim join - every member builds the same balanced ring with the joiner at the tokens it chose, and a restart keeps them', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const n4 = await c.clock.run(c.startOne('n4'));
    await c.clock.advance(3_000);
    const ring = ringOf(c, 'n1');
    for (const id of [...ids, 'n4']) assert.equal(ringOf(c, id), ring, `${id} builds the same ring`);
    const mine = n4.node.membership.ring().tokens.filter((t) => t.nodeId === 'n4').map((t) => t.position);
    assert.equal(mine.length, 10);
    assert.notDeepEqual([...mine].sort(), [...derivedTokens('n4', 10)].sort(), 'chosen for balance, not derived from the id');
    const own = replicatedOwnership(n4.node.membership.ring().tokens, 3);
    const loads = [...own.values()];
    const spread = Math.max(...loads) / (loads.reduce((a, b) => a + b, 0) / loads.length);
    assert.ok(spread <= 1.1, `max/mean ${spread.toFixed(3)}`);
    await c.clock.run(c.restart('n4', { wipe: false }));
    await c.clock.advance(3_000);
    for (const id of [...ids, 'n4']) assert.equal(ringOf(c, id), ring, `${id}: the ring did not move when n4 restarted`);
    await c.stop();
  });
});
