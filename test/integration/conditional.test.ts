/**
 * Issue 12, item 2 on real workers (lmdb): conditional writes and serial
 * reads through a plain NATS client (the wire contract), the SDK and the
 * CLI. Concurrent creates of one key: at most one wins. Counters built on
 * compare-and-set from several SDK clients at once lose no increment.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { ConditionFailedError, connect, type GodDbClient } from '../../src/client/index.js';
import { rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { startWireCluster, type WireCluster } from '../helpers/wire_cluster.js';
import { cliPath, runScript, type ScriptRun } from '../helpers/workers.js';

describe('conditional writes on real workers', () => {
  let cluster: WireCluster;
  let nc: NatsConnection;
  const clients: GodDbClient[] = [];
  const goddb = (args: string[]): Promise<ScriptRun> => runScript(cliPath, [...args, '--servers', cluster.nats.url], '', 30_000);

  before(async () => {
    cluster = await startWireCluster('cond', ['c1', 'c2', 'c3'], 'lmdb');
    nc = await rawConnect(cluster.nats.url);
    for (let i = 0; i < 4; i++) clients.push(await connect({ servers: cluster.nats.url, timeoutMs: 10_000 }));
  });
  after(async () => {
    for (const c of clients) await c.close();
    await nc?.close();
    await cluster?.stop();
  });

  it('conditional - through a plain NATS client: create only, 409 with the current context, replace the version read, serial read, conditional delete', async () => {
    const created = await rawRequest(nc, 'kv.put.wire.lock', 'owner-1', { 'KV-If-Absent': '1' });
    assert.equal(created.code, 200, created.message);
    assert.match(created.header('KV-Acks') ?? '', /^[23]\/3$/);
    const taken = await rawRequest(nc, 'kv.put.wire.lock', 'owner-2', { 'KV-If-Absent': 'true' });
    assert.equal(taken.code, 409, taken.message);
    const read = await rawRequest(nc, 'kv.get.wire.lock', '', { 'KV-Serial': '1' });
    assert.equal(read.value, 'owner-1');
    assert.equal(taken.header('KV-Context'), read.header('KV-Context'), 'the 409 names the current version');
    const moved = await rawRequest(nc, 'kv.put.wire.lock', 'owner-3', { 'KV-If-Match': read.header('KV-Context')! });
    assert.equal(moved.code, 200, moved.message);
    const stale = await rawRequest(nc, 'kv.put.wire.lock', 'owner-4', { 'KV-If-Match': read.header('KV-Context')! });
    assert.equal(stale.code, 409);
    assert.equal((await rawRequest(nc, 'kv.get.wire.lock')).value, 'owner-3', 'a plain read sees it too');
    assert.equal((await rawRequest(nc, 'kv.del.wire.lock', '', { 'KV-If-Match': read.header('KV-Context')! })).code, 409, 'a delete of a version that is gone');
    assert.equal((await rawRequest(nc, 'kv.del.wire.lock', '', { 'KV-If-Match': stale.header('KV-Context')! })).code, 200);
    assert.equal((await rawRequest(nc, 'kv.get.wire.lock', '', { 'KV-Serial': '1' })).code, 404);
    assert.equal((await rawRequest(nc, 'kv.put.wire.lock', 'x', { 'KV-If-Absent': '1', 'KV-If-Match': stale.header('KV-Context')! })).code, 400);
  });

  it('conditional - 12 concurrent creates of one key: exactly one succeeds, the others are refused, and every replica holds the winner', async () => {
    const attempts = await Promise.all(Array.from({ length: 12 }, (_, i) => rawRequest(nc, 'kv.put.race.name', `claimant-${i}`, { 'KV-If-Absent': '1' }, 15_000)));
    const won = attempts.flatMap((r, i) => (r.code === 200 ? [i] : []));
    const codes = attempts.map((r) => r.code).sort();
    assert.equal(won.length, 1, `exactly one create wins: ${codes.join(' ')}`);
    assert.ok(attempts.every((r) => r.code === 200 || r.code === 409), `the others are refused (409), not failed: ${codes.join(' ')}`);
    assert.equal((await rawRequest(nc, 'kv.get.race.name', '', { 'KV-Serial': '1' })).value, `claimant-${won[0]}`);
    for (const id of ['c1', 'c2', 'c3']) {
      const alone = await rawRequest(nc, `kvn.${id}.get.race.name`, '', { 'KV-R': '3' });
      assert.equal(alone.value, `claimant-${won[0]}`, `read at R=3 through ${id}`);
    }
  });

  it('conditional - counters: 4 SDK clients each add 10 by compare-and-set at once; the total is 40', async () => {
    await clients[0]!.put('ctr.total', '0', { ifAbsent: true });
    let conflicts = 0;
    const add = async (db: GodDbClient): Promise<void> => {
      for (let done = 0; done < 10; ) {
        const got = await db.get('ctr.total', { serial: true });
        try {
          await db.put('ctr.total', String(Number(got!.text()) + 1), { ifMatch: got!.context });
          done++;
        } catch (err) {
          if (!(err instanceof ConditionFailedError)) throw err;
          conflicts++;
          assert.ok(err.context !== undefined && err.context !== got!.context, 'the refusal names the newer version');
        }
      }
    };
    await Promise.all(clients.map(add));
    assert.equal((await clients[1]!.get('ctr.total', { serial: true }))?.text(), '40', `no increment lost (${conflicts} conflicts retried)`);
    assert.ok(conflicts > 0, 'the clients did compete');
  });

  it('conditional - goddb put --if-absent / --if-match, goddb get --serial --print-context', async () => {
    const first = await goddb(['put', 'cli.lock', 'a', '--if-absent']);
    assert.equal(first.code, 0, first.stderr);
    const second = await goddb(['put', 'cli.lock', 'b', '--if-absent']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /error 409/);
    const ctx = /context (\S+)/.exec(second.stderr)?.[1];
    assert.ok(ctx, `the current context is printed: ${second.stderr}`);
    const got = await goddb(['get', 'cli.lock', '--serial', '--print-context']);
    assert.equal(got.stdout, 'a');
    assert.match(got.stderr, new RegExp(`context ${ctx}`));
    assert.equal((await goddb(['put', 'cli.lock', 'c', '--if-match', ctx])).code, 0);
    assert.equal((await goddb(['put', 'cli.lock', 'd', '--if-match', ctx])).code, 1, 'that version is gone');
    assert.equal((await goddb(['get', 'cli.lock'])).stdout, 'c');
  });
});
