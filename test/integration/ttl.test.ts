/**
 * Issue 12, item 1 (TTL) on real workers: `goddb put --ttl` and the SDK's
 * `put(key, value, { ttl })` write a key that reads, then reads as absent
 * once its time to live has passed (polled, bounded).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { startWireCluster, type WireCluster } from '../helpers/wire_cluster.js';
import { cliPath, runScript, type ScriptRun } from '../helpers/workers.js';

/** How long a key with a 1 s TTL may take to read as absent (the ttl, clock skew between local processes, slack). */
const expiryWaitMs = 10_000;

describe('ttl on real workers', () => {
  let cluster: WireCluster;
  let db: GodDbClient;
  const goddb = (args: string[]): Promise<ScriptRun> => runScript(cliPath, [...args, '--servers', cluster.nats.url], '', 30_000);

  before(async () => {
    cluster = await startWireCluster('ttl', ['t1', 't2', 't3'], 'memory');
    db = await connect({ servers: cluster.nats.url });
  });
  after(async () => {
    await db?.close();
    await cluster?.stop();
  });

  async function untilAbsent(get: () => Promise<boolean>): Promise<number> {
    const started = Date.now();
    while (await get()) {
      if (Date.now() - started > expiryWaitMs) assert.fail(`still live after ${expiryWaitMs} ms`);
      await delay(100);
    }
    return Date.now() - started;
  }

  it('ttl - goddb put --ttl 1 reads back, then goddb get answers 404 once a second has passed', async () => {
    const put = await goddb(['put', 'cli.ttl', 'soon-gone', '--ttl', '1']);
    assert.equal(put.code, 0, put.stderr);
    const got = await goddb(['get', 'cli.ttl']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, 'soon-gone');
    await untilAbsent(async () => (await goddb(['get', 'cli.ttl'])).code === 0);
    const gone = await goddb(['get', 'cli.ttl']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /404/);
  });

  it('ttl - goddb put refuses a --ttl that is not whole seconds, before sending anything', async () => {
    const run = await goddb(['put', 'cli.bad', 'v', '--ttl', '500ms']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--ttl must be whole seconds/);
    assert.equal(await db.get('cli.bad'), null);
  });

  it('ttl - the SDK put with { ttl: "1s" } expires; one without a ttl stays', async () => {
    await db.put('sdk.ttl', 'short', { ttl: '1s' });
    await db.put('sdk.keep', 'stays');
    assert.equal((await db.get('sdk.ttl'))?.text(), 'short');
    const waitedMs = await untilAbsent(async () => (await db.get('sdk.ttl')) !== null);
    assert.ok(waitedMs < expiryWaitMs);
    assert.equal((await db.get('sdk.keep'))?.text(), 'stays');
    await assert.rejects(db.put('sdk.bad', 'v', { ttl: 0 }), /ttl must be whole seconds/);
  });
});
