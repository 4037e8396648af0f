/**
 * Issue 12, item 1 (TTL, first slice): a put with KV-TTL reads as 404 from
 * the moment it expires, through every node, judged by the reading
 * coordinator's HLC; a node whose wall clock is behind agrees because
 * heartbeats carry its peers' clocks. Replicas keep the data for the grace
 * period after its expiry (test/sim/gc.test.ts covers the purge).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromWallMs } from '../../src/core/hlc.js';
import { ClientOp, Header } from '../../src/protocol/subjects.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];

async function codesThroughEveryNode(c: SimCluster, key: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const id of ids) out[id] = (await c.requestVia(id, ClientOp.Get, key)).code;
  return out;
}

const everywhere = (code: number) => Object.fromEntries(ids.map((id) => [id, code]));

describe('sim - ttl', () => {
  it('ttl - a put with KV-TTL 30 reads through every node, then 404 everywhere after 31 s, even on a node 5 s behind', async () => {
    const c = new SimCluster(simSeed(), ids, {}, { clockOffsetsMs: { n3: -5000 } });
    await c.start();
    const put = await c.requestVia('n1', ClientOp.Put, 'session.1', 'token', { [Header.Ttl]: '30' });
    assert.equal(put.code, 200, put.message);
    assert.deepEqual(await codesThroughEveryNode(c, 'session.1'), everywhere(200));
    const [held] = await c.converged('session.1');
    assert.ok(held?.expiresHlc !== undefined, 'the version carries its expiry');
    assert.equal(held.expiresHlc - held.hlc, 30 * 1_000_000, 'ttl seconds in HLC units (ms x 1000)');

    await c.clock.advance(31_000);
    assert.ok(fromWallMs(c.node('n3').clock.nowMs()) < held.expiresHlc, "n3's wall clock alone would still call the key live");
    assert.deepEqual(await codesThroughEveryNode(c, 'session.1'), everywhere(404));
    assert.equal((await c.request(ClientOp.Get, 'session.1')).code, 404, 'through the queue group too');
    assert.equal((await c.converged('session.1')).length, 1, 'replicas keep the expired version (for the grace period: gc.graceSeconds)');

    const again = await c.requestVia('n3', ClientOp.Put, 'session.1', 'back');
    assert.equal(again.code, 200, again.message);
    assert.deepEqual(await codesThroughEveryNode(c, 'session.1'), everywhere(200));
    await c.clock.advance(60_000);
    const got = await c.requestVia('n2', ClientOp.Get, 'session.1');
    assert.deepEqual([got.code, got.value], [200, 'back'], 'a later put without TTL lives on');
    await c.stop();
  });

  for (const via of ['n1', 'n3']) {
    it(`ttl - with n3's clock ahead by almost the maximum skew, a put through ${via} with KV-TTL 30 reads on every node until 29 s and 404 on every node from 31 s`, async () => {
      const maxSkewMs = 60_000; // simConfig's maxClockSkewMs
      const c = new SimCluster(simSeed(), ids, {}, { clockOffsetsMs: { n3: maxSkewMs - 1_000 } });
      await c.start();
      await c.clock.advance(2_000); // heartbeats carry n3's clock to the others' HLCs
      const put = await c.requestVia(via, ClientOp.Put, `skewed.${via}`, 'token', { [Header.Ttl]: '30' });
      assert.equal(put.code, 200, put.message);
      await c.clock.advance(29_000);
      assert.deepEqual(await codesThroughEveryNode(c, `skewed.${via}`), everywhere(200), 'live until its time on every node');
      await c.clock.advance(2_000);
      assert.deepEqual(await codesThroughEveryNode(c, `skewed.${via}`), everywhere(404), 'expired on every node at once');
      await c.stop();
    });
  }

  it('ttl - an expired version still supersedes an older live one', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    assert.equal((await c.request(ClientOp.Put, 'k', 'old')).code, 200);
    assert.equal((await c.request(ClientOp.Put, 'k', 'short', { [Header.Ttl]: '1' })).code, 200);
    await c.clock.advance(2_000);
    assert.deepEqual(await codesThroughEveryNode(c, 'k'), everywhere(404), 'the older value does not show through');
    await c.stop();
  });

  it('ttl - the cluster default applies to a put without KV-TTL, and KV-TTL overrides it', async () => {
    const c = new SimCluster(simSeed(), ids, { defaultTtlSeconds: 10 });
    await c.start();
    assert.equal((await c.request(ClientOp.Put, 'd.short', 'v')).code, 200);
    assert.equal((await c.request(ClientOp.Put, 'd.long', 'v', { [Header.Ttl]: '100' })).code, 200);
    await c.clock.advance(11_000);
    assert.deepEqual(await codesThroughEveryNode(c, 'd.short'), everywhere(404));
    assert.deepEqual(await codesThroughEveryNode(c, 'd.long'), everywhere(200));
    await c.stop();
  });

  it('ttl - a bad KV-TTL or one on a delete is a 400 that says why', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    for (const bad of ['0', '-5', '1.5', '30s', 'soon', '', String(10 * 365 * 24 * 3600 + 1)]) {
      const r = await c.requestVia('n1', ClientOp.Put, 'k', 'v', { [Header.Ttl]: bad });
      assert.equal(r.code, 400, `KV-TTL ${JSON.stringify(bad)}`);
      assert.match(r.message, /KV-TTL must be a whole number of seconds from 1 to 315360000/);
    }
    const del = await c.requestVia('n1', ClientOp.Del, 'k', '', { [Header.Ttl]: '30' });
    assert.equal(del.code, 400);
    assert.match(del.message, /KV-TTL is for puts/);
    assert.equal((await c.requestVia('n1', ClientOp.Get, 'k')).code, 404, 'nothing was written');
    await c.stop();
  });
});
