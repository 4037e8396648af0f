/**
 * No acknowledged write is lost across crashes: three workers (N=3, W=2) on a
 * durable engine, a writer that records every acknowledged put, workers
 * killed with SIGKILL at random moments (one at a time, then all three at
 * once) and restarted; afterwards every key reads back (R=2) its last
 * acknowledged value, or the value of a put that failed after it (a failed
 * put may still have reached some replicas). Seeded; the seed is printed.
 * LMDB runs in both sync modes: in periodic mode a write is acknowledged
 * before any fsync, and a process crash must still lose none.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer, startRedisServer, type RedisServerHandle } from '../../src/devtools/servers.js';
import { seededRandom } from '../../src/transport/sim.js';
import { startWorker, startWorkers, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['d1', 'd2', 'd3'];
const redisConf = fileURLToPath(new URL('../../../deploy/redis/redis.conf', import.meta.url));

interface KeyModel {
  acked: string | undefined;
  maybe: Set<string>;
}

/** Writers, one per key subset so each key's puts are sequential; stops when told. */
interface Writers {
  /** Acknowledged puts so far. */
  acked(): number;
  stop(): Promise<number>;
}

/** Polls `done` until it holds; fails after `waitMs` with `what`. */
async function until(done: () => boolean, waitMs: number, what: string): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${waitMs}ms: ${what}`);
    await delay(20);
  }
}

function startWriters(db: GodDbClient, keys: string[], model: Map<string, KeyModel>, writers: number): Writers {
  let running = true;
  let seq = 0;
  let acked = 0;
  const loops = Array.from({ length: writers }, async (_, w) => {
    const mine = keys.filter((_k, i) => i % writers === w);
    while (running) {
      for (const key of mine) {
        if (!running) break;
        const value = `v${seq++}`;
        const m = model.get(key)!;
        m.maybe.add(value); // in doubt until acknowledged
        try {
          await db.put(key, value, { w: 2 });
          model.set(key, { acked: value, maybe: new Set() });
          acked++;
        } catch {
          await delay(20); // the cluster is down or degraded; keep trying without spinning
        }
      }
    }
  });
  return {
    acked: () => acked,
    async stop() {
      running = false;
      await Promise.all(loops);
      return acked;
    },
  };
}

async function crashScenario(engineArgs: (i: number, dataDir: string) => string[], restartStorage?: () => Promise<void>): Promise<void> {
  const seed = Number(process.env['GODDB_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`# crash test seed ${seed} (replay with GODDB_SEED=${seed})`);
  const random = seededRandom(seed);
  const nats = await startNatsServer();
  const dirs = ids.map((id) => tempDir(`crash-${id}`));
  const args = (i: number) => ['--node-id', ids[i]!, '--cluster', 'crash', '-peers', ids.join(','), '-discovery', nats.url, '-gossip', '200ms',
    '--failure-timeout', '1000', '--data-dir', dirs[i]!.path, ...engineArgs(i, dirs[i]!.path)];
  const workers: (Worker | undefined)[] = [];
  let db: GodDbClient | undefined;
  /** The writers, once started: the finally below stops them whatever failed. */
  let started: Writers | undefined;
  try {
    workers.push(...(await startWorkers(ids, (_id, i) => args(i).slice(2))));
    db = await connect({ servers: nats.url, timeoutMs: 3000 });
    const keys = Array.from({ length: 40 }, (_, i) => `crash.${i}`);
    const model = new Map<string, KeyModel>(keys.map((k) => [k, { acked: undefined, maybe: new Set() }]));
    const writers = (started = startWriters(db, keys, model, 4));
    // Every key has an acknowledged value before anything is killed, so no check below is vacuous.
    await until(() => [...model.values()].every((m) => m.acked !== undefined), 20_000, 'every key acknowledged once');

    for (let round = 0; round < 3; round++) {
      const i = Math.floor(random() * ids.length);
      await delay(100 + Math.floor(random() * 400));
      await workers[i]!.kill('SIGKILL');
      await delay(Math.floor(random() * 300));
      workers[i] = await startWorker(ids[i]!, args(i).slice(2));
    }
    await delay(100 + Math.floor(random() * 400));
    await Promise.all(workers.map((w) => w!.kill('SIGKILL')));
    if (restartStorage) await restartStorage();
    for (let i = 0; i < ids.length; i++) workers[i] = undefined;
    const restarted = await Promise.all(ids.map((id, i) => startWorker(id, args(i).slice(2))));
    restarted.forEach((w, i) => (workers[i] = w));
    const ackedBeforeRestart = writers.acked();
    await until(() => writers.acked() >= ackedBeforeRestart + 20, 20_000, 'writes acknowledged after the restart of all three');
    await writers.stop();

    let checked = 0;
    for (const [key, m] of model) {
      if (m.acked === undefined) continue;
      const got = await db.get(key, { r: 2 });
      const value = got?.text();
      assert.ok(value !== undefined && (value === m.acked || m.maybe.has(value)),
        `seed ${seed}: ${key} reads ${value ?? '(absent)'}, last acknowledged ${m.acked}`);
      checked++;
    }
    assert.equal(checked, keys.length, 'every key was checked');
  } finally {
    // Writers left running by a failure above would keep the process alive, retrying for ever.
    await started?.stop();
    await db?.close();
    await Promise.all(workers.map((w) => w?.kill('SIGKILL')));
    await nats.stop();
    for (const d of dirs) d.remove();
  }
}

describe('crash durability', () => {
  it('crash - lmdb: no acknowledged write is lost when nodes are killed one at a time and all at once', async () => {
    await crashScenario(() => ['--engine', 'lmdb']);
  });

  it('crash - lmdb with storage.sync periodic: no acknowledged write is lost to SIGKILL, with no fsync in the whole run (the OS holds every commit)', async () => {
    // A 10-minute interval: every worker is killed long before its first periodic fsync.
    await crashScenario(() => ['--engine', 'lmdb', '--sync', 'periodic', '--sync-interval', '10m']);
  });

  it('crash - redis with the shipped config: no acknowledged write is lost, even when every redis-server is killed too', async () => {
    const redises: RedisServerHandle[] = [];
    const redisDirs = ids.map((id) => tempDir(`crash-redis-${id}`));
    try {
      for (let i = 0; i < ids.length; i++) redises.push(await startRedisServer({ configFile: redisConf, dir: redisDirs[i]!.path }));
      await crashScenario(
        (i) => ['-redisport', String(redises[i]!.port)],
        async () => {
          for (const [i, r] of redises.entries()) {
            r.process.kill('SIGKILL');
            await r.stop();
            redises[i] = await startRedisServer({ configFile: redisConf, dir: redisDirs[i]!.path, port: r.port });
          }
        },
      );
    } finally {
      await Promise.all(redises.map((r) => r.stop()));
      for (const d of redisDirs) d.remove();
    }
  });
});
