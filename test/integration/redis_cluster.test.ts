/**
 * A cluster on the Redis engine: each worker keeps its replicas in its own
 * redis-server, given by the seed's -redisport flag.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { Redis } from 'ioredis';
import { startNatsServer, startRedisServer, type NatsServerHandle, type RedisServerHandle } from '../../src/devtools/servers.js';
import { rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['r1', 'r2', 'r3'];

describe('cluster on the redis engine', () => {
  let nats: NatsServerHandle;
  const redises: RedisServerHandle[] = [];
  let workers: Worker[] = [];
  let nc: NatsConnection;
  // Each worker's own data directory (its identity and metadata), removed after: never ./data.
  const dirs = ids.map((id) => tempDir(`redis-cluster-${id}`));

  before(async () => {
    nats = await startNatsServer();
    for (let i = 0; i < ids.length; i++) redises.push(await startRedisServer());
    workers = await Promise.all(ids.map((id, i) => startWorker(id, [
      '--cluster', 'redistest', '-peers', ids.join(','), '-discovery', nats.url, '-redisport', String(redises[i]!.port), '-port', '0', '--data-dir', dirs[i]!.path,
    ])));
    nc = await rawConnect(nats.url);
  });

  after(async () => {
    await nc?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await Promise.all(redises.map((r) => r.stop()));
    await nats?.stop();
    for (const d of dirs) d.remove();
  });

  it('each node keeps its replicas in its own redis-server', async () => {
    for (let i = 0; i < 20; i++) {
      const put = await rawRequest(nc, `kv.put.redis.${i}`, `value-${i}`, { 'KV-W': '3' });
      assert.equal(put.code, 200, put.message);
    }
    for (const [i, r] of redises.entries()) {
      const client = new Redis({ host: '127.0.0.1', port: r.port, lazyConnect: true });
      await client.connect();
      try {
        // Beside the records, one sorted set orders them by key hash (storage/redis.ts).
        const all = (await client.keys('*')).sort();
        const keys = all.filter((k) => !k.startsWith('hash-index:') && !k.startsWith('store-mark:'));
        assert.equal(all.filter((k) => k.startsWith('hash-index:')).length, 1, `redis of ${ids[i]} holds one hash index`);
        assert.ok(all.includes('store-mark:god:r:'), `redis of ${ids[i]} holds the data store's marker`);
        assert.equal(keys.length, 20, `redis of ${ids[i]} holds one record per key`);
        assert.ok(keys.every((k) => k.includes('redis.')), `records are keyed by the key: ${keys[0]}`);
      } finally {
        client.disconnect();
      }
    }
    assert.equal((await rawRequest(nc, 'kv.get.redis.7')).value, 'value-7');
  });
});
