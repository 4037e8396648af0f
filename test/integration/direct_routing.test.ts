/**
 * Issue 12 item 6 on real workers: the SDK's 'direct' routing sends each
 * request to the first live replica of its key, by the ring the nodes
 * publish on `kv.ring` (client/ring_router.ts). Four workers, N=3, R=W=2,
 * so one node in four is not a replica of a given key: each node's request
 * counts ($SRV.STATS) show that every put landed on the key's first
 * replica, where 'any' routing hands a node keys it does not hold. Then a
 * fifth joins (the SDK learns the new ring: its placement equals the nodes'
 * `kv.owners`, and puts land on the new first replicas), and a node is
 * killed (requests still succeed, at once).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer } from '../../src/devtools/servers.js';
import { decodeRingMap } from '../../src/protocol/ring_map.js';
import { rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const cluster = 'direct';
const initial = ['d1', 'd2', 'd3', 'd4'];
const keys = Array.from({ length: 60 }, (_, i) => `dr.${i}`);

async function until(what: string, done: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs}ms: ${what}`);
    await delay(100);
  }
}

/** Puts answered 200 by each node so far. */
async function putsByNode(db: GodDbClient): Promise<Map<string, number>> {
  return new Map((await db.nodes({ waitMs: 300 })).map((n) => [n.nodeId, n.requests['put']?.['200'] ?? 0]));
}

function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...after].map(([id, n]) => [id, n - (before.get(id) ?? 0)]).filter(([, n]) => n !== 0));
}

function tally(ids: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of ids) out[id] = (out[id] ?? 0) + 1;
  return out;
}

/** True when the SDK's replicas of every key are the ones the nodes' coordinator reports. */
async function agreesWithNodes(db: GodDbClient, sample: readonly string[]): Promise<boolean> {
  for (const key of sample) {
    const nodes = (await db.owners(key)).replicas.map((r) => r.node);
    if (JSON.stringify(nodes) !== JSON.stringify(db.replicasOf(key))) return false;
  }
  return true;
}

describe('direct routing on real workers', () => {
  it('direct - every request lands on a replica of its key; a joining node is learnt; a killed node is routed around', { timeout: 120_000 }, async () => {
    const nats = await startNatsServer();
    const dirs = new Map([...initial, 'd5'].map((id) => [id, tempDir(`${cluster}-${id}`)]));
    const workers = new Map<string, Worker>();
    const args = (id: string, list: string[]) => [
      '--cluster', cluster, '-discovery', nats.url, '--engine', 'memory', '--data-dir', dirs.get(id)!.path, '-port', '0',
      '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '200ms', '--failure-timeout', '1000', '--ring-delay', '500', ...list,
    ];
    let db: GodDbClient | undefined;
    let any: GodDbClient | undefined;
    let nc: NatsConnection | undefined;
    try {
      await Promise.all(initial.map(async (id) => workers.set(id, await startWorker(id, args(id, ['-peers', initial.join(',')])))));
      db = await connect({ servers: nats.url, timeoutMs: 5_000, routeProbeMs: 300, ringPollMs: 300 });
      any = await connect({ servers: nats.url, timeoutMs: 5_000, routing: 'any', routeProbeMs: 300 });
      await until('the SDK holds the ring and sees every node', () => db!.replicasOf('x').length === 3 && db!.liveNodes().length === 4 && any!.liveNodes().length === 4);
      assert.ok(await agreesWithNodes(db, keys), 'the SDK places keys as the nodes do');

      // The wire, through a plain NATS client: kv.ring, the short answer for a fingerprint held, KV-Ring on a stale request.
      nc = await rawConnect(nats.url);
      const full = decodeRingMap((await nc.request('kv.ring', new Uint8Array(0), { timeout: 5_000 })).data);
      assert.ok(!('error' in full) && full.withTokens && full.replication === 3, 'error' in full ? full.error : 'the ring with its tokens');
      assert.deepEqual(full.members.map((m) => [m.id, m.up, m.tokens?.length]).sort(), initial.map((id) => [id, true, 10]));
      const held = natsHeaders();
      held.set('KV-Ring', full.fingerprint);
      const short = decodeRingMap((await nc.request('kv.ring', new Uint8Array(0), { timeout: 5_000, headers: held })).data);
      assert.ok(!('error' in short) && !short.withTokens && short.fingerprint === full.fingerprint && short.members.length === 4);
      assert.equal((await rawRequest(nc, 'kv.ring', 'x')).code, 400, 'a payload is refused');
      const stale = await rawRequest(nc, 'kv.put.wire.1', 'v', { 'KV-Ring': '0123456789abcdef' });
      assert.equal(stale.code, 200, 'a request routed by a stale ring is served');
      assert.equal(stale.header('KV-Ring'), full.fingerprint, 'and the reply names the ring the node serves');
      assert.equal((await rawRequest(nc, 'kv.put.wire.1', 'v', { 'KV-Ring': full.fingerprint })).header('KV-Ring'), undefined);
      assert.equal(db.replicasOf('x').length, 3);

      // Direct: each node coordinates exactly the puts of the keys it is the first replica of.
      let before = await putsByNode(db);
      for (const key of keys) await db.put(key, `v-${key}`);
      assert.deepEqual(delta(before, await putsByNode(db)), tally(keys.map((k) => db!.replicasOf(k)[0]!)));

      // The keys d4 does not hold: direct never sends them to it, 'any' (round robin over four nodes) does.
      const notOnD4 = keys.filter((k) => !db!.replicasOf(k).includes('d4'));
      assert.ok(notOnD4.length >= 8, `${notOnD4.length} keys without a copy on d4`);
      before = await putsByNode(db);
      for (const key of notOnD4) await db.put(key, `w-${key}`);
      assert.equal(delta(before, await putsByNode(db))['d4'], undefined, 'direct: d4 coordinated none of them');
      before = await putsByNode(db);
      for (const key of notOnD4) await any.put(key, `w-${key}`);
      assert.ok((delta(before, await putsByNode(db))['d4'] ?? 0) > 0, "'any': d4 coordinated some of them, one hop more each");

      // A fifth joins: the SDK learns the ring the nodes serve (d5 among the replicas of some keys).
      workers.set('d5', await startWorker('d5', args('d5', ['--seeds', 'd2,d3,d4'])));
      await until('the SDK places d5', () => keys.some((k) => db!.replicasOf(k).includes('d5')), 40_000);
      await until('the SDK places keys as the nodes do', () => agreesWithNodes(db!, keys.slice(0, 20)), 20_000);
      await until('the SDK sees d5 live', () => db!.liveNodes().includes('d5'));
      before = await putsByNode(db);
      for (const key of keys) await db.put(key, `y-${key}`);
      assert.deepEqual(delta(before, await putsByNode(db)), tally(keys.map((k) => db!.replicasOf(k)[0]!)), 'each put on the first replica by the new ring');

      // Kill the first replica of many keys: every request still succeeds, at once (the next replica takes it).
      workers.get('d1')!.process.kill('SIGKILL');
      await workers.get('d1')!.exited;
      for (const key of keys) {
        await db.put(key, `x-${key}`);
        assert.equal((await db.get(key))?.text(), `x-${key}`, key);
      }
    } finally {
      await db?.close();
      await any?.close();
      await nc?.close();
      await Promise.all([...workers.values()].map((w) => w.kill('SIGKILL')));
      await nats.stop();
      for (const d of dirs.values()) d.remove();
    }
  });
});
