/**
 * Issue 8, defect 1: a reply larger than the NATS max_payload killed a
 * worker. Three real workers (LMDB) on a nats-server with the default 1 MiB
 * max_payload; large values written concurrently to one key, and large keys
 * read together in one turn, must never produce a message the server
 * refuses: every request gets an answer and every worker stays up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['b1', 'b2', 'b3'];
const kib = 1024;

describe('large values near the NATS max_payload', () => {
  let nats: NatsServerHandle;
  let workers: Worker[] = [];
  let nc: NatsConnection;
  const dirs = ids.map((id) => tempDir(`large-${id}`));

  before(async () => {
    nats = await startNatsServer();
    workers = await Promise.all(ids.map((id, i) => startWorker(id, ['--cluster', 'large', '-peers', ids.join(','), '-discovery', nats.url,
      '--engine', 'lmdb', '--data-dir', dirs[i]!.path, '-port', '0', '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '200ms'])));
    nc = await rawConnect(nats.url);
  });

  after(async () => {
    await nc?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
    for (const d of dirs) d.remove();
  });

  const alive = () => workers.every((w) => w.process.exitCode === null && w.process.signalCode === null);

  it('two clients writing ~700 KiB values to one key at once, then gets: every reply arrives and no worker dies', async () => {
    const a = Buffer.alloc(700 * kib, 'a');
    const b = Buffer.alloc(700 * kib, 'b');
    const puts = await Promise.all([...Array(6).keys()].map((i) => rawRequest(nc, 'kv.put.big.same', i % 2 === 0 ? a : b, {}, 10_000)));
    for (const p of puts) assert.equal(p.code, 200, p.message);
    for (let i = 0; i < 6; i++) {
      const get = await rawRequest(nc, 'kv.get.big.same', '', { 'KV-R': '3' }, 10_000);
      assert.equal(get.code, 200, get.message);
      assert.ok(get.value.length === 700 * kib && (get.value[0] === 'a' || get.value[0] === 'b'));
      assert.ok(get.value === get.value[0]!.repeat(700 * kib), 'one whole value, not a mix');
    }
    assert.ok(alive(), 'every worker is alive');
  });

  it('several large keys read in one event-loop turn: replica replies split to fit, every get answers', async () => {
    const keys = [...Array(8).keys()].map((i) => `big.many.${i}`);
    for (const k of keys) assert.equal((await rawRequest(nc, `kv.put.${k}`, Buffer.alloc(400 * kib, k.at(-1)!), { 'KV-W': '3' }, 10_000)).code, 200);
    const gets = await Promise.all(keys.map((k) => rawRequest(nc, `kv.get.${k}`, '', { 'KV-R': '3' }, 10_000)));
    gets.forEach((g, i) => {
      assert.equal(g.code, 200, g.message);
      assert.equal(g.value.length, 400 * kib);
      assert.equal(g.value[0], String(i));
    });
    assert.ok(alive(), 'every worker is alive');
  });

  it('/metrics shows the clock and the refusal counters', async () => {
    const text = await (await fetch(`http://127.0.0.1:${workers[0]!.httpPort}/metrics`)).text();
    const hlc = Number(/^goddb_hlc\{[^}]*\} (\d+)/m.exec(text)?.[1]);
    assert.ok(hlc > Date.now() * 1000 - 3_600_000_000, `goddb_hlc is this node's clock (${hlc})`);
    for (const name of ['goddb_stale_write_retries', 'goddb_stale_write_refusals', 'goddb_clock_skew_refusals', 'goddb_malformed_replica_requests', 'goddb_unconfirmed_member_claims']) {
      assert.match(text, new RegExp(`^${name}\\{[^}]*\\} \\d+`, 'm'), name);
    }
  });
});
