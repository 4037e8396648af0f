/**
 * Issue 9, elasticity with real processes: three workers on LMDB (N=3,
 * R=W=2) hold 5,000 keys; a fourth joins; once `goddb status --json` says
 * settled, every key reads back correctly from each of its owners alone
 * (a ReplicaGet on the owner's own node subject), and a sample reads with
 * `KV-R: 1` through the client API while the key's other owners are
 * SIGSTOPped. Then `goddb leave` takes out one of the original three (its
 * process exits 0), a fifth joins (with N=3 a removal must leave three
 * members: a node refuses a move that would leave fewer), and `goddb remove`
 * replaces a SIGKILLed one; the same check after each step, and at the end
 * every key reads with R=2 through the client API. Figures go to the log
 * as `# ...` lines: time to settle, keys moved.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect, type ClusterStatus, type GodDbClient, type OwnersReport } from '../../src/client/index.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { decode, encode, Kind } from '../../src/protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import { rawConnect, rawRequest, type RawReply } from '../helpers/nats_raw.js';
import { cliPath, runScript, startWorker, tempDir, type Worker } from '../helpers/workers.js';

const cluster = 'elastic';
const initial = ['n1', 'n2', 'n3'];
const keyTotal = 5000;
const valueBytes = 100;
/** Requests in flight at once, for writes, owners look-ups and reads. */
const concurrency = 64;
/** Keys per ReplicaGet batch (100 B values: far below max_payload). */
const replicaBatchKeys = 250;
/** Keys read with KV-R: 1 while their other owners are paused. */
const pausedSampleKeys = 100;
const settleTimeoutMs = 40_000;

const keys = Array.from({ length: keyTotal }, (_, i) => `el.${i}`);
/** Distinct 100-byte values: the key's index first, then filler that differs with it. */
const valueOf = (i: number) => `value-${i}-`.padEnd(valueBytes, String.fromCharCode(97 + (i % 26)));
const expected = new Map(keys.map((k, i) => [k, valueOf(i)]));

/** Runs `task` over `items`, at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

interface Harness {
  nats: NatsServerHandle;
  nc: NatsConnection;
  db: GodDbClient;
  workers: Map<string, Worker>;
}

/** `goddb <args> --servers <url>` (the compiled CLI), to its end. */
function goddb(h: Harness, args: string[], timeoutMs = 30_000) {
  return runScript(cliPath, [...args, '--servers', h.nats.url], '', timeoutMs);
}

async function status(h: Harness): Promise<ClusterStatus> {
  const run = await goddb(h, ['status', '--json']);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as ClusterStatus;
}

/** Polls `goddb status --json` until `done` holds; the last status, or a failure naming `what` and what was seen. */
async function statusUntil(h: Harness, what: string, done: (s: ClusterStatus) => boolean, timeoutMs = settleTimeoutMs): Promise<ClusterStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await status(h);
    if (done(s)) return s;
    if (Date.now() > deadline) {
      const seen = s.members.map((m) => `${m.id} ${m.state}/${m.status} moving ${JSON.stringify(m.moving)}`).join('; ');
      assert.fail(`not within ${timeoutMs}ms: ${what} (settled ${s.settled}: ${seen})`);
    }
    await delay(100);
  }
}

/** Settled, and every member of `live` is up (state and liveness) as every node that answers sees it. */
function settledWith(live: readonly string[]): (s: ClusterStatus) => boolean {
  return (s) => s.settled === true && live.every((id) => {
    const m = s.members.find((x) => x.id === id);
    return m !== undefined && m.state === 'up' && m.status === 'up' && m.answered;
  });
}

/** Keys each live worker has pulled since it started (its /metrics goddb_handoff_keys_sent_total: moves count on the pulling side). */
async function keysPulled(h: Harness): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [id, w] of h.workers) {
    if (w.process.exitCode !== null || w.process.signalCode !== null) continue;
    const text = await (await fetch(`http://127.0.0.1:${w.httpPort}/metrics`)).text();
    const m = /^goddb_handoff_keys_sent_total(?:\{[^}]*\})? (\d+)$/m.exec(text);
    assert.ok(m, `${id}: no goddb_handoff_keys_sent_total in /metrics`);
    out.set(id, Number(m[1]));
  }
  return out;
}

/** Per node: keys gained between two placements, and keys pulled between two metric reads; a gained key can only have come by a pull. */
function movedFigures(nodes: readonly string[], before: Map<string, string[]>, after: Map<string, string[]>, pulledBefore: Map<string, number>, pulledAfter: Map<string, number>): string {
  return nodes.map((id) => {
    const g = gained(before, after, id).length;
    const p = pulledAfter.get(id)! - (pulledBefore.get(id) ?? 0);
    assert.ok(p >= g, `${id} gained ${g} keys but pulled ${p}`);
    return `${id} gained ${g}, pulled ${p}`;
  }).join('; ');
}

/** Every key's preference list, from `kv.owners.<key>` (what the coordinators use); none may have pending owners or a down replica. */
async function ownersOfAll(h: Harness, live: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  await pool(keys, concurrency, async (key) => {
    const reply = await rawRequest(h.nc, `kv.owners.${key}`);
    assert.equal(reply.code, 200, `${key}: ${reply.message}`);
    const r = JSON.parse(reply.value) as OwnersReport;
    assert.deepEqual(r.pending, [], `${key} has pending owners as ${r.node} sees it`);
    assert.equal(r.replicas.length, 3, `${key}: ${JSON.stringify(r.replicas)}`);
    for (const p of r.replicas) assert.ok(live.includes(p.node) && p.up, `${key}: replica ${p.node} (up ${p.up}) as ${r.node} sees it; live: ${live.join(',')}`);
    out.set(key, r.replicas.map((p) => p.node));
  });
  return out;
}

/** What `node` holds of `batch`, read from its own replica subject (no coordinator, no other replica). */
async function replicaRead(h: Harness, node: string, batch: readonly string[]): Promise<Map<string, string[]>> {
  const m = await h.nc.request(replicaSubject(cluster, node, ReplicaOp.Get), encode({ kind: Kind.ReplicaGet, keys: [...batch] }), { timeout: 5000 });
  const reply = decode(m.data, Kind.ReplicaGetReply);
  assert.equal(reply.results.length, batch.length);
  const out = new Map<string, string[]>();
  reply.results.forEach((r, i) => {
    assert.ok(r.ok, `${node} ${batch[i]}: ${r.ok ? '' : `${r.code} ${r.error}`}`);
    out.set(batch[i]!, r.versions.filter((v) => !v.tombstone).map((v) => Buffer.from(v.value).toString('utf8')));
  });
  return out;
}

/**
 * Every key reads back its value from each of its owners alone: one
 * ReplicaGet per batch on the owner's node subject. Returns how many keys
 * each node was checked for.
 */
async function everyOwnerHolds(h: Harness, owners: Map<string, string[]>): Promise<Map<string, number>> {
  const byNode = new Map<string, string[]>();
  for (const [key, list] of owners) for (const n of list) byNode.set(n, [...(byNode.get(n) ?? []), key]);
  const jobs = [...byNode].flatMap(([node, ks]) => chunks(ks, replicaBatchKeys).map((batch) => ({ node, batch })));
  const missing: string[] = [];
  await pool(jobs, 8, async ({ node, batch }) => {
    const held = await replicaRead(h, node, batch);
    for (const key of batch) {
      const values = held.get(key)!;
      if (values.length !== 1 || values[0] !== expected.get(key)) missing.push(`${key}@${node}: ${JSON.stringify(values.map((v) => v.slice(0, 16)))}`);
    }
  });
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} key copies missing or wrong on their owners`);
  return new Map([...byNode].map(([n, ks]) => [n, ks.length]));
}

/**
 * A client read with KV-R: 1; a request that lands on a paused node's queue
 * subscription times out (the client's own timeout) and is sent again. Any
 * answer, a 504 included, is final: the live node reads its own copy.
 */
async function readOne(h: Harness, key: string): Promise<string> {
  const tries: string[] = [];
  for (let attempt = 0; attempt < 30; attempt++) {
    const sentMs = Date.now();
    let r: RawReply;
    try {
      r = await rawRequest(h.nc, `kv.get.${key}`, '', { 'KV-R': '1' }, 400);
    } catch (err) {
      if ((err as Error).name !== 'TimeoutError' && !/^timeout$/i.test((err as Error).message)) throw err;
      tries.push(`timeout@${Date.now() - sentMs}ms`);
      continue;
    }
    assert.equal(r.code, 200, `${key}: ${r.code} ${r.message} (after ${tries.length} timeouts)`);
    return r.value;
  }
  assert.fail(`${key}: no live node answered in 30 attempts: ${tries.join(' ')}`);
}

/**
 * Up to `pausedSampleKeys` keys owned by `node` whose other owners are the
 * same pair: that pair is SIGSTOPped, the keys read with KV-R: 1 through
 * the client API (the only owner that can answer is `node`), then resumed.
 */
async function readWithOthersPaused(h: Harness, node: string, keysOf: readonly string[], owners: Map<string, string[]>): Promise<string> {
  const groups = new Map<string, string[]>();
  for (const key of keysOf) {
    const others = owners.get(key)!.filter((n) => n !== node).sort().join(',');
    groups.set(others, [...(groups.get(others) ?? []), key]);
  }
  const [pair, group] = [...groups].sort((a, b) => b[1].length - a[1].length)[0]!;
  const paused = pair.split(',').map((id) => h.workers.get(id)!);
  const sample = group.slice(0, pausedSampleKeys);
  for (const w of paused) w.process.kill('SIGSTOP');
  try {
    const wrong: string[] = [];
    await pool(sample, 16, async (key) => {
      const value = await readOne(h, key);
      if (value !== expected.get(key)) wrong.push(key);
    }).catch((err: Error) => {
      // What the one live owner was doing (its log's tail), for a read that failed.
      err.message += `\n${node}'s last log lines:\n${h.workers.get(node)!.logs.slice(-30).join('').slice(-6000)}`;
      throw err;
    });
    assert.deepEqual(wrong, [], `read with KV-R: 1 from ${node} while ${pair} were paused`);
  } finally {
    for (const w of paused) w.process.kill('SIGCONT');
  }
  return `${sample.length} keys read with KV-R: 1 while ${pair} were paused`;
}

function countOwned(owners: Map<string, string[]>, node: string): string[] {
  return [...owners].filter(([, list]) => list.includes(node)).map(([k]) => k);
}

/** Keys `node` owns now and did not before. */
function gained(before: Map<string, string[]>, after: Map<string, string[]>, node: string): string[] {
  return [...after].filter(([k, list]) => list.includes(node) && !before.get(k)!.includes(node)).map(([k]) => k);
}

/** The count each live member reports of the keys it holds equals what it owns (the old owners deleted what they gave away). */
async function keysMatchOwnership(h: Harness, owners: Map<string, string[]>, live: readonly string[]): Promise<void> {
  const want = Object.fromEntries(live.map((id) => [id, countOwned(owners, id).length]));
  // Nodes count at most once a second.
  await statusUntil(h, `keys held = keys owned: ${JSON.stringify(want)}`, (s) => live.every((id) => s.members.find((m) => m.id === id)?.keys === want[id]), 15_000);
}

describe('elastic cluster with real processes', () => {
  it('elastic - lmdb: a joining, a leaving and a removed member each leave every key whole on each of its owners', { timeout: 240_000 }, async () => {
    const startedMs = Date.now();
    const nats = await startNatsServer();
    const dirs = new Map(['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => [id, tempDir(`${cluster}-${id}`)]));
    const h: Harness = { nats, nc: undefined as unknown as NatsConnection, db: undefined as unknown as GodDbClient, workers: new Map() };
    const args = (id: string, list: string[]) => [
      '--cluster', cluster, '-discovery', nats.url, '--engine', 'lmdb', '--data-dir', dirs.get(id)!.path, '-port', '0',
      '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '200ms', '--failure-timeout', '1000',
      '--ring-delay', '500', '--log-level', 'info', ...list,
    ];
    const start = async (id: string, list: string[]) => {
      const w = await startWorker(id, args(id, list));
      h.workers.set(id, w);
      return w;
    };
    try {
      await Promise.all(initial.map((id) => start(id, ['-peers', initial.join(',')])));
      h.nc = await rawConnect(nats.url);
      h.db = await connect({ servers: nats.url, timeoutMs: 5000 });
      await statusUntil(h, 'the initial three up', settledWith(initial));

      let t0 = Date.now();
      await pool(keys, concurrency, async (key) => {
        await h.db.put(key, expected.get(key)!, { w: 2 });
      });
      console.log(`# ${keyTotal} keys of ${valueBytes} B written (W=2) in ${seconds(Date.now() - t0)}`);
      const owners0 = await ownersOfAll(h, initial);
      assert.equal(owners0.size, keyTotal);
      let pulled = await keysPulled(h);

      // A fourth joins: it is not in the seed list, so it takes tokens of its own and pulls what it gains.
      t0 = Date.now();
      await start('n4', ['--seeds', initial.join(',')]);
      const afterJoin = ['n1', 'n2', 'n3', 'n4'];
      await statusUntil(h, 'n4 up and every node settled', settledWith(afterJoin));
      const owners1 = await ownersOfAll(h, afterJoin);
      const n4Keys = countOwned(owners1, 'n4');
      let pulledNow = await keysPulled(h);
      console.log(`# join n4: settled in ${seconds(Date.now() - t0)} (from its start); ${movedFigures(afterJoin, owners0, owners1, pulled, pulledNow)}`);
      pulled = pulledNow;
      assert.ok(n4Keys.length > keyTotal / 2, `n4 owns ${n4Keys.length} keys`);
      let checked = await everyOwnerHolds(h, owners1);
      assert.equal(checked.get('n4'), n4Keys.length);
      console.log(`# join n4: every owner holds each of its keys (${JSON.stringify(Object.fromEntries(checked))}); ${await readWithOthersPaused(h, 'n4', n4Keys, owners1)}`);
      await statusUntil(h, 'everyone up again after the pause', settledWith(afterJoin));
      await keysMatchOwnership(h, owners1, afterJoin);

      // n1 leaves: the CLI waits until it is left; its process then exits 0.
      t0 = Date.now();
      const leave = await goddb(h, ['leave', 'n1', '--timeout', '60s'], 70_000);
      assert.equal(leave.code, 0, leave.stderr);
      assert.equal(leave.stdout, 'n1 left\n');
      const leftCode = await Promise.race([h.workers.get('n1')!.exited, delay(15_000).then(() => 'still running')]);
      assert.equal(leftCode, 0, `n1's process: ${h.workers.get('n1')!.logs.slice(-5).join('\n')}`);
      const afterLeave = ['n2', 'n3', 'n4'];
      await statusUntil(h, 'n1 left and every node settled', (x) => settledWith(afterLeave)(x) && x.members.find((m) => m.id === 'n1')?.state === 'left');
      const owners2 = await ownersOfAll(h, afterLeave);
      pulledNow = await keysPulled(h);
      console.log(`# leave n1: done and settled in ${seconds(Date.now() - t0)}; ${movedFigures(afterLeave, owners1, owners2, pulled, pulledNow)}`);
      pulled = pulledNow;
      checked = await everyOwnerHolds(h, owners2);
      const gainer = [...afterLeave].sort((a, b) => gained(owners1, owners2, b).length - gained(owners1, owners2, a).length)[0]!;
      console.log(`# leave n1: every owner holds each of its keys (${JSON.stringify(Object.fromEntries(checked))}); ${await readWithOthersPaused(h, gainer, gained(owners1, owners2, gainer), owners2)}`);
      await statusUntil(h, 'everyone up again after the pause', settledWith(afterLeave));
      await keysMatchOwnership(h, owners2, afterLeave);

      // A fifth joins, so that a removal leaves N=3 members.
      t0 = Date.now();
      await start('n5', ['--seeds', 'n2,n3,n4']);
      const withN5 = ['n2', 'n3', 'n4', 'n5'];
      await statusUntil(h, 'n5 up and every node settled', settledWith(withN5));
      const owners3 = await ownersOfAll(h, withN5);
      pulledNow = await keysPulled(h);
      console.log(`# join n5: settled in ${seconds(Date.now() - t0)}; ${movedFigures(withN5, owners2, owners3, pulled, pulledNow)}`);
      pulled = pulledNow;
      checked = await everyOwnerHolds(h, owners3);
      console.log(`# join n5: every owner holds each of its keys (${JSON.stringify(Object.fromEntries(checked))}); ${await readWithOthersPaused(h, 'n5', countOwned(owners3, 'n5'), owners3)}`);
      await statusUntil(h, 'everyone up again after the pause', settledWith(withN5));
      await keysMatchOwnership(h, owners3, withN5);

      // n2 is killed; once the others see it down, goddb remove streams its ranges from the survivors.
      await h.workers.get('n2')!.kill('SIGKILL');
      t0 = Date.now();
      await statusUntil(h, 'n2 seen down by every node', (x) => x.members.find((m) => m.id === 'n2')?.status === 'down', 15_000);
      console.log(`# kill n2: seen down in ${seconds(Date.now() - t0)}`);
      t0 = Date.now();
      const remove = await goddb(h, ['remove', 'n2', '--timeout', '60s'], 70_000);
      assert.equal(remove.code, 0, remove.stderr);
      assert.equal(remove.stdout, 'n2 removed, every node settled\n');
      const afterRemove = ['n3', 'n4', 'n5'];
      await statusUntil(h, 'n2 removed and every node settled', (x) => settledWith(afterRemove)(x) && x.members.find((m) => m.id === 'n2')?.state === 'removed');
      const owners4 = await ownersOfAll(h, afterRemove);
      pulledNow = await keysPulled(h);
      console.log(`# remove n2: done and settled in ${seconds(Date.now() - t0)}; ${movedFigures(afterRemove, owners3, owners4, pulled, pulledNow)}`);
      checked = await everyOwnerHolds(h, owners4);
      const heir = [...afterRemove].sort((a, b) => gained(owners3, owners4, b).length - gained(owners3, owners4, a).length)[0]!;
      console.log(`# remove n2: every owner holds each of its keys (${JSON.stringify(Object.fromEntries(checked))}); ${await readWithOthersPaused(h, heir, gained(owners3, owners4, heir), owners4)}`);
      await statusUntil(h, 'everyone up again after the pause', settledWith(afterRemove));

      t0 = Date.now();
      const wrong: string[] = [];
      await pool(keys, concurrency, async (key) => {
        const got = await h.db.get(key, { r: 2 });
        if (got?.text() !== expected.get(key)) wrong.push(key);
      });
      assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} keys read wrong with R=2`);
      console.log(`# all ${keyTotal} keys read with R=2 in ${seconds(Date.now() - t0)}`);
      await keysMatchOwnership(h, owners4, afterRemove);
      console.log(`# elastic test: ${seconds(Date.now() - startedMs)} in all`);
    } finally {
      for (const w of h.workers.values()) if (w.process.exitCode === null && w.process.signalCode === null) w.process.kill('SIGCONT');
      await h.db?.close().catch(() => undefined);
      await h.nc?.close().catch(() => undefined);
      await Promise.all([...h.workers.values()].map((w) => w.kill('SIGKILL')));
      await nats.stop();
      for (const d of dirs.values()) d.remove();
    }
  });
});
