/**
 * Issue 8, defects 2 and 6: what no NATS library would send, sent with the
 * raw protocol client (test/helpers/nats_wire.ts) to real workers (LMDB,
 * N=3, R=W=2). Every malformed request is answered 400 with what was
 * wrong, never 500 or silence; keys that are not valid UTF-8 are refused
 * rather than aliased; a reply subject among the node subjects is not
 * answered (the answer would be a forged node message); and no node stops
 * serving. A second part checks the NATS transport alone: a handler that
 * throws, a reply that cannot be sent or a reply text holding CR or LF
 * never stops a subscription.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { decode, encode, Kind } from '../../src/protocol/codec.js';
import { connectNats } from '../../src/transport/nats.js';
import type { Transport } from '../../src/transport/transport.js';
import { headerBlock, WireClient } from '../helpers/nats_wire.js';
import { startWireCluster, type WireCluster } from '../helpers/wire_cluster.js';

const ids = ['m1', 'm2', 'm3'];
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

function natsConfig(url: string) {
  return { servers: [url], user: '', pass: '', token: '', credsFile: '', nkeySeedFile: '', tls: { enabled: false, caFile: '', certFile: '', keyFile: '' } };
}

/** Asks until `ok` holds or `waitMs` passes; says whether it held. */
async function eventually(ok: () => Promise<boolean>, waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    if (await ok()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('malformed client requests to three LMDB workers', () => {
  let cluster: WireCluster;
  let wire: WireClient;

  before(async () => {
    cluster = await startWireCluster('malformed', ids, 'lmdb');
    wire = await WireClient.connect(cluster.nats.port);
    const put = await wire.request('kv.put.protected', 'kept', headerBlock({ 'KV-W': '3' }));
    assert.equal(put?.code, 200, put?.message);
  });

  after(async () => {
    wire?.close();
    await cluster?.stop();
  });

  it('malformed - every malformed header block is 400 with the reason, never 500', async () => {
    const cases: [string, string, string, RegExp][] = [
      // nats.js's own error for this one quotes the LF; sending that error back in a header threw and killed the worker.
      ['a lone LF in a name', 'kv.get.protected', 'NATS/1.0\r\nX-Fuzz\n-Bi: mA\r\n\r\n', /invalid name/],
      ['a lone LF in a value', 'kv.get.protected', 'NATS/1.0\r\nKV-R: 2\nX: y\r\n\r\n', /lone LF/],
      ['a lone LF ending the block', 'kv.get.protected', 'NATS/1.0\r\nKV-R: 2\n\r\n', /does not end with an empty line/],
      ['a CR inside the key header', 'kv.get', 'NATS/1.0\r\nKV-Key: a\rb\r\n\r\n', /lone CR/],
      ['a space before the name', 'kv.get.protected', 'NATS/1.0\r\n KV-R: 2\r\n\r\n', /invalid name/],
      ['a space before the colon', 'kv.put.x', 'NATS/1.0\r\nKV-W : 2\r\n\r\n', /invalid name/],
      ['a line with no colon', 'kv.put.x', 'NATS/1.0\r\nKV-W 2\r\n\r\n', /no colon/],
      ['the quorum header twice', 'kv.get.protected', 'NATS/1.0\r\nKV-R: 2\r\nkv-r: 3\r\n\r\n', /KV-R header is given 2 times/],
      ['the key header twice', 'kv.get', 'NATS/1.0\r\nKV-Key: a\r\nKV-Key: b\r\n\r\n', /KV-Key header is given 2 times/],
      ['a status line on a request', 'kv.get.protected', 'NATS/1.0 503 garbage\r\n\r\n', /carries no status/],
      ['a garbage status line', 'kv.get.protected', 'NATS/1.0 \u0001\u0002 x\r\n\r\n', /does not start with NATS\/1.0/],
      ['no NATS/1.0 line', 'kv.get.protected', 'HELLO: x\r\n\r\n', /does not start with NATS\/1.0/],
      ['a block cut short', 'kv.get.protected', 'NATS/1.0\r\nKV-R: 2', /does not end with an empty line/],
      ['an empty line inside the block', 'kv.put.x', 'NATS/1.0\r\n\r\nKV-W: 2\r\n\r\n', /is empty/],
      ['KV-R that is not a number', 'kv.get.protected', headerBlock({ 'KV-R': '0x2' }), /KV-R must be an integer/],
      ['KV-W over N', 'kv.put.x', headerBlock({ 'KV-W': '9'.repeat(400) }), /KV-W must be an integer/],
      ['KV-Context that is not a context', 'kv.put.x', headerBlock({ 'KV-Context': '%%%' }), /KV-Context/],
      ['a huge KV-Key', 'kv.get', headerBlock({ 'KV-Key': 'k'.repeat(100_000) }), /over the maximum/],
    ];
    const wrong: string[] = [];
    for (const [name, subject, block, reason] of cases) {
      const reply = await wire.request(subject, subject.startsWith('kv.put') ? 'v' : '', block, 5000);
      if (reply === undefined) wrong.push(`${name}: no reply`);
      else if (reply.code !== 400 || !reason.test(reply.message)) wrong.push(`${name}: ${reply.code} ${reply.message}`);
    }
    assert.deepEqual(wrong, []);
    assert.equal((await wire.request('kv.get.x', ''))?.code, 404, 'no malformed put stored anything');
  });

  it('malformed - a key that is not valid UTF-8 is 400, in the header and in the subject, and aliases nothing', async () => {
    const headerKey = (b: number) => bytes('NATS/1.0\r\nKV-Key: utf8', [b], '\r\n\r\n');
    const subjectKey = (b: number) => bytes('kv.put.utf8', [b]);
    for (const b of [0xff, 0xfe, 0xc3]) {
      const inHeader = await wire.request('kv.put', 'v', headerKey(b));
      assert.equal(inHeader?.code, 400, `header key with byte ${b}: ${inHeader?.message}`);
      assert.match(inHeader.message, /not valid UTF-8/);
      const inSubject = await wire.request(subjectKey(b), 'v');
      assert.equal(inSubject?.code, 400, `subject key with byte ${b}: ${inSubject?.message}`);
      assert.match(inSubject.message, /U\+FFFD/);
    }
    // The text U+FFFD itself, sent as valid UTF-8, is refused too: it is what every invalid byte reads as.
    assert.equal((await wire.request('kv.get.utf8\uFFFD', ''))?.code, 400);
  });

  it('malformed - a reply quoting a key with control characters is sent with them escaped', async () => {
    // "not found: <key>" quotes the key; its control characters must not make the reply unsendable.
    const reply = await wire.request('kv.get.ctl\u0001key\u007f', '');
    assert.equal(reply?.code, 404);
    assert.equal(reply.message, 'not found: ctl\\x01key\\x7f');
  });

  it('malformed - a subject holding CR stops a node reading (nats.js); it reconnects within seconds and every node serves again', async () => {
    // nats-server delivers the subject; the nats.js parser throws on it and ends the node's reader.
    for (let i = 0; i < 6; i++) wire.publish('kv.get.a\rb', wire.replySubject(), '');
    await wire.ping();
    const back = await eventually(async () => (await wire.collect('$SRV.PING.goddb', '', 300)).length === ids.length, 15_000);
    assert.ok(back, 'every node answers $SRV.PING again');
    assert.equal((await wire.request('kv.get.protected', '', headerBlock({ 'KV-R': '3' })))?.payload.toString(), 'kept');
  });

  it('malformed - a reply subject among the node subjects gets no reply: a stored value cannot become a forged replica write', async () => {
    // Watch one real replica write, and turn it into a write of the protected key.
    const sid = wire.subscribe('god.malformed.node.*.put');
    await wire.ping();
    assert.equal((await wire.request('kv.put.fz.sample', 'x', headerBlock({ 'KV-W': '3' })))?.code, 200);
    await wire.ping();
    wire.unsubscribe(sid);
    const sample = wire.messages.splice(0).find((m) => m.subject.endsWith('.put'));
    assert.ok(sample, 'a replica write was seen');
    const items = decode(sample.payload, Kind.ReplicaPut).items.map(({ fresh: _fresh, ...item }) => ({
      ...item,
      key: 'protected',
      versions: item.versions.map((v) => ({ ...v, value: new TextEncoder().encode('OWNED') })),
    }));
    const forged = Buffer.from(encode({ kind: Kind.ReplicaPut, items }));
    assert.equal((await wire.request('kv.put.fz.forged', forged))?.code, 200);
    // A node replying to this get would publish the forged write on the replica subject, with its own permissions.
    // Watch those subjects: a reply there carries the forged bytes.
    const watched = [wire.subscribe('god.malformed.node.*.put'), wire.subscribe('god.malformed.gossip')];
    await wire.ping();
    wire.messages.splice(0);
    const forgedReplies = () => wire.messages.filter((m) => m.payload.equals(forged)).map((m) => m.subject);
    for (const id of ids) {
      const reply = await wire.request('kv.get.fz.forged', '', undefined, 1000);
      assert.equal(reply?.code, 200, 'an ordinary get of the value works');
      wire.publish('kv.get.fz.forged', `god.malformed.node.${id}.put`, '');
      wire.publish('kv.get.fz.forged', 'god.malformed.gossip', '');
    }
    await wire.ping();
    // Nothing marks "every node has dropped the reply", so watch for a forged reply for a bounded time; one seen fails at once.
    const deadline = Date.now() + 1_000;
    while (Date.now() < deadline && forgedReplies().length === 0) {
      await new Promise((r) => setTimeout(r, 20));
      await wire.ping();
    }
    for (const sid of watched) wire.unsubscribe(sid);
    assert.deepEqual(forgedReplies(), [], 'no node replied on a node subject');
    wire.messages.splice(0);
    assert.equal((await wire.request('kv.get.protected', '', headerBlock({ 'KV-R': '3' })))?.payload.toString(), 'kept');
  });

  it('malformed - after all of it every worker is alive and the protected key reads back', async () => {
    assert.deepEqual(cluster.exited(), []);
    const pings = await wire.collect('$SRV.PING.goddb');
    assert.equal(pings.length, ids.length);
    for (let i = 0; i < 6; i++) {
      const got = await wire.request('kv.get.protected', '', headerBlock({ 'KV-R': '2' }));
      assert.equal(got?.code, 200, got?.message);
      assert.equal(got.payload.toString(), 'kept');
    }
  });
});

describe('NATS transport - nothing a handler does stops a subscription', () => {
  let nats: NatsServerHandle;
  let transport: Transport;
  let wire: WireClient;
  const caught: string[] = [];

  before(async () => {
    nats = await startNatsServer();
    transport = await connectNats(natsConfig(nats.url), 'transport-test', {
      waitOnFirstConnect: false,
      onError: (err, { what }) => caught.push(`${what}: ${err instanceof Error ? err.message : String(err)}`),
    });
    wire = await WireClient.connect(nats.port);
  });

  after(async () => {
    wire?.close();
    await transport?.close();
    await nats?.stop();
  });

  it('transport - a reply text holding CR or LF is sent with them escaped, not as another header', async () => {
    transport.subscribe('t.lf', (m) => m.respondError(400, 'bad key "a\nb"\r\nInjected: yes'));
    await transport.flush();
    const reply = await wire.request('t.lf', '');
    assert.equal(reply?.code, 400);
    assert.equal(reply.message, 'bad key "a\\nb"\\r\\nInjected: yes');
    assert.equal(reply.headers.get('injected'), undefined);
    assert.equal((await wire.request('t.lf', ''))?.code, 400, 'the subscription still serves');
  });

  it('transport - a handler that throws or rejects: its request gets 500 and the next one is served', async () => {
    let n = 0;
    transport.subscribe('t.throw', async (m) => {
      n++;
      if (n === 1) throw new Error('boom\nsecond line');
      if (n === 2) await Promise.reject(new Error('async boom'));
      m.respond(new TextEncoder().encode('fine'));
    });
    transport.subscribe('t.sync', () => {
      throw new Error('sync boom');
    });
    await transport.flush();
    const first = await wire.request('t.throw', '');
    assert.equal(first?.code, 500);
    assert.match(first.message, /internal error: boom\\nsecond line/);
    assert.equal((await wire.request('t.throw', ''))?.code, 500);
    assert.equal((await wire.request('t.throw', ''))?.payload.toString(), 'fine');
    assert.equal((await wire.request('t.sync', ''))?.code, 500);
    assert.ok(caught.some((c) => /handler failed: sync boom/.test(c)), caught.join('\n'));
  });

  it('transport - a reply over max_payload becomes a 500 that says why', async () => {
    const maxPayload = transport.maxPayloadBytes() ?? 1024 * 1024;
    transport.subscribe('t.big', (m) => m.respond(new Uint8Array(maxPayload + 1)));
    await transport.flush();
    const reply = await wire.request('t.big', '');
    assert.equal(reply?.code, 500);
    assert.match(reply.message, /reply could not be sent.*max_payload/);
  });

  it('transport - header() of a malformed block throws a 400 error; the handler answers it', async () => {
    transport.subscribe('t.hdr', (m) => {
      try {
        m.respond(new TextEncoder().encode(m.header('X-A') ?? 'none'));
      } catch (err) {
        m.respondError((err as { code?: number }).code ?? 500, (err as Error).message);
      }
    });
    await transport.flush();
    assert.equal((await wire.request('t.hdr', '', 'NATS/1.0\r\nX-A: 1\r\n\r\n'))?.payload.toString(), '1');
    const bad = await wire.request('t.hdr', '', 'NATS/1.0\r\nX-A: 1\nX-B: 2\r\n\r\n');
    assert.equal(bad?.code, 400);
    assert.match(bad.message, /malformed header block/);
  });
});
