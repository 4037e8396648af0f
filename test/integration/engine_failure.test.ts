/**
 * A node whose storage fails keeps serving: its replicas answer with a
 * storage error (507), the coordinators count them as failed replicas and
 * still meet W=2 with the other two; when Redis is back the node serves again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, QuorumNotMetError, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer, startRedisServer, type NatsServerHandle, type RedisServerHandle } from '../../src/devtools/servers.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['e1', 'e2', 'e3'];

describe('engine failure', () => {
  let nats: NatsServerHandle;
  const redises: RedisServerHandle[] = [];
  const dirs = ids.map((id) => tempDir(`engine-${id}`));
  let workers: Worker[] = [];
  let db: GodDbClient;

  before(async () => {
    nats = await startNatsServer();
    for (const d of dirs) redises.push(await startRedisServer({ dir: d.path, appendonly: true }));
    workers = await Promise.all(ids.map((id, i) => startWorker(id, [
      '--cluster', 'enginefail', '-peers', ids.join(','), '-discovery', nats.url, '-redisport', String(redises[i]!.port), '--data-dir', dirs[i]!.path,
    ])));
    db = await connect({ servers: nats.url });
  });

  after(async () => {
    await db?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await Promise.all(redises.map((r) => r.stop()));
    await nats?.stop();
    for (const d of dirs) d.remove();
  });

  it('engine - with one node\'s redis-server stopped, W=2 is met and W=3 fails with a storage error; the node recovers', async () => {
    for (let i = 0; i < 20; i++) await db.put(`e.${i}`, 'before', { w: 3 });
    const port = redises[1]!.port;
    await redises[1]!.stop();

    const load = await Promise.all(Array.from({ length: 60 }, (_, i) => db.put(`e.${i % 20}`, `during-${i}`, { w: 2 }).then(() => 'ok', (e: Error) => e.message)));
    assert.deepEqual(load.filter((r) => r !== 'ok'), [], 'every W=2 put succeeds, whichever node coordinates');
    for (let i = 0; i < 20; i++) assert.ok((await db.get(`e.${i}`, { r: 2 }))?.text().startsWith('during-'));

    const err = await db.put('e.0', 'all', { w: 3 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof QuorumNotMetError, String(err));
    assert.match((err as Error).message, /[0-2] of 3 replicas answered ok, 1 failed.*replica e2: .*redis/i);
    assert.ok(workers[1]!.process.exitCode === null, 'the node with the failed engine is still running');

    redises[1] = await startRedisServer({ dir: dirs[1]!.path, port, appendonly: true });
    const deadline = Date.now() + 10_000;
    let recovered = false;
    while (!recovered && Date.now() < deadline) {
      recovered = await db.put('e.0', 'after', { w: 3 }).then(() => true, () => false);
    }
    assert.ok(recovered, 'W=3 succeeds again once redis is back (within 10 s)');
  });
});
