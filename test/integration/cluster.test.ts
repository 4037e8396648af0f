/**
 * Three real worker processes on a real nats-server: the wire contract seen
 * from a plain NATS client, and quorum with a node killed by SIGKILL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { collect, rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { startWorker, type Worker } from '../helpers/workers.js';

const ids = ['a1', 'a2', 'a3'];

function workerArgs(url: string): string[] {
  return ['--cluster', 'itest', '-peers', ids.join(','), '-discovery', url, '--engine', 'memory', '-port', '0',
    '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '200ms', '--log-level', 'info'];
}

interface StatsReply {
  metadata?: Record<string, string>;
  endpoints?: { name: string; num_requests: number }[];
}

describe('cluster of three worker processes', () => {
  let nats: NatsServerHandle;
  let workers: Worker[] = [];
  let nc: NatsConnection;

  before(async () => {
    nats = await startNatsServer();
    workers = await Promise.all(ids.map((id) => startWorker(id, workerArgs(nats.url))));
    nc = await rawConnect(nats.url);
  });

  after(async () => {
    await nc?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
  });

  it('every node registers the micro service: $SRV.PING answers three times', async () => {
    const pings = (await collect(nc, '$SRV.PING.goddb', 10_000, ids.length)) as StatsReply[];
    assert.deepEqual(pings.map((p) => p.metadata?.['node_id']).sort(), ids);
  });

  it('a put through a raw NATS request is readable through the other nodes', async () => {
    const put = await rawRequest(nc, 'kv.put.user.42', 'hello');
    assert.equal(put.code, 200, put.message);
    assert.equal(put.value, '');
    for (let i = 0; i < 30; i++) {
      const get = await rawRequest(nc, 'kv.get.user.42');
      assert.equal(get.code, 200, get.message);
      assert.equal(get.value, 'hello');
      assert.ok(get.header('KV-Context'), 'a read returns its causal context');
    }
    const stats = (await collect(nc, '$SRV.STATS.goddb', 10_000, ids.length)) as StatsReply[];
    const served = stats.filter((s) => (s.endpoints?.find((e) => e.name === 'kv')?.num_requests ?? 0) > 0);
    assert.ok(served.length >= 2, `gets were coordinated by ${served.length} node(s); the queue group spreads them`);
  });

  it('a key with dots is the whole tail of the subject', async () => {
    assert.equal((await rawRequest(nc, 'kv.put.a.b.c', 'dots')).code, 200);
    assert.equal((await rawRequest(nc, 'kv.get.a.b.c')).value, 'dots');
    assert.equal((await rawRequest(nc, 'kv.get.a.b')).code, 404, 'a prefix of the key is another key');
  });

  it('a key that cannot be a subject token travels in the KV-Key header', async () => {
    assert.equal((await rawRequest(nc, 'kv.put', 'spaced', { 'KV-Key': 'hello world *' })).code, 200);
    assert.equal((await rawRequest(nc, 'kv.get', '', { 'KV-Key': 'hello world *' })).value, 'spaced');
    const missing = await rawRequest(nc, 'kv.get');
    assert.equal(missing.code, 400);
  });

  it('a missing key is 404 in the service error header, with an empty payload', async () => {
    const get = await rawRequest(nc, 'kv.get.never.written');
    assert.equal(get.code, 404);
    assert.equal(get.value, '');
    assert.match(get.message, /not found/);
  });

  it('a delete makes the key 404', async () => {
    assert.equal((await rawRequest(nc, 'kv.put.doomed', 'x')).code, 200);
    assert.equal((await rawRequest(nc, 'kv.del.doomed')).code, 200);
    assert.equal((await rawRequest(nc, 'kv.get.doomed')).code, 404);
  });

  it('bad R or W is 400', async () => {
    for (const [h, v] of [['KV-R', '0'], ['KV-R', '4'], ['KV-R', 'two'], ['KV-W', '0'], ['KV-W', '9'], ['KV-W', '1.5']] as const) {
      const op = h === 'KV-R' ? 'get' : 'put';
      const reply = await rawRequest(nc, `kv.${op}.quorum`, 'v', { [h]: v });
      assert.equal(reply.code, 400, `${h}: ${v}`);
      assert.match(reply.message, new RegExp(h));
    }
    assert.equal((await rawRequest(nc, 'kv.put.quorum', 'v', { 'KV-W': '3' })).code, 200);
    assert.equal((await rawRequest(nc, 'kv.get.quorum', '', { 'KV-R': '3' })).value, 'v');
  });

  it('a value over the maximum is 413 and nothing is stored', async () => {
    const big = 'x'.repeat(1024 * 1024 - 8192 + 1);
    const reply = await rawRequest(nc, 'kv.put.big', big);
    assert.equal(reply.code, 413);
    assert.equal((await rawRequest(nc, 'kv.get.big')).code, 404);
  });

  it('with one node killed by SIGKILL every put and get with R=W=2 still succeeds', async () => {
    await workers[2]!.kill('SIGKILL');
    // The server drops the dead client's subscriptions when it sees the socket close;
    // wait for that (a request already routed to a dead process is lost in any system).
    for (let i = 0; i < 50; i++) {
      if ((await collect(nc, '$SRV.PING.goddb', 100)).length === 2) break;
    }
    for (let i = 0; i < 60; i++) {
      const put = await rawRequest(nc, `kv.put.k${i}`, `v${i}`, { 'KV-W': '2' });
      assert.equal(put.code, 200, `put k${i}: ${put.message}`);
      const get = await rawRequest(nc, `kv.get.k${i}`, '', { 'KV-R': '2' });
      assert.equal(get.code, 200, `get k${i}: ${get.message}`);
      assert.equal(get.value, `v${i}`);
    }
    const all = await rawRequest(nc, 'kv.put.k0', 'v', { 'KV-W': '3' });
    assert.ok(all.code === 503 || all.code === 504, `W=3 with a node dead fails: ${all.code} ${all.message}`);
    assert.match(all.message, /replicas/);
  });
});
