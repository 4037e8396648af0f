/**
 * Issue 10's chaos test with real processes: five LMDB workers (N=3,
 * R=W=2), writers doing put-then-read cycles through the SDK over a few
 * hundred keys, and a seeded nemesis that, one node at a time, SIGKILLs
 * and restarts it, pauses it (SIGSTOP, then SIGCONT), or kills it, wipes
 * its data directory and restarts it with the same id, healing it and
 * leaving a short healthy gap before the next fault. At the end:
 *
 * - at least 99.9% of the operations succeeded (at most one node was ever
 *   impaired), leaving out the ones that were in flight when the nemesis
 *   killed a node and failed: a request at a coordinator killed under it
 *   can only time out (its outcome unknown, which the history checker
 *   allows), at most one per writer per kill, and on a slow or busy machine
 *   those few decided the percentage;
 * - within 30 s of the last heal, every owner of every key written, read
 *   alone on its replica subject, holds the same version set;
 * - the history checker (test/helpers/history.ts) finds no lost
 *   acknowledged write and no read that went back.
 *
 * The seed is printed (GODDB_CHAOS_SEED=n replays the nemesis's choices;
 * process timing still varies); GODDB_CHAOS_SECONDS sets how long faults
 * are injected (default 25).
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/nats-core';
import { clusterStatus, connect, GodDbError, type ClusterStatus, type GodDbClient } from '../../src/client/index.js';
import type { Version } from '../../src/core/version.js';
import { visibleValue } from '../../src/core/version.js';
import { startNatsServer } from '../../src/devtools/servers.js';
import { decode, encode, Kind } from '../../src/protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import { seededRandom } from '../../src/transport/sim.js';
import { checkHistory, formatViolation, OpKind, Outcome, type Operation } from '../helpers/history.js';
import { rawConnect } from '../helpers/nats_raw.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const cluster = 'chaos';
const ids = ['c1', 'c2', 'c3', 'c4', 'c5'];
const keys = Array.from({ length: 300 }, (_, i) => `chaos.${i}`);
const writerCount = 6;
/** The SDK's default: a write that reached a paused node is answered once it resumes, when the pause is shorter. */
const clientTimeoutMs = 5_000;
const convergenceMs = 30_000;
const successFloor = 0.999;
const faultSeconds = Number(process.env['GODDB_CHAOS_SECONDS'] ?? 25);
const seed = Number(process.env['GODDB_CHAOS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

type Fault = 'kill' | 'pause' | 'wipe';
const faults: Fault[] = ['kill', 'pause', 'wipe'];

/** Polls `probe` until `done` holds; fails after `timeoutMs` naming `what` and the last value seen. */
async function until<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, show: (v: T) => string = (v) => JSON.stringify(v)): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) assert.fail(`seed ${seed}: not within ${timeoutMs}ms: ${what}: ${show(v)}`);
    await delay(200);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Every member up as each answering node sees it, all five answered, and no range moving. */
function healthy(s: ClusterStatus): boolean {
  return s.settled === true && ids.every((id) => {
    const m = s.members.find((x) => x.id === id);
    return m !== undefined && m.answered && m.status === 'up' && m.state === 'up';
  });
}

const showStatus = (s: ClusterStatus) => `settled ${s.settled}; ${s.members.map((m) => `${m.id} ${m.state}/${m.status} answered ${m.answered} moving ${JSON.stringify(m.moving)}`).join('; ')}`;

/** A version set as one comparable string (clock entries sorted: two replicas may hold one clock built in different orders). */
function versionSet(versions: readonly Version[]): string {
  const clock = (v: Version) => Object.keys(v.clock).sort().map((id) => `${id}:${v.clock[id]}`).join(',');
  return versions.map((v) => `${v.writer}@${v.hlc}${v.tombstone ? '(del)' : ''}:{${clock(v)}}:${Buffer.from(v.value).toString('base64')}`).sort().join('|');
}

/** What `node` holds of `batch`, read on its own replica subject; undefined for a key it could not answer. */
async function replicaRead(nc: NatsConnection, node: string, batch: readonly string[]): Promise<Map<string, Version[] | undefined>> {
  const m = await nc.request(replicaSubject(cluster, node, ReplicaOp.Get), encode({ kind: Kind.ReplicaGet, keys: [...batch] }), { timeout: 5000 });
  const reply = decode(m.data, Kind.ReplicaGetReply);
  const out = new Map<string, Version[] | undefined>();
  batch.forEach((key, i) => {
    const r = reply.results[i];
    out.set(key, r?.ok ? r.versions : undefined);
  });
  return out;
}

interface Stats {
  latencies: number[];
  failures: Map<string, number>;
  /** Each failure: when, at which node (the SDK's choice), what. */
  failureLog: string[];
}

/** Writers: each loops put (a unique value) then get of a random key, recording every operation. */
function startWriters(db: GodDbClient, history: Operation[], stats: Stats, t0: number) {
  let running = true;
  let nextId = 0;
  const now = () => performance.now() - t0;
  const failed = (op: string, err: unknown) => {
    const code = err instanceof GodDbError ? String(err.code) : 'other';
    const raw = err instanceof Error ? err.message : String(err);
    const node = /kvn\.([^.]+)\./.exec(raw)?.[1] ?? 'queue';
    const message = raw.replace(/kvn?\.[^ ]+/g, '<subject>').slice(0, 120);
    const k = `${op} ${code} ${message}`;
    stats.failures.set(k, (stats.failures.get(k) ?? 0) + 1);
    stats.failureLog.push(`${(now() / 1000).toFixed(1)}s failed at ${node}: ${k}`);
  };
  const loops = Array.from({ length: writerCount }, async (_, w) => {
    const client = `w${w}`;
    const random = seededRandom((seed ^ (0x9e3779b9 * (w + 1))) >>> 0);
    let seq = 0;
    while (running) {
      const key = keys[Math.floor(random() * keys.length)]!;
      const value = `${client}.${seq++}`;
      const putAt = now();
      try {
        await db.put(key, value);
        const end = now();
        stats.latencies.push(end - putAt);
        history.push({ id: nextId++, client, key, op: OpKind.Put, value, invokeMs: putAt, completeMs: end, outcome: Outcome.Ok });
      } catch (err) {
        const end = now();
        stats.latencies.push(end - putAt);
        failed('put', err);
        // A put that failed may still take effect, at any later time.
        history.push({ id: nextId++, client, key, op: OpKind.Put, value, invokeMs: putAt, completeMs: end, outcome: Outcome.Unknown, note: String(err) });
      }
      const getAt = now();
      try {
        const got = await db.get(key);
        const end = now();
        stats.latencies.push(end - getAt);
        history.push({ id: nextId++, client, key, op: OpKind.Get, value: got?.text(), invokeMs: getAt, completeMs: end, outcome: Outcome.Ok });
      } catch (err) {
        const end = now();
        stats.latencies.push(end - getAt);
        failed('get', err);
        history.push({ id: nextId++, client, key, op: OpKind.Get, invokeMs: getAt, completeMs: end, outcome: Outcome.Unknown, note: String(err) });
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('chaos with real processes (issue 10)', () => {
  it('chaos - lmdb, 5 workers: kills, pauses and wiped restarts one node at a time under put-then-read writers: >= 99.9% succeed, no lost write, replicas converge within 30 s', { timeout: (faultSeconds + 120) * 1000 }, async () => {
    console.log(`# chaos test seed ${seed}, ${faultSeconds} s of faults (rerun with GODDB_CHAOS_SEED=${seed} GODDB_CHAOS_SECONDS=${faultSeconds})`);
    const random = seededRandom(seed);
    const nats = await startNatsServer();
    const dirs = ids.map((id) => tempDir(`${cluster}-${id}`));
    const args = (i: number) => ['--cluster', cluster, '-peers', ids.join(','), '-discovery', nats.url, '-gossip', '200ms', '--failure-timeout', '1000',
      '-replication', '3', '-writequorum', '2', '-readquorum', '2', '--engine', 'lmdb', '--data-dir', dirs[i]!.path, '--port', '0'];
    const workers: (Worker | undefined)[] = [];
    let db: GodDbClient | undefined;
    let nc: NatsConnection | undefined;
    /** The writers, once started: the finally below stops them whatever failed. */
    let started: { stop(): Promise<void> } | undefined;
    const events: string[] = [];
    const t0 = performance.now();
    const log = (what: string) => events.push(`${((performance.now() - t0) / 1000).toFixed(1)}s ${what}`);
    const status = async () => clusterStatus(await db!.nodes({ waitMs: 300 }));
    try {
      await Promise.all(ids.map(async (id, i) => (workers[i] = await startWorker(id, args(i)))));
      db = await connect({ servers: nats.url, timeoutMs: clientTimeoutMs, routeProbeMs: 300 });
      nc = await rawConnect(nats.url);
      await until('every member up and settled', status, healthy, 20_000, showStatus);
      await until('the SDK routes to every node', async () => db!.liveNodes(), (l) => l.length === ids.length, 10_000);

      const history: Operation[] = [];
      const stats: Stats = { latencies: [], failures: new Map(), failureLog: [] };
      const writers = (started = startWriters(db, history, stats, t0));
      log('writers started');
      await delay(1_000);

      // The nemesis: one node at a time, healed (and the cluster settled) before the next.
      const faultsEndAt = performance.now() + faultSeconds * 1000;
      const done: string[] = [];
      /** Each kill, from just before the SIGKILL to the process's exit (ms since t0, the writers' clock). */
      const kills: { from: number; to: number }[] = [];
      let healedAt = performance.now();
      while (performance.now() < faultsEndAt) {
        const i = Math.floor(random() * ids.length);
        const id = ids[i]!;
        const fault = faults[Math.floor(random() * faults.length)]!;
        const lastsMs = 1_000 + Math.floor(random() * 3_000);
        const gapMs = 500 + Math.floor(random() * 1_500);
        log(`${fault} ${id} for ${lastsMs} ms`);
        if (fault === 'pause') {
          workers[i]!.process.kill('SIGSTOP');
          await delay(lastsMs);
          workers[i]!.process.kill('SIGCONT');
        } else {
          const from = performance.now() - t0;
          await workers[i]!.kill('SIGKILL');
          kills.push({ from, to: performance.now() - t0 });
          if (fault === 'wipe') {
            rmSync(dirs[i]!.path, { recursive: true, force: true });
            mkdirSync(dirs[i]!.path, { recursive: true });
          }
          await delay(lastsMs);
          workers[i] = await startWorker(id, args(i));
        }
        healedAt = performance.now();
        log(`${fault} ${id} healed`);
        await until(`the cluster healthy after ${fault} ${id}`, status, healthy, 30_000, showStatus);
        log(`cluster healthy ${((performance.now() - healedAt) / 1000).toFixed(1)} s after the heal`);
        done.push(`${fault} ${id}`);
        await delay(gapMs);
      }
      await writers.stop();
      log('writers stopped');

      // Summary of the workload.
      const total = history.length;
      const ok = history.filter((o) => o.outcome === Outcome.Ok).length;
      const sorted = [...stats.latencies].sort((a, b) => a - b);
      const failures = [...stats.failures].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} x ${k}`);
      console.log(`# chaos seed ${seed}: faults ${done.join(', ')}`);
      console.log(`# chaos seed ${seed}: ${total} operations, ${ok} succeeded (${((100 * ok) / total).toFixed(3)}%), p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(0)} ms`);
      for (const f of failures) console.log(`#   failed: ${f}`);
      // Failed operations in flight when a node was killed (a writer has one operation in flight at a time).
      const stranded = history.filter((o) => o.outcome !== Outcome.Ok && kills.some((k) => o.invokeMs <= k.to && o.completeMs >= k.from)).length;
      console.log(`# chaos seed ${seed}: ${stranded} of the failed operations were in flight when a node was killed (${kills.length} kills)`);
      const timeline = [...events, ...stats.failureLog].sort((a, b) => parseFloat(a) - parseFloat(b));
      for (const e of timeline) console.log(`#   ${e}`);

      // Convergence: every owner of every key written, read alone, holds the same version set.
      const written = [...new Set(history.filter((o) => o.op === OpKind.Put).map((o) => o.key))];
      const owners = new Map<string, string[]>();
      for (const key of written) owners.set(key, (await db.owners(key)).replicas.map((r) => r.node));
      const byNode = new Map<string, string[]>();
      for (const [key, list] of owners) for (const n of list) byNode.set(n, [...(byNode.get(n) ?? []), key]);
      const held = new Map<string, Map<string, Version[] | undefined>>();
      const disagreeing = async (): Promise<string[]> => {
        for (const [node, ks] of byNode) held.set(node, await replicaRead(nc!, node, ks));
        const out: string[] = [];
        for (const [key, list] of owners) {
          const sets = list.map((n) => held.get(n)!.get(key));
          if (sets.some((s) => s === undefined) || new Set(sets.map((s) => versionSet(s!))).size !== 1) out.push(key);
        }
        return out;
      };
      let differ = await disagreeing();
      const differedAtStart = differ.length;
      while (differ.length > 0 && performance.now() - healedAt < convergenceMs) {
        await delay(250);
        differ = await disagreeing();
      }
      const tookMs = performance.now() - healedAt;
      console.log(`# chaos seed ${seed}: ${written.length} keys written; ${differedAtStart} differed when the writers stopped; ${differ.length === 0 ? 'converged' : 'NOT converged'} ${(tookMs / 1000).toFixed(1)} s after the last heal`);
      const describeKey = (key: string) => `${key}: ${owners.get(key)!.map((n) => `${n}=${held.get(n)!.get(key) === undefined ? 'error' : versionSet(held.get(n)!.get(key)!).slice(0, 60)}`).join(' ')}`;
      assert.deepEqual(differ.slice(0, 10).map(describeKey), [], `seed ${seed}: ${differ.length} keys' replicas still differ ${(tookMs / 1000).toFixed(1)} s after the last heal\n${events.join('\n')}`);

      // The history: the converged value of each key, then no lost write and no read that went back.
      const final = new Map<string, string | undefined>();
      for (const [key, list] of owners) {
        const v = visibleValue(held.get(list[0]!)!.get(key)!, 0);
        final.set(key, v ? Buffer.from(v.value).toString('utf8') : undefined);
      }
      const violations = checkHistory(history, final);
      assert.deepEqual(violations.slice(0, 5).map((v) => formatViolation(v, seed)), [], `seed ${seed}: ${violations.length} violations (rerun with GODDB_CHAOS_SEED=${seed})\n${events.join('\n')}`);

      assert.ok(done.length >= 3, `seed ${seed}: the nemesis acted (${done.length} faults)`);
      assert.ok(total >= 1000, `seed ${seed}: the writers worked (${total} operations)`);
      assert.ok(stranded <= writerCount * kills.length, `seed ${seed}: ${stranded} failed operations were in flight at one of ${kills.length} kills, more than one per writer per kill`);
      const counted = total - stranded;
      assert.ok(ok / counted >= successFloor, `seed ${seed}: ${ok} of ${counted} operations succeeded (${((100 * ok) / counted).toFixed(3)}%, floor ${100 * successFloor}%; ${stranded} more failed in flight at a kill): ${failures.join('; ')}\n${events.join('\n')}`);
    } finally {
      // A node left paused by a failure above is resumed first (harmless on the others), then all are killed.
      for (const w of workers) if (w && w.process.exitCode === null && w.process.signalCode === null) w.process.kill('SIGCONT');
      // Writers still running after a failure above would spin on the closed client, recording every
      // failed operation, until the process ran out of memory (seen once: 703 s, 4 GB, no report).
      await started?.stop();
      await db?.close().catch(() => undefined);
      await nc?.close().catch(() => undefined);
      await Promise.all(workers.map((w) => w?.kill('SIGKILL')));
      await nats.stop();
      for (const d of dirs) d.remove();
    }
  });
});
