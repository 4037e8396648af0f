/**
 * `goddb backup` and `goddb restore` with real workers (issue 13, item 6):
 * three lmdb workers take writes; node 3 is backed up while the writes go
 * on; it is stopped, its data directory restored from the backup, and
 * started again while writes go on. Within 30 s node 3 alone holds every key
 * written, asked through its replica subject (god.<cluster>.node.b3.get:
 * its own store, no coordinator, no other replica): the keys written after
 * the backup reach it through anti-entropy (and hints).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer } from '../../src/devtools/servers.js';
import { ReplicaClient } from '../../src/node/coordinator/replica_client.js';
import { connectNats } from '../../src/transport/nats.js';
import type { Transport } from '../../src/transport/transport.js';
import { cliPath, runScript, startWorker, startWorkers, tempDir, type Worker } from '../helpers/workers.js';
import { until } from '../helpers/until.js';

const ids = ['b1', 'b2', 'b3'];
const cluster = 'backup';
const natsConfig = (url: string) => ({ servers: [url], user: '', pass: '', token: '', credsFile: '', nkeySeedFile: '', tls: { enabled: false, caFile: '', certFile: '', keyFile: '' } });

/** Puts `w.<n>` = `v<n>` one after another until stopped; `written` holds every key acknowledged. */
function startWriter(db: GodDbClient, written: Map<string, string>) {
  let running = true;
  let n = written.size;
  const loop = (async () => {
    while (running) {
      const key = `w.${n}`;
      const value = `v${n}`;
      try {
        await db.put(key, value, { w: 2 });
        written.set(key, value);
        n++;
      } catch {
        await delay(20); // a node is stopping: try the same key again
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

const cli = (...args: string[]) => runScript(cliPath, args, '', 60_000);

describe('backup - goddb backup and restore', () => {
  it('backup - node 3 backed up while writes go on, restored, catches up: it alone holds every key written within 30 s', async () => {
    const nats = await startNatsServer();
    const dirs = ids.map((id) => tempDir(`backup-${id}`));
    const backups = tempDir('backup-copies');
    const args = (i: number) => ['--cluster', cluster, '-peers', ids.join(','), '-discovery', nats.url, '-gossip', '200ms', '--failure-timeout', '1000',
      '--anti-entropy-interval', '1s', '--data-dir', dirs[i]!.path, '--engine', 'lmdb'];
    const workers: (Worker | undefined)[] = [];
    let db: GodDbClient | undefined;
    let transport: Transport | undefined;
    let writer: { stop(): Promise<void> } | undefined;
    try {
      workers.push(...(await startWorkers(ids, (_id, i) => args(i))));
      db = await connect({ servers: nats.url, timeoutMs: 3000 });
      const written = new Map<string, string>();
      writer = startWriter(db, written);
      await until(() => written.size >= 200, 20_000, () => `200 keys written (${written.size})`);

      // Refusals first: a target that is not empty, a data directory that is not a node's.
      const busy = join(backups.path, 'busy');
      mkdirSync(busy);
      writeFileSync(join(busy, 'x'), 'x');
      const refused = await cli('backup', busy, '--data-dir', dirs[2]!.path);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /error 400: .* is not empty/);
      assert.equal((await cli('backup', join(backups.path, 'none'), '--data-dir', backups.path)).code, 1, 'no node identity: refused');

      const copy = join(backups.path, 'b3');
      const atBackup = written.size;
      const taken = await cli('backup', copy, '--data-dir', dirs[2]!.path);
      assert.equal(taken.code, 0, taken.stderr);
      const manifest = JSON.parse(taken.stdout) as { nodeId: string; cluster: string; stores: Record<string, number> };
      assert.equal(manifest.nodeId, 'b3');
      assert.equal(manifest.cluster, cluster);
      assert.ok((manifest.stores['data'] ?? 0) > 0, `the data store was copied (${JSON.stringify(manifest.stores)})`);
      for (const name of ['node.json', 'meta', 'lmdb', 'hints', 'paxos', 'backup.json']) assert.ok(existsSync(join(copy, name)), `the backup holds ${name}`);
      assert.ok(written.size > atBackup, 'writes went on while the backup ran');
      // The cluster still serves after the backup, and more keys land on node 3 that the backup lacks.
      const afterBackup = written.size;
      await until(() => written.size >= afterBackup + 100, 20_000, () => `100 more keys after the backup (${written.size - afterBackup})`);

      // A running worker's data directory is not restored over.
      const locked = await cli('restore', copy, '--data-dir', dirs[2]!.path);
      assert.equal(locked.code, 1, locked.stdout);
      assert.match(locked.stderr, /locked/);

      await workers[2]!.kill('SIGTERM');
      workers[2] = undefined;
      const atStop = written.size;
      const restored = await cli('restore', copy, '--data-dir', dirs[2]!.path);
      assert.equal(restored.code, 0, restored.stderr);
      assert.ok(existsSync(join(dirs[2]!.path, 'lmdb', 'data.mdb')), 'the data store is back in place');
      await until(() => written.size >= atStop + 100, 20_000, () => `100 keys written while node 3 is down (${written.size - atStop})`);

      workers[2] = await startWorker('b3', args(2));
      const started = Date.now();
      await until(() => written.size >= atStop + 200, 20_000, () => `writes go on once node 3 is back (${written.size - atStop})`);
      await writer.stop();
      writer = undefined;

      // Node 3 alone: its replica subject reads its own store.
      transport = await connectNats(natsConfig(nats.url), 'backup-test', { waitOnFirstConnect: false, onError: () => undefined });
      const replica = new ReplicaClient(transport, cluster, 2000);
      const missing = new Set(written.keys());
      const check = async () => {
        for (const key of [...missing]) {
          const versions = await replica.get('b3', key).catch(() => undefined);
          if (versions?.some((v) => !v.tombstone && Buffer.from(v.value).toString() === written.get(key))) missing.delete(key);
        }
        return missing.size === 0;
      };
      await until(check, 30_000 - (Date.now() - started), () => `node 3 holds every key written: ${missing.size} of ${written.size} missing (e.g. ${[...missing].slice(0, 5).join(', ')})`).catch(async (err: Error) => {
        // What anti-entropy did on each node, to tell a slow exchange from trees that agree while the stores differ.
        const aae = await Promise.all(workers.map(async (w) => (w ? (await (await fetch(`http://127.0.0.1:${w.httpPort}/metrics`)).text()).split('\n').filter((l) => l.startsWith('goddb_aae_')).join('; ') : 'stopped')));
        throw new Error(`${err.message}\n${aae.map((m, i) => `${ids[i]}: ${m}`).join('\n')}`);
      });
      console.log(`# ${written.size} keys (${afterBackup - atBackup} during the backup, ${atStop - afterBackup} after it before the stop); node 3 held all ${Date.now() - started}ms after its start`);

      const metrics = await (await fetch(`http://127.0.0.1:${workers[2]!.httpPort}/metrics`)).text();
      assert.match(metrics, /^goddb_storage_bytes\{namespace="data",node_id="b3"\} [1-9]/m, 'the restored node reports its store size');
    } finally {
      await writer?.stop();
      await transport?.close();
      await db?.close();
      await Promise.all(workers.map((w) => w?.kill('SIGKILL')));
      await nats.stop();
      for (const d of [...dirs, backups]) d.remove();
    }
  });
});
