/**
 * A node whose store is lost while its data directory (identity, tokens,
 * state) is kept: three redis workers (N=3), each on its own redis-server
 * without persistence, anti-entropy off so that nothing but the refill can
 * bring data back. Node 3's redis-server is restarted empty under the running
 * worker: the worker refuses to serve from it (no empty answers for keys it
 * acknowledged; an R=3 read fails rather than miss). Node 3 is then
 * restarted: it finds its store empty though it was whole, pulls its ranges
 * from the other replicas, and alone holds every key again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer, startRedisServer, type RedisServerHandle } from '../../src/devtools/servers.js';
import { ReplicaClient } from '../../src/node/coordinator/replica_client.js';
import { connectNats } from '../../src/transport/nats.js';
import type { Transport } from '../../src/transport/transport.js';
import { startWorker, startWorkers, tempDir, type Worker } from '../helpers/workers.js';
import { until } from '../helpers/until.js';

const ids = ['l1', 'l2', 'l3'];
const cluster = 'lost';
const natsConfig = (url: string) => ({ servers: [url], user: '', pass: '', token: '', credsFile: '', nkeySeedFile: '', tls: { enabled: false, caFile: '', certFile: '', keyFile: '' } });

describe('store lost', () => {
  it('store lost - a redis restarted empty under a worker is refused, and the restarted worker refills every key before it counts toward quorums', async () => {
    const nats = await startNatsServer();
    const dirs = ids.map((id) => tempDir(`lost-${id}`));
    const redises: RedisServerHandle[] = [];
    const workers: (Worker | undefined)[] = [];
    let db: GodDbClient | undefined;
    let transport: Transport | undefined;
    try {
      for (let i = 0; i < ids.length; i++) redises.push(await startRedisServer());
      const args = (i: number) => ['--cluster', cluster, '-peers', ids.join(','), '-discovery', nats.url, '-gossip', '200ms', '--failure-timeout', '1000',
        '--anti-entropy-enabled', 'false', '--data-dir', dirs[i]!.path, '-redisport', String(redises[i]!.port)];
      workers.push(...(await startWorkers(ids, (_id, i) => args(i))));
      db = await connect({ servers: nats.url, timeoutMs: 3000 });
      const keys = Array.from({ length: 60 }, (_, i) => `lost.${i}`);
      for (const key of keys) await db.put(key, `v-${key}`, { w: 3 });
      transport = await connectNats(natsConfig(nats.url), 'lost-test', { waitOnFirstConnect: false, onError: () => undefined });
      const replica = new ReplicaClient(transport, cluster, 2000);

      // Node 3's redis-server comes back empty under its running worker.
      const port = redises[2]!.port;
      await redises[2]!.stop();
      redises[2] = await startRedisServer({ port });
      let refusal = '';
      await until(async () => {
        const answer = await replica.get('l3', keys[0]!).then((versions) => ({ versions }), (err: Error) => ({ err }));
        if ('versions' in answer) {
          // Before the reconnection it may still answer from... nothing: it must never answer "absent".
          assert.notEqual(answer.versions.length, 0, 'node 3 answered "absent" for a key it acknowledged');
          return false;
        }
        refusal = answer.err.message;
        return /lost this node's data/.test(refusal);
      }, 15_000, () => `node 3 refuses to serve from the emptied redis (last answer: ${refusal})`);
      await assert.rejects(db.get(keys[1]!, { r: 3 }), 'an R=3 read cannot count node 3: it fails rather than miss the key');
      assert.equal((await db.get(keys[1]!, { r: 2 }))?.text(), `v-${keys[1]}`, 'R=2 reads from the two others');

      // Restarted: its store is empty though its metadata says it was whole. It refills, anti-entropy off.
      await workers[2]!.kill('SIGKILL');
      workers[2] = await startWorker('l3', args(2));
      const started = Date.now();
      const missing = new Set(keys);
      await until(async () => {
        for (const key of [...missing]) {
          const versions = await replica.get('l3', key).catch(() => undefined);
          if (versions?.some((v) => Buffer.from(v.value).toString() === `v-${key}`)) missing.delete(key);
        }
        return missing.size === 0;
      }, 30_000, () => `node 3 alone holds every key again: ${missing.size} of ${keys.length} missing; its log:\n${workers[2]!.logs.filter((l) => /"level":(40|50|60)/.test(l)).slice(-15).join('\n')}`);
      console.log(`# node 3 refilled ${keys.length} keys within ${Date.now() - started} ms of its restart (anti-entropy off)`);
      assert.ok(workers[2]!.logs.some((l) => l.includes('partly refilled store')), 'node 3 said it refills');
    } finally {
      await transport?.close();
      await db?.close();
      await Promise.all(workers.map((w) => w?.kill('SIGKILL')));
      await Promise.all(redises.map((r) => r.stop()));
      await nats.stop();
      for (const d of dirs) d.remove();
    }
  });
});
