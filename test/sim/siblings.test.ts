/**
 * Issue 12, item 3: the `siblings` conflict policy in the simulator. Puts
 * without a context are siblings (through one coordinator too: dotted
 * versions), a get answers every live value in the multipart form
 * (KV-Siblings, KV-Sibling-Lengths), a put with the read's context resolves
 * them, a client that retries its put (and a bus that duplicates it) does not
 * add siblings beyond its one value, and the bound holds under 50 blind writers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientOp, Header } from '../../src/protocol/subjects.js';
import { decodeSiblings } from '../../src/protocol/siblings_reply.js';
import { liveSiblings } from '../../src/core/version.js';
import { SimCluster, simSeed, type ClientReply } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];
const siblingsPolicy = { conflictPolicy: 'siblings' as const };

/** The values a get answered: one, or the multipart form's parts. */
function valuesOf(r: ClientReply): string[] {
  assert.equal(r.code, 200, r.message);
  const lengths = r.header(Header.SiblingLengths);
  if (lengths === undefined) {
    assert.equal(r.header(Header.Siblings), undefined, 'KV-Siblings only with the multipart form');
    return [r.value];
  }
  const parts = decodeSiblings(Buffer.from(r.value, 'utf8'), lengths).map((p) => Buffer.from(p).toString('utf8'));
  assert.equal(r.header(Header.Siblings), String(parts.length));
  return parts;
}

describe('sim - siblings', () => {
  it('siblings - blind puts from concurrent writers (and twice through one node) are siblings; a put with the read context resolves them', async () => {
    const c = new SimCluster(simSeed(), ids, siblingsPolicy);
    await c.start();
    try {
      // Two blind puts through the same coordinator, one after the other: a plain vector clock
      // (one entry per coordinator) ordered them and lost the first.
      assert.equal((await c.requestVia('n1', ClientOp.Put, 'k', 'alice')).code, 200);
      assert.equal((await c.requestVia('n1', ClientOp.Put, 'k', 'bob')).code, 200);
      // Three more writers at once, each on its own connection, through the queue group.
      const clients = ['carol', 'dave', 'erin'].map((name) => ({ name, conn: c.connectClient(name) }));
      const puts = await c.clock.run(Promise.all(clients.map(({ name, conn }) => conn.request(ClientOp.Put, 'k', name))));
      for (const p of puts) assert.equal(p.code, 200, p.message);
      const read = await c.requestVia('n2', ClientOp.Get, 'k');
      const values = valuesOf(read);
      assert.deepEqual([...values].sort(), ['alice', 'bob', 'carol', 'dave', 'erin']);
      const newest = await c.converged('k');
      assert.equal(values[0], Buffer.from(liveSiblings(newest, 0)[0]!.value).toString(), 'newest first');

      // Read-modify-write: the merge the application chose, with the context of the read.
      const context = read.header(Header.Context)!;
      assert.equal((await c.requestVia('n3', ClientOp.Put, 'k', values.sort().join('+'), { [Header.Context]: context })).code, 200);
      for (const id of ids) assert.deepEqual(valuesOf(await c.requestVia(id, ClientOp.Get, 'k')), ['alice+bob+carol+dave+erin'], `through ${id}`);
      assert.equal((await c.converged('k')).length, 1, 'every sibling superseded on the replicas');

      // A blind put after the resolution is a sibling of it; a delete with the context removes both.
      assert.equal((await c.requestVia('n1', ClientOp.Put, 'k', 'late')).code, 200);
      const again = await c.requestVia('n1', ClientOp.Get, 'k');
      assert.deepEqual(valuesOf(again).sort(), ['alice+bob+carol+dave+erin', 'late']);
      assert.equal((await c.requestVia('n2', ClientOp.Del, 'k', '', { [Header.Context]: again.header(Header.Context)! })).code, 200);
      assert.equal((await c.requestVia('n3', ClientOp.Get, 'k')).code, 404);

      // A delete without a context reads first and deletes what it read (a bare tombstone would be one more sibling).
      assert.equal((await c.requestVia('n1', ClientOp.Put, 'd', 'x')).code, 200);
      assert.equal((await c.requestVia('n2', ClientOp.Put, 'd', 'y')).code, 200);
      assert.equal((await c.requestVia('n3', ClientOp.Del, 'd')).code, 200);
      for (const id of ids) assert.equal((await c.requestVia(id, ClientOp.Get, 'd')).code, 404, `through ${id}`);
    } finally {
      await c.stop();
    }
  });

  it('siblings - clients that send their put again until answered, on a bus that drops, delays and duplicates, add no siblings past the writers', async () => {
    const bus = { duplicateRate: 0.5, dropRate: 0.05, slowRate: 0.3, slowDelayMsMax: 3000, minDelayMs: 1, maxDelayMs: 30 };
    const c = new SimCluster(simSeed(), ids, siblingsPolicy, { bus });
    await c.start();
    try {
      let start: ClientReply | undefined;
      for (let i = 0; i < 10 && start?.code !== 200; i++) start = await c.request(ClientOp.Put, 'r', 'start');
      await c.clock.advance(10_000); // every copy of `start` (sent again, duplicated, slow) has landed
      let base: ClientReply | undefined;
      for (let i = 0; i < 10 && base?.code !== 200; i++) base = await c.request(ClientOp.Get, 'r', '', { [Header.R]: '3' });
      assert.deepEqual(valuesOf(base!), ['start'], 'copies of one put are one value');
      const context = base!.header(Header.Context)!;
      const writers = ['w1', 'w2', 'w3', 'w4'];
      // Each writer read `start` and writes its value with that context, sends the very same put
      // again after every failure or timeout (1 s) through the queue group, up to 8 times, then once more.
      let attempts = 0;
      const acked = new Set<string>();
      await c.clock.run(
        Promise.all(
          writers.map(async (w, k) => {
            const conn = c.connectClient(w, 1000);
            for (let i = 0; i < 8 && !acked.has(w); i++) {
              attempts++;
              if ((await conn.request(ClientOp.Put, 'r', w, { [Header.Context]: context })).code === 200) acked.add(w);
            }
            // And once more through another node, as a client does whose answer was lost on the way.
            attempts++;
            if ((await c.requestVia(ids[k % ids.length]!, ClientOp.Put, 'r', w, { [Header.Context]: context })).code === 200) acked.add(w);
          }),
        ),
      );
      assert.ok(acked.size >= 3, `writers acknowledged: ${[...acked].join(' ')}`);
      await c.clock.advance(10_000); // late and duplicated deliveries land
      const stored = await c.converged('r');
      const read = await c.clock.run(
        (async () => {
          for (let i = 0; ; i++) {
            const r = await c.requestVia(ids[i % 3]!, ClientOp.Get, 'r', '', { [Header.R]: '3' });
            if (r.code === 200 || i >= 10) return r;
          }
        })(),
      );
      const values = valuesOf(read);
      for (const w of acked) assert.ok(values.includes(w), `${w} was acknowledged and is a sibling`);
      for (const v of values) assert.ok(writers.includes(v), `${v} is a writer's value`);
      assert.ok(values.length <= writers.length, `${values.length} siblings from ${writers.length} writers (${attempts} attempts, ${stored.length} versions stored)`);
      assert.ok(stored.length <= 16);
    } finally {
      await c.stop();
    }
  });

  it('siblings - 50 concurrent blind writers: at most siblingsMax (16) siblings, the oldest collapsed and counted, the newest kept', async () => {
    const c = new SimCluster(simSeed(), ids, siblingsPolicy);
    await c.start();
    try {
      const names = Array.from({ length: 50 }, (_, i) => `writer-${String(i).padStart(2, '0')}`);
      const puts = await c.clock.run(Promise.all(names.map((name) => c.connectClient(name).request(ClientOp.Put, 'hot', name))));
      for (const p of puts) assert.equal(p.code, 200, p.message);
      for (const n of c.nodes.values()) {
        const held = await n.node.replica.get('hot');
        assert.ok(held.length <= 16 && held.length > 1, `${n.id} holds ${held.length}`);
      }
      const read = await c.requestVia('n1', ClientOp.Get, 'hot', '', { [Header.R]: '3' });
      const values = valuesOf(read);
      assert.ok(values.length <= 16 && values.length >= 8, `${values.length} siblings`);
      for (const v of values) assert.ok(names.includes(v), v);
      const collapsed = [...c.nodes.values()].reduce((n, s) => n + s.node.replica.siblingsCollapsed + s.node.coordinator.siblingsCollapsed, 0);
      assert.ok(collapsed > 0, 'collapses are counted (goddb_siblings_collapsed_total)');
      assert.equal((await c.requestVia('n2', ClientOp.Put, 'hot', 'resolved', { [Header.Context]: read.header(Header.Context)! })).code, 200);
      assert.deepEqual(valuesOf(await c.requestVia('n3', ClientOp.Get, 'hot', '', { [Header.R]: '3' })), ['resolved']);
    } finally {
      await c.stop();
    }
  });

  it('siblings - siblingsMax bounds what a read answers; lww (the default) answers one value with no KV-Siblings', async () => {
    const c = new SimCluster(simSeed(), ids, { ...siblingsPolicy, siblingsMax: 3 });
    const lww = new SimCluster(simSeed(), ids);
    await c.start();
    await lww.start();
    try {
      for (const [i, id] of ['n1', 'n2', 'n3', 'n1', 'n2'].entries()) {
        assert.equal((await c.requestVia(id, ClientOp.Put, 'b', `v${i}`)).code, 200);
        assert.equal((await lww.requestVia(id, ClientOp.Put, 'b', `v${i}`)).code, 200);
      }
      const values = valuesOf(await c.requestVia('n3', ClientOp.Get, 'b', '', { [Header.R]: '3' }));
      assert.equal(values.length, 3);
      assert.deepEqual(values.slice(0, 2), ['v4', 'v3'], 'the newest stay, newest first');
      const plain = await lww.requestVia('n3', ClientOp.Get, 'b');
      assert.deepEqual(valuesOf(plain), ['v4']);
    } finally {
      await c.stop();
      await lww.stop();
    }
  });
});
