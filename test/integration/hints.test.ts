/**
 * Issue 10, hinted handoff with real processes: four LMDB workers (N=3),
 * one owner of a key SIGKILLed, a put at W=2 succeeds, `goddb status --json`
 * lists the hint waiting for it, the owner restarts, the hint is delivered
 * and then gone, and the owner alone (a ReplicaGet on its node subject)
 * holds the value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect, type ClusterStatus, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer } from '../../src/devtools/servers.js';
import { decode, encode, Kind } from '../../src/protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import { rawConnect } from '../helpers/nats_raw.js';
import { cliPath, runScript, startWorker, startWorkers, tempDir, type Worker } from '../helpers/workers.js';

const cluster = 'hints';
const ids = ['h1', 'h2', 'h3', 'h4'];

async function status(url: string): Promise<ClusterStatus> {
  const run = await runScript(cliPath, ['status', '--json', '--servers', url], '', 30_000);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as ClusterStatus;
}

async function until<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs}ms: ${what}: ${JSON.stringify(v)}`);
    await delay(200);
  }
}

/** The values `node` holds for `key`, read from its own replica subject. */
async function heldBy(nc: NatsConnection, node: string, key: string): Promise<string[]> {
  const m = await nc.request(replicaSubject(cluster, node, ReplicaOp.Get), encode({ kind: Kind.ReplicaGet, keys: [key] }), { timeout: 5000 });
  const [r] = decode(m.data, Kind.ReplicaGetReply).results;
  assert.ok(r?.ok, `${node} ${key}: ${JSON.stringify(r)}`);
  return r.versions.filter((v) => !v.tombstone).map((v) => Buffer.from(v.value).toString('utf8'));
}

describe('hinted handoff with real processes', () => {
  it('hints - one owner killed: a put at W=2 succeeds, goddb status lists the hint, the owner restarts and gets it, then the hint is gone', async () => {
    const nats = await startNatsServer();
    const dirs = ids.map((id) => tempDir(`hints-${id}`));
    const args = (i: number) => ['--cluster', cluster, '-peers', ids.join(','), '-discovery', nats.url, '-gossip', '200ms', '--failure-timeout', '1000', '--engine', 'lmdb', '--data-dir', dirs[i]!.path, '--port', '0'];
    const workers: (Worker | undefined)[] = [];
    let db: GodDbClient | undefined;
    let nc: NatsConnection | undefined;
    try {
      workers.push(...(await startWorkers(ids, (_id, i) => args(i))));
      db = await connect({ servers: nats.url, timeoutMs: 5000 });
      nc = await rawConnect(nats.url);
      await until('every member up', () => status(nats.url), (s) => s.members.length === 4 && s.members.every((m) => m.status === 'up'));
      const key = 'hinted.1';
      const owners = (await db.owners(key)).replicas.map((r) => r.node);
      const victim = owners[2]!;
      const v = ids.indexOf(victim);
      await workers[v]!.kill('SIGKILL');
      await until(`${victim} down everywhere`, () => status(nats.url), (s) => s.members.find((m) => m.id === victim)?.status === 'down');

      await db.put(key, 'while-down', { w: 2 });
      const listed = await until('the hint listed by goddb status', () => status(nats.url), (s) => s.members.find((m) => m.id === victim)?.hints === 1);
      assert.ok(listed.members.filter((m) => m.id !== victim).every((m) => m.hints === 0), 'hints are for the down member only');

      workers[v] = await startWorker(victim, args(v));
      await until('the hint delivered and gone', () => status(nats.url), (s) => s.members.find((m) => m.id === victim)?.hints === 0 && s.members.every((m) => m.status === 'up'));
      assert.deepEqual(await heldBy(nc, victim, key), ['while-down'], `${victim} alone holds the value`);
    } finally {
      await db?.close();
      await nc?.close();
      await Promise.all(workers.map((w) => w?.kill('SIGKILL')));
      await nats.stop();
      for (const d of dirs) d.remove();
    }
  });
});
