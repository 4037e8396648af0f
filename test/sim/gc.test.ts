/**
 * Issue 10 part 3 and issue 12: tombstones and expired TTL values are purged
 * by every replica once the grace period has passed and every replica holds
 * them alike, never earlier, so a purged delete cannot come back from a
 * stale replica (the resurrection case). Small grace period and sweep
 * interval; the sim clock moves time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeConfig } from '../../src/config/types.js';
import { limits } from '../../src/core/limits.js';
import { collapse } from '../../src/core/version.js';
import { decode, decodeRecord, encode, encodeRecord, Kind } from '../../src/protocol/codec.js';
import { ClientOp, Header, replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import { replyError } from '../../src/transport/transport.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];
const graceSeconds = 10;
const intervalMs = 1000;
const overrides: Partial<NodeConfig> = {
  gc: { graceSeconds, intervalMs, keysPerSecond: 1000 },
  // Below the grace period, as loadConfig demands.
  hints: { sloppyQuorum: true, windowMs: 1000, bytesMax: 1 << 20 },
};

/** What each node's engine holds for `key`, as its last-writer-wins winner: 'absent', 'tombstone' or the value. */
async function held(c: SimCluster, key: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const id of ids) {
    const record = await c.node(id).engine.get(key);
    const winner = record === undefined ? undefined : collapse(decodeRecord(record));
    out[id] = winner === undefined ? 'absent' : winner.tombstone ? 'tombstone' : Buffer.from(winner.value).toString('utf8');
  }
  return out;
}

/** Starts the cluster and waits until every node says no range moves (sweeps skip while one does). */
async function settledCluster(seed: number): Promise<SimCluster> {
  const c = new SimCluster(seed, ids, overrides);
  await c.start();
  for (let s = 0; s < 30 && !ids.every((id) => c.node(id).node.moves.settled); s++) await c.clock.advance(1000);
  assert.ok(ids.every((id) => c.node(id).node.moves.settled), `seed ${seed}: the cluster settles`);
  return c;
}

const everywhere = <T>(what: T): Record<string, T> => Object.fromEntries(ids.map((id) => [id, what]));

function purged(c: SimCluster, kind: 'tombstone' | 'expired'): Record<string, number> {
  return Object.fromEntries(ids.map((id) => [id, c.node(id).node.gc.purged[kind]]));
}

function skipped(c: SimCluster, reason: string): number {
  return ids.reduce((n, id) => n + (c.node(id).node.gc.skipped as Record<string, number>)[reason]!, 0);
}

async function codesThrough(c: SimCluster, key: string, nodes = ids): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const id of nodes) {
    const r = await c.requestVia(id, ClientOp.Get, key);
    out[id] = r.code === 200 ? `200 ${r.value}` : String(r.code);
  }
  return out;
}

describe('sim - tombstone gc', () => {
  it('gc - a delete is purged by every replica once the grace period has passed, and reads 404', async () => {
    const seed = simSeed();
    const c = await settledCluster(seed);
    assert.equal((await c.request(ClientOp.Put, 'gone', 'v')).code, 200);
    assert.equal((await c.request(ClientOp.Del, 'gone')).code, 200);
    await c.clock.advance(1000);
    assert.deepEqual(await held(c, 'gone'), everywhere('tombstone'), `seed ${seed}`);
    await c.clock.advance((graceSeconds - 3) * 1000);
    assert.deepEqual(await held(c, 'gone'), everywhere('tombstone'), `seed ${seed}: kept within the grace period`);
    await c.clock.advance(5 * intervalMs);
    assert.deepEqual(await held(c, 'gone'), everywhere('absent'), `seed ${seed}: purged on every replica`);
    assert.deepEqual(purged(c, 'tombstone'), everywhere(1), `seed ${seed}`);
    assert.deepEqual(await codesThrough(c, 'gone'), everywhere('404'));
    await c.stop();
  });

  it('gc - the resurrection case: a replica that missed the delete keeps it from being purged until it has the tombstone', async () => {
    const seed = simSeed();
    const c = await settledCluster(seed);
    const put = await c.requestVia('n1', ClientOp.Put, 'zombie', 'v', { [Header.W]: '3' });
    assert.equal(put.code, 200, put.message);
    await c.clock.advance(500);
    assert.deepEqual(await held(c, 'zombie'), everywhere('v'));

    c.bus.isolate('n3', ['n1', 'n2']);
    const del = await c.requestVia('n1', ClientOp.Del, 'zombie', '', { [Header.W]: '2' });
    assert.equal(del.code, 200, del.message);
    assert.deepEqual(await held(c, 'zombie'), { n1: 'tombstone', n2: 'tombstone', n3: 'v' });

    // Far past the grace period, n3 unreachable: nothing is purged, and no read answers v.
    for (let s = 0; s < 2 * graceSeconds; s++) {
      await c.clock.advance(1000);
      for (const [id, got] of Object.entries(await codesThrough(c, 'zombie', ['n1', 'n2']))) assert.notEqual(got, '200 v', `seed ${seed}: a read via ${id} at ${s} s`);
      assert.deepEqual(await held(c, 'zombie'), { n1: 'tombstone', n2: 'tombstone', n3: 'v' }, `seed ${seed}: nothing purged while n3 is cut off (${s} s)`);
    }
    assert.ok(skipped(c, 'down') + skipped(c, 'unreachable') > 0, `seed ${seed}: the sweeps saw the key and skipped it: ${JSON.stringify(ids.map((id) => [c.node(id).node.gc.skipped, c.node(id).node.gc.sweeps]))}`);

    // Healed, n3 still holds v: the sweeps see it differ and still purge nothing.
    c.bus.heal();
    const differsBefore = skipped(c, 'differs');
    await c.clock.advance(6 * intervalMs);
    assert.deepEqual(await held(c, 'zombie'), { n1: 'tombstone', n2: 'tombstone', n3: 'v' }, `seed ${seed}: nothing purged while n3 holds v`);
    assert.ok(skipped(c, 'differs') > differsBefore, `seed ${seed}: skipped because n3 differs`);
    assert.deepEqual(purged(c, 'tombstone'), everywhere(0));

    // A read at R=3 repairs n3; then the sweeps purge on all three.
    const read = await c.requestVia('n1', ClientOp.Get, 'zombie', '', { [Header.R]: '3' });
    assert.equal(read.code, 404, `seed ${seed}: ${read.code} ${read.value}`);
    await c.clock.advance(200);
    assert.deepEqual(await held(c, 'zombie'), everywhere('tombstone'), `seed ${seed}: read repair brought n3 the tombstone`);
    await c.clock.advance(5 * intervalMs);
    assert.deepEqual(await held(c, 'zombie'), everywhere('absent'), `seed ${seed}: purged on all three, no replica holds v`);
    assert.deepEqual(await codesThrough(c, 'zombie'), everywhere('404'));
    await c.stop();
  });

  it('gc - an expired TTL value is purged by every replica a grace period after its expiry', async () => {
    const seed = simSeed();
    const c = await settledCluster(seed);
    assert.equal((await c.request(ClientOp.Put, 'session', 'token', { [Header.Ttl]: '5' })).code, 200);
    await c.clock.advance(6000);
    assert.deepEqual(await codesThrough(c, 'session'), everywhere('404'), 'expired');
    assert.deepEqual(await held(c, 'session'), everywhere('token'), `seed ${seed}: kept for the grace period after expiry`);
    await c.clock.advance(graceSeconds * 1000 + 4 * intervalMs);
    assert.deepEqual(await held(c, 'session'), everywhere('absent'), `seed ${seed}: purged everywhere`);
    assert.deepEqual(purged(c, 'expired'), everywhere(1));
    await c.stop();
  });

  it('gc - a key rewritten after its delete is never purged, while a plain delete beside it is', async () => {
    const seed = simSeed();
    const c = await settledCluster(seed);
    for (const key of ['back', 'gone']) {
      assert.equal((await c.request(ClientOp.Put, key, 'v1')).code, 200);
      assert.equal((await c.request(ClientOp.Del, key)).code, 200);
    }
    assert.equal((await c.request(ClientOp.Put, 'back', 'v2')).code, 200);
    await c.clock.advance(3 * graceSeconds * 1000);
    assert.deepEqual(await held(c, 'back'), everywhere('v2'), `seed ${seed}`);
    assert.deepEqual(await held(c, 'gone'), everywhere('absent'), `seed ${seed}: the sweeps ran`);
    assert.deepEqual(await codesThrough(c, 'back'), everywhere('200 v2'));
    await c.stop();
  });

  it('gc - under message loss, purges that reach some replicas only are finished by later sweeps, and no read answers a deleted value', async () => {
    const seed = simSeed();
    const c = await settledCluster(seed);
    const keys = Array.from({ length: 20 }, (_, i) => `lossy.${i}`);
    for (const key of keys) {
      assert.equal((await c.requestVia('n1', ClientOp.Put, key, 'v', { [Header.W]: '3' })).code, 200);
      assert.equal((await c.requestVia('n1', ClientOp.Del, key, '', { [Header.W]: '3' })).code, 200);
    }
    c.bus.dropRate = 0.3;
    await c.clock.advance(graceSeconds * 1000);
    for (let s = 0; s < 30; s++) {
      await c.clock.advance(1000);
      const read = await c.requestVia(ids[s % 3]!, ClientOp.Get, keys[s % keys.length]!);
      assert.notEqual(read.code, 200, `seed ${seed}: a read under loss answered ${read.value}`);
    }
    const partial = (await Promise.all(keys.map((k) => held(c, k)))).filter((h) => new Set(Object.values(h)).size > 1).length;
    console.log(`# ${partial} keys purged on some replicas only when the loss stopped`);
    c.bus.dropRate = 0;
    const purgedEverywhere = async () => (await Promise.all(keys.map((k) => held(c, k)))).every((h) => Object.values(h).every((x) => x === 'absent'));
    for (let s = 0; s < 60 && !(await purgedEverywhere()); s++) await c.clock.advance(1000);
    for (const key of keys) {
      assert.deepEqual(await held(c, key), everywhere('absent'), `seed ${seed}: ${key} purged everywhere in the end`);
      for (const [id, got] of Object.entries(await codesThrough(c, key))) assert.equal(got, '404', `seed ${seed}: ${key} via ${id}`);
    }
    await c.stop();
  });

  it('gc - a purge is untrusted: a live key, a fresh tombstone or garbage sent to a replica\'s purge subject deletes nothing', async () => {
    const seed = simSeed();
    const c = await settledCluster(seed);
    assert.equal((await c.request(ClientOp.Put, 'live', 'v')).code, 200);
    assert.equal((await c.request(ClientOp.Put, 'fresh', 'v')).code, 200);
    assert.equal((await c.request(ClientOp.Del, 'fresh')).code, 200);
    await c.clock.advance(500);
    const peer = c.connectClient('forger');
    const subject = replicaSubject('sim', 'n2', ReplicaOp.Purge);
    const items = [{ key: 'live', versions: await c.node('n2').node.replica.get('live') }, { key: 'fresh', versions: await c.node('n2').node.replica.get('fresh') }];
    const reply = await c.clock.run(peer.transport.request(subject, encode({ kind: Kind.ReplicaPurge, items }), { timeoutMs: 2000 }));
    assert.deepEqual(decode(reply.data, Kind.ReplicaPurgeReply).results, [{ ok: true, removed: false }, { ok: true, removed: false }], `seed ${seed}`);
    const garbage = await c.clock.run(peer.transport.request(subject, new Uint8Array([1, 2, 3]), { timeoutMs: 2000 }));
    assert.equal(replyError(garbage)?.code, 400);
    assert.deepEqual(await held(c, 'live'), everywhere('v'));
    assert.deepEqual(await held(c, 'fresh'), everywhere('tombstone'));
    await c.stop();
  });

  it('gc - a sweep gives the event loop way after each page of keys, not after its whole budget', async () => {
    const seed = simSeed();
    const c = await settledCluster(seed);
    const { engine, node } = c.node('n1');
    // Live keys, none a candidate: more than a page of the scan, all within one sweep's budget.
    const keyCount = limits.rangeItemsMax + 300;
    assert.ok(node.gc.budget >= keyCount, `a sweep's budget (${node.gc.budget}) covers the ${keyCount} keys`);
    const value = { clock: { n1: 1 }, hlc: c.clock.nowMs() * 1000, writer: 'n1', tombstone: false, value: new TextEncoder().encode('v') };
    await engine.putMany(Array.from({ length: keyCount }, (_, i) => ({ key: `live.${i}`, record: encodeRecord([value]) })));
    let yielded = 0;
    const scan = engine.scanRange.bind(engine);
    engine.scanRange = async function* (range, opts) {
      for await (const entry of scan(range, opts)) {
        yielded++;
        yield entry;
      }
    };
    const sweeps = node.gc.sweeps;
    const sweep = node.gc.sweep();
    // Due at once: it runs at the sweep's first giving way, or after the whole sweep without one.
    let seenAt: number | undefined;
    c.clock.setTimer(0, () => (seenAt = yielded));
    await c.clock.run(sweep);
    assert.equal(node.gc.sweeps, sweeps + 1, `seed ${seed}: the sweep ran`);
    assert.ok(yielded >= keyCount, `seed ${seed}: it scanned every key (${yielded})`);
    assert.equal(seenAt, limits.rangeItemsMax, `seed ${seed}: a timer due at once ran after the first page, not after ${yielded} keys`);
    await c.stop();
  });
});
