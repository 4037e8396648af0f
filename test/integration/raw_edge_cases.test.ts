/**
 * Issue 14, item 5: the edges of the raw NATS contract, against three real
 * workers on a nats-server whose max_control_line is lowered to 1 KiB (so a
 * key of 1020 bytes, which a node accepts, is too long for a subject):
 * KV-Key-B64 carries any key exactly, a KV-Key that header parsing would
 * change is refused, every subject under kv. is answered, and the SDK and the
 * CLI put long keys in a header by themselves.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { collect, rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { headerBlock, WireClient } from '../helpers/nats_wire.js';
import { cliPath, runScript, startWorker, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['e1', 'e2', 'e3'];
const controlLineBytes = 1024;
const b64 = (key: string) => Buffer.from(key, 'utf8').toString('base64url');

describe('raw NATS edge cases against three workers', () => {
  const dir = tempDir('edges');
  let nats: NatsServerHandle;
  let workers: Worker[] = [];
  let nc: NatsConnection;
  let wire: WireClient;
  let db: GodDbClient;
  const goddb = (args: string[]) => runScript(cliPath, [...args, '--servers', nats.url], '', 30_000);

  before(async () => {
    const conf = join(dir.path, 'nats.conf');
    writeFileSync(conf, `max_control_line: ${controlLineBytes}\n`);
    nats = await startNatsServer({ configFile: conf });
    const args = ['--cluster', 'edges', '-peers', ids.join(','), '-discovery', nats.url, '--engine', 'memory', '-port', '0', '-gossip', '200ms'];
    workers = await Promise.all(ids.map((id) => startWorker(id, args)));
    nc = await rawConnect(nats.url);
    wire = await WireClient.connect(nats.port);
    db = await connect({ servers: nats.url });
  });

  after(async () => {
    await db?.close();
    wire?.close();
    await nc?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
    dir.remove();
  });

  it('edges - KV-Key-B64 carries a key with white space at the ends, CR and LF exactly', async () => {
    for (const [key, value] of [[' padded ', 'spaces'], ['line\r\nbreak', 'crlf'], ['\ttab', 'tab']] as const) {
      const put = await rawRequest(nc, 'kv.put', value, { 'KV-Key-B64': b64(key) });
      assert.equal(put.code, 200, put.message);
      assert.equal((await rawRequest(nc, 'kv.get', '', { 'KV-Key-B64': b64(key) })).value, value, JSON.stringify(key));
    }
    assert.equal((await rawRequest(nc, 'kv.get.padded')).code, 404, 'the trimmed key is another key');
    // The SDK and the CLI choose KV-Key-B64 for such keys by themselves.
    assert.equal((await db.get(' padded '))?.text(), 'spaces');
    await db.put('trail ', 'sdk');
    assert.equal((await rawRequest(nc, 'kv.get', '', { 'KV-Key-B64': b64('trail ') })).value, 'sdk');
    const cli = await goddb(['get', 'line\r\nbreak']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, 'crlf');
  });

  it('edges - a KV-Key that header parsing would trim is refused with 400, not stored under another key', async () => {
    for (const block of ['NATS/1.0\r\nKV-Key:  lead\r\n\r\n', 'NATS/1.0\r\nKV-Key: trail \r\n\r\n', 'NATS/1.0\r\nKV-Key: tab\t\r\n\r\n']) {
      const reply = await wire.request('kv.put', 'v', block);
      assert.equal(reply?.code, 400, JSON.stringify(block));
      assert.match(reply!.message, /KV-Key starts or ends with white space.*KV-Key-B64/);
    }
    assert.equal((await rawRequest(nc, 'kv.get.lead')).code, 404, 'nothing was stored');
    assert.equal((await wire.request('kv.put', 'v', 'NATS/1.0\r\nKV-Key:tight key\r\n\r\n'))?.code, 200, 'no blank after the colon is fine');
    assert.equal((await rawRequest(nc, 'kv.get', '', { 'KV-Key': 'tight key' })).value, 'v');
  });

  it('edges - a KV-Key-B64 that carries no valid key, or a key given twice, is 400', async () => {
    const cases: [string, Record<string, string>, RegExp][] = [
      ['kv.get', { 'KV-Key-B64': 'not base64!' }, /not base64url/],
      ['kv.get', { 'KV-Key-B64': Buffer.from([0xc3, 0x28]).toString('base64url') }, /valid UTF-8/],
      ['kv.get', { 'KV-Key-B64': b64('a'), 'KV-Key': 'a' }, /given twice/],
      ['kv.get.a', { 'KV-Key-B64': b64('a') }, /given twice/],
      ['kv.get', { 'KV-Key-B64': b64('k'.repeat(1025)) }, /over the maximum/],
    ];
    for (const [subject, headers, reason] of cases) {
      const reply = await wire.request(subject, '', headerBlock(headers));
      assert.equal(reply?.code, 400, `${subject} ${JSON.stringify(headers)}`);
      assert.match(reply!.message, reason);
    }
  });

  it('edges - every subject under kv. is answered: an unknown operation is 400, and $SRV still lists every node', async () => {
    for (const subject of ['kv.foo.x', 'kv.foo', 'kv.list.a.b', 'kv.GET.k']) {
      const reply = await wire.request(subject, '');
      assert.equal(reply?.code, 400, subject);
      assert.match(reply!.message, /unknown operation/);
    }
    const missing = await wire.request('kv.get', '');
    assert.equal(missing?.code, 400);
    assert.match(missing!.message, /the key is missing/);
    const infos = (await collect(nc, '$SRV.INFO.goddb', 10_000, ids.length)) as { metadata: Record<string, string>; endpoints: { name: string; subject: string }[] }[];
    assert.deepEqual(infos.map((i) => i.metadata['node_id']).sort(), ids);
    for (const info of infos) assert.deepEqual(info.endpoints.map((e) => [e.name, e.subject]), [['kv', 'kv.>']]);
  });

  it('edges - a subject with an empty token reaches no node: nats-server answers "no responders" itself', async () => {
    for (const subject of ['kv.get.', 'kv..x', 'kv.get.a..b']) assert.equal((await wire.request(subject, ''))?.code, 503, subject);
  });

  it('edges - a key too long for a subject travels in a header: the SDK and the CLI choose it, a raw subject loses the connection', async () => {
    const key = `long.${'k'.repeat(1015)}`;
    assert.equal(Buffer.byteLength(key), 1020);
    await db.put(key, 'by sdk');
    assert.equal((await db.get(key))?.text(), 'by sdk');
    assert.equal((await goddb(['put', key, 'by cli'])).code, 0);
    const got = await goddb(['get', key]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, 'by cli');
    // The same request with the key in the subject: nats-server closes the connection.
    const raw = await WireClient.connect(nats.port);
    const reply = await raw.request(`kv.get.${key}`, '', undefined, 2000);
    assert.equal(reply, undefined);
    assert.ok(raw.closed, 'the server closed the connection');
    assert.match(raw.errors.join(' '), /maximum control line exceeded/i);
    raw.close();
  });
});
