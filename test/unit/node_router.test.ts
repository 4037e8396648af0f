/**
 * The SDK's choice of node (client/node_router.ts): only nodes that answered
 * the last $SRV.PING round get requests, in turn, on their own subject; one
 * whose request timed out is skipped until it answers again; with no answer
 * yet, or nodes of several clusters, requests go to the queue group.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodeRouter, pingAnswer } from '../../src/client/node_router.js';
import { nodeAddressedSubject, servicePingSubject, unaddressed } from '../../src/protocol/subjects.js';
import type { Reply, Transport } from '../../src/transport/transport.js';

const answer = (nodeId: string, cluster = 'c'): Reply => ({ data: new TextEncoder().encode(JSON.stringify({ name: 'goddb', metadata: { node_id: nodeId, cluster } })) }) as unknown as Reply;

function fakeTransport(answers: () => Reply[]): Transport {
  return {
    gather: async (subject: string) => {
      assert.equal(subject, servicePingSubject());
      return answers();
    },
  } as unknown as Transport;
}

describe('node router', () => {
  it('router - routes in turn to the nodes that answered, skips one that timed out until it answers again, falls back to the queue group', async () => {
    let answering = ['a', 'b', 'c'];
    const router = new NodeRouter(fakeTransport(() => answering.map((id) => answer(id))));
    assert.deepEqual(router.route('kv.get.k'), { subject: 'kv.get.k', node: undefined }, 'no answer yet: the queue group');
    await router.probe();
    assert.deepEqual([1, 2, 3, 4].map(() => router.route('kv.get.k').node), ['a', 'b', 'c', 'a']);
    assert.equal(router.route('kv.put.user.1').subject, 'kvn.b.put.user.1');
    router.timedOut('b');
    assert.deepEqual(router.nodes(), ['a', 'c']);
    answering = ['a', 'c'];
    await router.probe();
    assert.deepEqual(router.nodes(), ['a', 'c'], 'still skipped while it does not answer');
    answering = ['a', 'b', 'c'];
    await router.probe();
    assert.deepEqual(router.nodes(), ['a', 'b', 'c'], 'back once it answers');
    answering = [];
    await router.probe();
    assert.deepEqual(router.route('kv.get.k'), { subject: 'kv.get.k', node: undefined }, 'nobody answers: the queue group');
  });

  it('router - nodes of two clusters on one bus, or answers that are not a GoD-DB node\'s, are not routed to', async () => {
    const router = new NodeRouter(fakeTransport(() => [answer('a', 'c1'), answer('b', 'c2')]));
    await router.probe();
    assert.deepEqual(router.nodes(), []);
    assert.equal(pingAnswer(new TextEncoder().encode('not json')), undefined);
    assert.equal(pingAnswer(new TextEncoder().encode(JSON.stringify({ metadata: { node_id: 'a b', cluster: 'c' } }))), undefined);
    assert.deepEqual(pingAnswer(new TextEncoder().encode(JSON.stringify({ metadata: { node_id: 'n1', cluster: 'c' } }))), { nodeId: 'n1', cluster: 'c' });
  });

  it('router - a node-addressed subject is the client subject for that node alone', () => {
    assert.equal(nodeAddressedSubject('n1', 'kv.get.user.42'), 'kvn.n1.get.user.42');
    assert.equal(unaddressed('kvn.n1.get.user.42', 'n1'), 'kv.get.user.42');
    assert.equal(unaddressed('kvn.n2.get.user.42', 'n1'), 'kvn.n2.get.user.42', 'another node\'s subject is left as it is (and refused: unknown operation)');
    assert.throws(() => nodeAddressedSubject('n1', 'god.x'));
  });
});
