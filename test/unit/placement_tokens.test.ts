import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../../src/core/errors.js';
import { initialTokens } from '../../src/core/tokens.js';
import { derivedTokens, joinTokens, planTokens, type TokenInputs } from '../../src/node/membership/placement_tokens.js';
import { MemoryMetaStore } from '../../src/storage/meta.js';

const base: TokenInputs = { id: 'n1', virtualNodes: 10, replication: 3, peers: ['n1', 'n2', 'n3'], gossip: true, protocolMax: 2, servedBefore: false };

describe('a node\'s tokens: chosen once, kept', () => {
  it('tokens plan - a member of the initial cluster takes its share of the common layout, keeps it, and assumes the same layout for its peers', () => {
    const meta = new MemoryMetaStore();
    const plan = planTokens(base, meta);
    const layout = initialTokens(new Map([['n1', 10], ['n2', 10], ['n3', 10]]), 3);
    assert.deepEqual(plan.own, layout.get('n1'));
    assert.deepEqual(plan.peers.get('n2'), layout.get('n2'));
    assert.deepEqual(planTokens({ ...base, peers: ['n1', 'n2', 'n3', 'n9'] }, meta).own, layout.get('n1'), 'kept: a later peer list does not move it');
  });

  it('tokens plan - a data directory that served before tokens were kept, or a protocol-1 node, keeps the tokens derived from its id', () => {
    assert.deepEqual(planTokens({ ...base, servedBefore: true }, new MemoryMetaStore()).own, derivedTokens('n1', 10));
    assert.deepEqual(planTokens({ ...base, protocolMax: 1 }, new MemoryMetaStore()).own, derivedTokens('n1', 10));
  });

  it('tokens plan - a node not in the initial cluster is joining until it has heard the ring, then keeps what it chose', () => {
    const meta = new MemoryMetaStore();
    const plan = planTokens({ ...base, id: 'n4' }, meta);
    assert.equal(plan.own, undefined);
    const layout = initialTokens(new Map([['n1', 10], ['n2', 10], ['n3', 10]]), 3);
    const heard = [...layout].flatMap(([nodeId, ts]) => ts.map((position) => ({ position, nodeId })));
    const chosen = joinTokens('n4', 10, 3, heard, new Map([['n1', 10], ['n2', 10], ['n3', 10]]), meta);
    assert.equal(chosen.length, 10);
    assert.deepEqual(planTokens({ ...base, id: 'n4' }, meta).own, chosen, 'a restart finds them');
  });

  it('tokens plan - kept tokens that do not match the virtual-node count are refused, not silently replaced', () => {
    const meta = new MemoryMetaStore();
    planTokens(base, meta);
    assert.throws(() => planTokens({ ...base, virtualNodes: 12 }, meta), StorageError);
  });
});
