/**
 * Issue 12, item 5 (change feed) on three real workers and a nats-server
 * with JetStream: a plain NATS client subscribed to `kvchanges.>` sees one
 * event per acknowledged put or delete (plain or conditional) with the right
 * headers and payload, in HLC order per key; a key that cannot be a token
 * comes on the bare subject with KV-Key; a refused write emits nothing; the
 * events reach no node as requests. The SDK's watch filters by prefix and
 * delivers each key's changes once, in order; a stream capturing the feed
 * lets a watch resume from a sequence; `goddb watch` prints the events.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type ChangeEvent, type GodDbClient, type Watcher } from '../../src/client/index.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { collect, rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { cliPath, startWorker, tempDir, type Worker } from '../helpers/workers.js';

const waitMs = 10_000;

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(20);
  }
}

/** Every message on `subjects`, kept in arrival order. */
function record(nc: NatsConnection, subjects: string[]): { msgs: Msg[]; subs: Subscription[] } {
  const msgs: Msg[] = [];
  const subs = subjects.map((s) => nc.subscribe(s, { callback: (_e, m) => void msgs.push(m) }));
  return { msgs, subs };
}

const hdr = (m: Msg, name: string) => (m.headers?.has(name) ? m.headers.get(name) : undefined);

async function take(w: Watcher, n: number): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  const deadline = delay(waitMs).then(() => undefined);
  while (out.length < n) {
    const r = await Promise.race([w.next(), deadline]);
    if (r === undefined) assert.fail(`watch: ${out.length} of ${n} events within ${waitMs} ms`);
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe('change feed on real workers', () => {
  let nats: NatsServerHandle;
  const dirs = ['f1', 'f2', 'f3'].map((id) => tempDir(`feed-${id}`));
  const workers: Worker[] = [];
  let nc: NatsConnection;
  let db: GodDbClient;

  before(async () => {
    nats = await startNatsServer({ jetstream: true });
    const ids = ['f1', 'f2', 'f3'];
    const args = (i: number) => [
      '--cluster', 'feed', '-peers', ids.join(','), '-discovery', nats.url, '--engine', 'memory', '--data-dir', dirs[i]!.path,
      '-port', '0', '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '200ms', '--log-level', 'info',
    ];
    workers.push(...(await Promise.all(ids.map((id, i) => startWorker(id, args(i))))));
    nc = await rawConnect(nats.url);
    db = await connect({ servers: nats.url });
  });
  after(async () => {
    await db?.close().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
    for (const d of dirs) d.remove();
  });

  it('change feed - puts and deletes through kv.put and kv.del come on kvchanges.<key> with op, hlc, writer, context and value', async () => {
    const { msgs, subs } = record(nc, ['kvchanges.>', 'kvchanges']);
    await nc.flush();
    for (const v of ['one', 'two', 'three']) assert.equal((await rawRequest(nc, 'kv.put.wire.a', v)).code, 200);
    assert.equal((await rawRequest(nc, 'kv.del.wire.a', '')).code, 200);
    assert.equal((await rawRequest(nc, 'kv.put', 'spaced', { 'KV-Key': 'wire b' })).code, 200);
    await until('five events', () => (msgs.length >= 5 ? true : undefined));
    for (const s of subs) s.unsubscribe();
    const a = msgs.filter((m) => m.subject === 'kvchanges.wire.a');
    assert.deepEqual(a.map((m) => [hdr(m, 'KV-Op'), m.string()]), [['put', 'one'], ['put', 'two'], ['put', 'three'], ['del', '']]);
    const hlcs = a.map((m) => Number(hdr(m, 'KV-HLC')));
    assert.ok(hlcs.every((h, i) => Number.isSafeInteger(h) && (i === 0 || h > hlcs[i - 1]!)), `increasing HLCs: ${hlcs.join(', ')}`);
    assert.ok(a.every((m) => ['f1', 'f2', 'f3'].includes(hdr(m, 'KV-Writer') ?? '')));
    const bare = msgs.find((m) => m.subject === 'kvchanges');
    assert.equal(hdr(bare!, 'KV-Key'), 'wire b');
    assert.equal(hdr(bare!, 'KV-Op'), 'put');
    assert.equal(bare!.string(), 'spaced');
  });

  it('change feed - the context in a put\'s event is the one a read returns, usable as KV-If-Match', async () => {
    const { msgs, subs } = record(nc, ['kvchanges.wire.ctx']);
    await nc.flush();
    assert.equal((await rawRequest(nc, 'kv.put.wire.ctx', 'v1')).code, 200);
    const event = await until('the event', () => msgs[0]);
    const read = await rawRequest(nc, 'kv.get.wire.ctx', '');
    assert.equal(hdr(event, 'KV-Context'), read.header('KV-Context'));
    // Conditional writes emit too; a refused one (409) emits nothing.
    assert.equal((await rawRequest(nc, 'kv.put.wire.ctx', 'v2', { 'KV-If-Match': hdr(event, 'KV-Context')! })).code, 200);
    assert.equal((await rawRequest(nc, 'kv.put.wire.ctx', 'v3', { 'KV-If-Match': hdr(event, 'KV-Context')! })).code, 409);
    assert.equal((await rawRequest(nc, 'kv.put.wire.ctx', 'v4', { 'KV-If-Absent': '1' })).code, 409);
    assert.equal((await rawRequest(nc, 'kv.put.wire.ctx', 'v5', { 'KV-W': '9' })).code, 400);
    assert.equal((await rawRequest(nc, 'kv.put.wire.ctx2', 'c', { 'KV-If-Absent': '1' })).code, 200);
    // A marker write after the refused ones: once its event is here, theirs would have been too.
    assert.equal((await rawRequest(nc, 'kv.put.wire.ctx', 'marker')).code, 200);
    await until('the marker', () => (msgs.some((m) => m.string() === 'marker') ? true : undefined));
    for (const s of subs) s.unsubscribe();
    assert.deepEqual(msgs.map((m) => m.string()), ['v1', 'v2', 'marker']);
  });

  it('change feed - events reach no node as a request (the service counts only the requests sent)', async () => {
    type Stats = { endpoints: { num_requests: number }[] };
    const requests = async () => ((await collect(nc, '$SRV.STATS.goddb')) as Stats[]).reduce((n, s) => n + s.endpoints.reduce((m, e) => m + e.num_requests, 0), 0);
    const before = await requests();
    for (let i = 0; i < 20; i++) assert.equal((await rawRequest(nc, `kv.put.count.${i}`, 'x')).code, 200);
    // 20 puts emit 20 events: were events requests, the count would grow by 40 or more. The SDK
    // client of this file polls kv.ring once a second meanwhile, which adds a request or two.
    const counted = (await requests()) - before;
    assert.ok(counted >= 20 && counted < 30, `the service counted ${counted} requests for 20 puts`);
  });

  it('change feed - the SDK watch filters by prefix and delivers each key\'s changes once, in HLC order', async () => {
    const w = await db.watch('sdk.');
    const other = await db.watch('sdk.b');
    await db.put('sdk.a', '1');
    await db.put('elsewhere', 'x');
    await db.put('sdk.b', '1');
    await db.put('sdk.a', '2');
    await db.put('sdk key', 'header-keyed, not under sdk.');
    await db.put('sdk. key', 'header-keyed, under sdk.');
    await db.del('sdk.a');
    const got = await take(w, 5);
    assert.deepEqual(got.map((e) => `${e.key} ${e.op} ${new TextDecoder().decode(e.value)}`), ['sdk.a put 1', 'sdk.b put 1', 'sdk.a put 2', 'sdk. key put header-keyed, under sdk.', 'sdk.a del ']);
    const a = got.filter((e) => e.key === 'sdk.a').map((e) => e.hlc);
    assert.ok(a[0]! < a[1]! && a[1]! < a[2]!);
    assert.deepEqual((await take(other, 1)).map((e) => e.key), ['sdk.b']);
    await w.stop();
    await other.stop();
    assert.equal((await w.next()).done, true);
  });

  it('change feed - a watcher sees every acknowledged write of a concurrent workload exactly once', async () => {
    const w = await db.watch('load.');
    const writers = 4;
    const perWriter = 25;
    const acked: string[] = [];
    await Promise.all(Array.from({ length: writers }, async (_, c) => {
      for (let i = 0; i < perWriter; i++) {
        const key = `load.${c}.${i % 5}`;
        if (i % 7 === 6) await db.del(key);
        else await db.put(key, `c${c}-${i}`);
        acked.push(`${key} ${i % 7 === 6 ? 'del' : 'put'} ${i % 7 === 6 ? '' : `c${c}-${i}`}`);
      }
    }));
    const seen = (await take(w, acked.length)).map((e) => `${e.key} ${e.op} ${new TextDecoder().decode(e.value)}`);
    await w.stop();
    assert.deepEqual([...seen].sort(), [...acked].sort());
    assert.equal(new Set(seen).size, seen.length);
  });

  it('change feed - the SDK watch drops a duplicate and an older event of a key', async () => {
    const w = await db.watch('dup.');
    await db.put('dup.k', 'new');
    const [first] = await take(w, 1);
    // Replay the event as a second publisher would (a duplicate), and an older one of the same key.
    const again = headers();
    for (const [k, v] of [['KV-Op', 'put'], ['KV-HLC', String(first!.hlc)], ['KV-Writer', first!.writer], ['KV-Context', first!.context]]) again.set(k!, v!);
    nc.publish('kvchanges.dup.k', 'new', { headers: again });
    const older = headers();
    for (const [k, v] of [['KV-Op', 'put'], ['KV-HLC', String(first!.hlc - 1)], ['KV-Writer', first!.writer], ['KV-Context', first!.context]]) older.set(k!, v!);
    nc.publish('kvchanges.dup.k', 'old', { headers: older });
    await db.put('dup.k', 'newer');
    const [next] = await take(w, 1);
    assert.equal(new TextDecoder().decode(next!.value), 'newer');
    await w.stop();
  });

  it('change feed - a JetStream stream capturing the feed lets a watch resume from a sequence', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'CHANGES', subjects: ['kvchanges', 'kvchanges.>'] });
    for (let i = 1; i <= 4; i++) await db.put('js.k', `v${i}`);
    await db.put('js.other', 'o');
    const stored = async () => (await jsm.streams.info('CHANGES')).state.messages;
    const deadline = Date.now() + waitMs;
    while ((await stored()) < 5 && Date.now() < deadline) await delay(20);
    assert.equal(await stored(), 5);
    const all = await db.watch('js.', { stream: 'CHANGES', fromSeq: 1 });
    const replayed = await take(all, 5);
    assert.deepEqual(replayed.map((e) => new TextDecoder().decode(e.value)), ['v1', 'v2', 'v3', 'v4', 'o']);
    assert.deepEqual(replayed.map((e) => e.seq), [1, 2, 3, 4, 5]);
    await all.stop();
    // Resume after the second event; then live events follow the replay.
    const resumed = await db.watch('js.k', { stream: 'CHANGES', fromSeq: replayed[1]!.seq! + 1 });
    await db.put('js.k', 'v5');
    assert.deepEqual((await take(resumed, 3)).map((e) => new TextDecoder().decode(e.value)), ['v3', 'v4', 'v5']);
    await resumed.stop();
    // includeHistory: the newest event of each key the stream holds.
    const history = await db.watch('js.', { stream: 'CHANGES', includeHistory: true });
    assert.deepEqual((await take(history, 2)).map((e) => `${e.key}=${new TextDecoder().decode(e.value)}`).sort(), ['js.k=v5', 'js.other=o']);
    await history.stop();
    await assert.rejects(db.watch('js.', { includeHistory: true }), /includeHistory needs a JetStream stream/);
  });

  it('change feed - goddb watch prints one line per event until Ctrl-C', async () => {
    const child = spawn(process.execPath, [cliPath, 'watch', 'cli.', '--servers', nats.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // The watcher subscribes before it prints anything: write until an event shows up.
      const deadline = Date.now() + waitMs;
      while (!out.includes('"first"') && Date.now() < deadline) {
        await db.put('cli.k', 'first');
        await delay(100);
      }
      await db.put('cli.k', new Uint8Array(300).fill(1));
      await db.del('cli.k');
      await until('three lines', () => (/cli\.k del/.test(out) ? true : undefined));
      child.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.match(out, /^cli\.k put \d+ f[123] "first"$/m);
      assert.match(out, /^cli\.k put \d+ f[123] <300 bytes>$/m);
      assert.match(out, /^cli\.k del \d+ f[123] -$/m);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
