/**
 * Workers and clients on a NATS server that requires a user and password and
 * has a small max_payload: credentials are honoured, and the value maximum
 * is lowered to fit the server's max_payload (413 above it, before storing).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, TooLargeError, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['o1', 'o2', 'o3'];
const maxPayload = 64 * 1024;

describe('nats server options', () => {
  const dir = tempDir('nats-options');
  let nats: NatsServerHandle;
  let workers: Worker[] = [];
  let db: GodDbClient;

  before(async () => {
    const conf = join(dir.path, 'nats.conf');
    writeFileSync(conf, `max_payload: ${maxPayload}\nauthorization { user: goddb, password: s3cret }\n`);
    nats = await startNatsServer({ configFile: conf });
    workers = await Promise.all(ids.map((id) => startWorker(id, [
      '--cluster', 'opts', '-peers', ids.join(','), '-discovery', nats.url, '--engine', 'memory', '--nats-user', 'goddb', '--nats-pass', 's3cret',
    ])));
    db = await connect({ servers: nats.url, user: 'goddb', pass: 's3cret' });
  });

  after(async () => {
    await db?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
    dir.remove();
  });

  it('nats - workers and the SDK authenticate with a user and password', async () => {
    await db.put('auth', 'ok');
    assert.equal((await db.get('auth'))?.text(), 'ok');
    await assert.rejects(connect({ servers: nats.url, user: 'goddb', pass: 'wrong', timeoutMs: 2000 }));
  });

  it('nats - the value maximum is lowered to fit max_payload, with a warning, and 413 above it', async () => {
    assert.ok(workers[0]!.logs.some((l) => l.includes('valueBytesMax lowered')), 'the worker warned');
    const fits = new Uint8Array(maxPayload - 8 * 1024);
    await db.put('fits', fits);
    assert.equal((await db.get('fits'))?.value.length, fits.length);
    const err = await db.put('too.big', new Uint8Array(maxPayload - 8 * 1024 + 1)).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TooLargeError, String(err));
    assert.equal(await db.get('too.big'), null);
  });
});
