/**
 * A graceful stop cuts no work (issue 8, defect 8): SIGTERM to one of three
 * workers under a steady load of puts and gets from a plain NATS client.
 * The stopping worker stops taking client requests, answers every one it
 * already has, keeps serving other coordinators' replica requests until it
 * is done, then exits 0. The tests move on events (acknowledgements,
 * answers, the exit), never on sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['s1', 's2', 's3'];
/** Client loops, each with one request in flight at a time. */
const loops = 96;
/** Longer than the node's request timeout (2 s) and its stop: a client timeout means a request was dropped. */
const clientTimeoutMs = 8_000;
/** How long the stopping worker may take: in-flight requests finish within the request timeout. */
const exitBoundMs = 8_000;

interface Load {
  acked: Map<string, string>;
  /** Replies by code, and 'no reply' for requests that got none. */
  outcomes: Map<string, number>;
  /** Every reply other than 200, every request without one, and reads that missed an acknowledged put. */
  failures: string[];
  requests(): number;
  answered(): number;
  /** Resolves once `n` puts in all have been acknowledged. */
  untilAcked(n: number): Promise<void>;
  /** Resolves once `n` requests in all have been answered, whatever the answer. */
  untilAnswered(n: number): Promise<void>;
  stop(): Promise<void>;
}

/** Each loop puts a fresh key and reads it back, over and over, until stopped. */
function startLoad(nc: NatsConnection): Load {
  const acked = new Map<string, string>();
  const outcomes = new Map<string, number>();
  const failures: string[] = [];
  const waiters: { done(): boolean; resolve(): void }[] = [];
  let running = true;
  let requests = 0;
  let answered = 0;
  const wake = () => {
    for (const w of waiters.filter((x) => x.done())) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const until = (done: () => boolean) => new Promise<void>((resolve) => (done() ? resolve() : waiters.push({ done, resolve })));
  const count = (outcome: string) => {
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    answered++;
    wake();
  };
  const request = async (what: string, subject: string, payload = '') => {
    requests++;
    try {
      const r = await rawRequest(nc, subject, payload, {}, clientTimeoutMs);
      if (r.code !== 200) failures.push(`${what}: ${r.code} ${r.message}`);
      count(String(r.code));
      return r;
    } catch (err) {
      failures.push(`${what}: no reply (${(err as Error).message})`);
      count('no reply');
      return undefined;
    }
  };
  const all = Array.from({ length: loops }, async (_, l) => {
    for (let i = 0; running; i++) {
      const key = `load.${l}.${i}`;
      const value = `v-${l}-${i}`;
      const put = await request(`put ${key}`, `kv.put.${key}`, value);
      if (put?.code !== 200) continue;
      acked.set(key, value);
      wake();
      const get = await request(`get ${key}`, `kv.get.${key}`);
      if (get?.code === 200 && get.value !== value) failures.push(`get ${key}: read ${get.value}, acknowledged ${value}`);
    }
  });
  return {
    acked,
    outcomes,
    failures,
    requests: () => requests,
    answered: () => answered,
    untilAcked: (n) => until(() => acked.size >= n),
    untilAnswered: (n) => until(() => answered >= n),
    async stop() {
      running = false;
      await Promise.all(all);
    },
  };
}

/** Reads every acknowledged put back; returns the keys that do not read their value. */
async function unreadable(nc: NatsConnection, acked: Map<string, string>, headers: Record<string, string> = {}): Promise<string[]> {
  const keys = [...acked.keys()];
  const missing: string[] = [];
  for (let i = 0; i < keys.length; i += loops) {
    await Promise.all(keys.slice(i, i + loops).map(async (key) => {
      const r = await rawRequest(nc, `kv.get.${key}`, '', headers, clientTimeoutMs);
      if (r.code !== 200 || r.value !== acked.get(key)) missing.push(`${key}: ${r.code} ${r.value} ${r.message}`);
    }));
  }
  return missing;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms}ms: ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Three lmdb workers on a fresh nats-server, a plain NATS client, and a load
 * on it when `run` starts one; all stopped and removed afterwards, the load
 * first (left running after a failure, it would spin on the closed client).
 */
async function withCluster(run: (workers: Worker[], nc: NatsConnection, load: () => Load) => Promise<void>): Promise<void> {
  let nats: NatsServerHandle | undefined;
  const workers: Worker[] = [];
  const loads: Load[] = [];
  const dirs = ids.map((id) => tempDir(`shutdown-${id}`));
  let nc: NatsConnection | undefined;
  try {
    nats = await startNatsServer();
    const args = (i: number) => ['--cluster', 'stop', '-peers', ids.join(','), '-discovery', nats!.url, '--engine', 'lmdb', '--data-dir', dirs[i]!.path,
      '-gossip', '200ms', '--failure-timeout', '1000'];
    workers.push(...(await Promise.all(ids.map((id, i) => startWorker(id, args(i))))));
    nc = await rawConnect(nats.url);
    const client = nc;
    await run(workers, client, () => {
      const load = startLoad(client);
      loads.push(load);
      return load;
    });
  } finally {
    await Promise.all(loads.map((l) => l.stop()));
    await nc?.close();
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats?.stop();
    for (const d of dirs) d.remove();
  }
}

async function stopOne(load: Load, victim: Worker): Promise<void> {
  const requestsAtStop = load.requests();
  victim.process.kill('SIGTERM');
  const code = await within(victim.exited, exitBoundMs, 'the stopped worker exits');
  assert.equal(code, 0, victim.logs.slice(-10).join('\n'));
  assert.ok(load.requests() > requestsAtStop, 'the load ran through the stop');
}

describe('graceful shutdown', () => {
  it('shutdown - SIGTERM to one of three workers under load: every request is answered, none fails, every acknowledged put reads back, and the worker exits 0', async () => {
    await withCluster(async (workers, nc, newLoad) => {
      const load = newLoad();
      await within(load.untilAcked(500), 30_000, '500 puts acknowledged before the stop');
      await stopOne(load, workers[1]!);
      // The two others go on serving, also once the stopped one is marked down.
      await within(load.untilAcked(load.acked.size + 1000), 30_000, '1000 more puts acknowledged after the exit');
      await load.stop();

      assert.deepEqual(load.failures.slice(0, 20), [], `${load.failures.length} of ${load.requests()} requests failed`);
      const missing = await unreadable(nc, load.acked);
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${load.acked.size} acknowledged puts do not read back`);
    });
  });

  it('shutdown - with a third worker already dead, requests that need the stopping worker as a replica succeed or fail at once (503), none is left unanswered, and every acknowledged put reads back', async () => {
    await withCluster(async (workers, nc, newLoad) => {
      await workers[2]!.kill('SIGKILL'); // every write now needs s1 and s2
      const load = newLoad();
      await within(load.untilAcked(500), 30_000, '500 puts acknowledged before the stop');
      await stopOne(load, workers[1]!);
      await within(load.untilAnswered(load.answered() + 500), 30_000, '500 more requests answered after the exit');
      await load.stop();

      const outcomes = JSON.stringify([...load.outcomes]);
      assert.equal(load.outcomes.get('no reply') ?? 0, 0, `every request got a reply: ${outcomes}`);
      assert.deepEqual([...load.outcomes.keys()].filter((c) => c !== '200' && c !== '503'), [], `only 200 and 503 (quorum not reached, at once): ${outcomes}; ${load.failures.filter((f) => !/: 503 /.test(f)).slice(0, 5).join('; ')}`);
      assert.ok((load.outcomes.get('503') ?? 0) > 0, 'writes fail once one replica is left');
      const misread = load.failures.filter((f) => /acknowledged/.test(f));
      assert.deepEqual(misread, []);
      const missing = await unreadable(nc, load.acked, { 'KV-R': '1' });
      assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${load.acked.size} acknowledged puts do not read back from s1`);
    });
  });
});
