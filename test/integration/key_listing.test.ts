/**
 * Issue 12, item 4 (key listing) on three real workers, through a plain NATS
 * client that knows only the wire contract: `kv.keys` pages with
 * KV-Keys-After, KV-Prefix and KV-Keys-Limit. The store holds a few hundred
 * keys, some deleted, some expired by their TTL, some that are not subject
 * tokens; every listing must give every live key exactly once, also with one
 * worker killed, and while it restarts on its old data directory, missing the
 * writes and deletes made meanwhile (the listing merges R=2 replicas per
 * range, so the stale one changes nothing). Then the SDK's keys() iterator
 * and `goddb keys`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { headerBlock, WireClient, type WireReply } from '../helpers/nats_wire.js';
import { cliPath, runScript, startWorker, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['k1', 'k2', 'k3'];

function first(reply: WireReply, name: string): string | undefined {
  return reply.headers.get(name.toLowerCase())?.[0];
}

interface Listing {
  keys: string[];
  pages: number;
  done: number;
}

describe('key listing on real workers', () => {
  let nats: NatsServerHandle;
  const workers: Worker[] = [];
  const dirs = ids.map((id) => tempDir(`keys-${id}`));
  const args = (i: number) => [
    '--cluster', 'keys', '-peers', ids.join(','), '-discovery', nats.url, '--engine', 'lmdb', '--data-dir', dirs[i]!.path,
    '-port', '0', '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '200ms', '--log-level', 'info',
  ];
  let wire: WireClient;
  let db: GodDbClient;
  const live = new Set<string>();

  /** Every page of a listing, as a plain client reads them. */
  async function list(headers: Record<string, string> = {}): Promise<Listing> {
    const keys: string[] = [];
    let cursor: string | undefined;
    for (let pages = 1; pages < 10_000; pages++) {
      const reply = await wire.request('kv.keys', '', headerBlock({ ...headers, ...(cursor === undefined ? {} : { 'KV-Keys-After': cursor }) }), 10_000);
      assert.ok(reply, 'a page answered');
      assert.equal(reply.code, 200, reply.message);
      const count = Number(first(reply, 'KV-Keys-Count'));
      const lines = reply.payload.length === 0 ? [] : reply.payload.toString('utf8').split('\n');
      const page = first(reply, 'KV-Keys-Encoding') === 'base64url' ? lines.map((l) => Buffer.from(l, 'base64url').toString('utf8')) : lines;
      assert.equal(page.length, count);
      keys.push(...page);
      cursor = first(reply, 'KV-Keys-After');
      const done = first(reply, 'KV-Keys-Done');
      if (cursor === undefined) {
        assert.ok(done !== undefined, 'the last page says how many keys were listed');
        return { keys, pages, done: Number(done) };
      }
      assert.equal(done, undefined);
    }
    assert.fail('the listing did not end');
  }

  function assertExactly(listed: Listing, expected: Iterable<string>): void {
    const want = [...expected].sort();
    assert.equal(listed.keys.length, new Set(listed.keys).size, 'no key listed twice');
    assert.deepEqual([...listed.keys].sort(), want);
    assert.equal(listed.done, want.length);
  }

  async function put(key: string, headers: Record<string, string> = {}): Promise<void> {
    const subjectSafe = /^[A-Za-z0-9_.-]+$/.test(key);
    const extra = subjectSafe ? headers : { ...headers, 'KV-Key-B64': Buffer.from(key).toString('base64url') };
    const reply = await wire.request(subjectSafe ? `kv.put.${key}` : 'kv.put', `v-${key}`, headerBlock(extra));
    assert.equal(reply?.code, 200, `${key}: ${reply?.message}`);
  }

  before(async () => {
    nats = await startNatsServer();
    workers.push(...(await Promise.all(ids.map((id, i) => startWorker(id, args(i))))));
    wire = await WireClient.connect(nats.port);
    for (let i = 0; i < 200; i++) await put(`user.${i}`);
    for (let i = 0; i < 60; i++) await put(`item.${i}`);
    for (let i = 0; i < 15; i++) await put(`odd key ${i} *>`);
    await put('line\nbreak');
    for (let i = 0; i < 20; i++) await put(`tmp.${i}`, { 'KV-TTL': '1' });
    for (let i = 0; i < 200; i++) live.add(`user.${i}`);
    for (let i = 0; i < 60; i++) live.add(`item.${i}`);
    for (let i = 0; i < 15; i++) live.add(`odd key ${i} *>`);
    live.add('line\nbreak');
    for (let i = 0; i < 200; i += 7) {
      assert.equal((await wire.request(`kv.del.user.${i}`, ''))?.code, 200);
      live.delete(`user.${i}`);
    }
    // The TTL keys expire a second after their put: wait until the last one reads as absent.
    const deadline = Date.now() + 15_000;
    while ((await wire.request('kv.get.tmp.19', ''))?.code !== 404) {
      assert.ok(Date.now() < deadline, 'tmp.19 expired');
      await delay(100);
    }
    db = await connect({ servers: nats.url });
  });
  after(async () => {
    await db?.close();
    wire?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
    for (const d of dirs) d.remove();
  });

  it('keys - a plain client lists every live key once: no deleted or expired key, keys that are not subject tokens included', async () => {
    const listed = await list();
    assertExactly(listed, live);
  });

  it('keys - small pages (KV-Keys-Limit) give the same keys over many pages', async () => {
    const listed = await list({ 'KV-Keys-Limit': '7' });
    assert.ok(listed.pages >= Math.ceil(live.size / 7), `${listed.pages} pages`);
    assertExactly(listed, live);
  });

  it('keys - KV-Prefix selects the keys that start with it, also a prefix that is not a subject token', async () => {
    assertExactly(await list({ 'KV-Prefix': 'user.1' }), [...live].filter((k) => k.startsWith('user.1')));
    assertExactly(await list({ 'KV-Prefix': 'odd key 1' }), [...live].filter((k) => k.startsWith('odd key 1')));
    assertExactly(await list({ 'KV-Prefix': 'nothing-here' }), []);
  });

  it('keys - malformed listing requests are answered 400', async () => {
    const cases: [string, Record<string, string>][] = [
      ['kv.keys.user', {}],
      ['kv.keys', { 'KV-Keys-After': 'not-a-cursor' }],
      ['kv.keys', { 'KV-Keys-Limit': '0' }],
      ['kv.keys', { 'KV-Keys-Limit': '100000' }],
      ['kv.keys', { 'KV-R': '9' }],
    ];
    for (const [subject, headers] of cases) {
      const reply = await wire.request(subject, '', headerBlock(headers));
      assert.equal(reply?.code, 400, `${subject} ${JSON.stringify(headers)}: ${reply?.message}`);
    }
    const firstPage = await wire.request('kv.keys', '', headerBlock({ 'KV-Keys-Limit': '3', 'KV-Prefix': 'user.' }));
    const cursor = first(firstPage!, 'KV-Keys-After')!;
    const other = await wire.request('kv.keys', '', headerBlock({ 'KV-Keys-After': cursor, 'KV-Prefix': 'item.' }));
    assert.equal(other?.code, 400, 'a cursor is refused with another prefix');
    assert.equal((await wire.request('kv.keys', 'payload'))?.code, 400);
  });

  it('keys - the SDK iterator and goddb keys list the same keys', async () => {
    const sdk: string[] = [];
    for await (const k of db.keys('', { pageSize: 50 })) sdk.push(k);
    assertExactly({ keys: sdk, pages: 0, done: sdk.length }, live);
    const items: string[] = [];
    for await (const k of db.keys('item.')) items.push(k);
    assert.deepEqual(items.sort(), [...live].filter((k) => k.startsWith('item.')).sort());
    const run = await runScript(cliPath, ['keys', 'odd key', '--servers', nats.url], '', 30_000);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split('\n').sort(), [...live].filter((k) => k.startsWith('odd key')).sort());
    const lines = await runScript(cliPath, ['keys', 'line', '--servers', nats.url], '', 30_000);
    assert.equal(lines.stdout, '"line\\nbreak"\n', 'a key with a line break is one line, as JSON');
  });

  it('keys - with one worker killed, every live key is still listed once (its ranges are read from the others)', async () => {
    await workers[2]!.kill('SIGKILL');
    // The server drops the dead client's subscriptions when it sees the socket close; wait for
    // that (a request the queue group routed to the dead process before is lost in any system).
    const deadline = Date.now() + 10_000;
    while ((await wire.collect('$SRV.PING.goddb', '', 100)).length !== 2) assert.ok(Date.now() < deadline, 'k3 still answers $SRV.PING');
    assertExactly(await list({ 'KV-Keys-Limit': '40' }), live);
    const sdk: string[] = [];
    for await (const k of db.keys()) sdk.push(k);
    assertExactly({ keys: sdk, pages: 0, done: sdk.length }, live);
  });

  it('keys - while the killed worker restarts on its old data, missing what changed meanwhile, listings still match exactly', async () => {
    assert.notEqual(workers[2]!.process.exitCode ?? workers[2]!.process.signalCode, null, 'k3 is down');
    for (let i = 0; i < 30; i++) {
      await put(`late.${i}`);
      live.add(`late.${i}`);
    }
    for (let i = 1; i < 60; i += 6) {
      assert.equal((await wire.request(`kv.del.item.${i}`, ''))?.code, 200);
      live.delete(`item.${i}`);
    }
    // List over and over while k3 starts, joins and answers with its stale copy.
    let restarted = false;
    const restart = startWorker('k3', args(2)).then((w) => {
      workers[2] = w;
      restarted = true;
    });
    let during = 0;
    while (!restarted) {
      assertExactly(await list({ 'KV-Keys-Limit': '60' }), live);
      during++;
    }
    await restart;
    for (let i = 0; i < 3; i++) assertExactly(await list({ 'KV-Keys-Limit': '60' }), live);
    assert.ok(during >= 1, 'at least one listing ran during the restart');
  });
});
