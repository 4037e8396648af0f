/**
 * A graceful stop cuts no work (issue 8, defect 8), on a seeded simulated
 * cluster where every message spends 1 to 5 ms on the bus: the stopping
 * node's subscriptions drain, so requests already on their way to it are
 * answered, and its storage closes only after its last handler. (The real
 * worker test, test/integration/shutdown.test.ts, checks the same with
 * SIGTERM; on one machine the window it guards is under a millisecond.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientOp } from '../../src/protocol/subjects.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];
const loops = 32;

describe('simulated graceful stop', () => {
  it('sim - a node stopped under load answers every request on its way to it, and its storage closes after its last request', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids);
    await c.start();
    const client = c.connectClient('load', 10_000);
    const acked = new Map<string, string>();
    const failures: string[] = [];
    const victim = c.node('n2');
    let engineClosed = false;
    const usedAfterClose: string[] = [];
    const engine = victim.engine;
    const close = engine.close.bind(engine);
    engine.close = async () => {
      engineClosed = true;
      await close();
    };
    for (const op of ['get', 'put'] as const) {
      const original = engine[op].bind(engine) as (...args: unknown[]) => Promise<unknown>;
      (engine as unknown as Record<string, unknown>)[op] = (...args: unknown[]) => {
        if (engineClosed) usedAfterClose.push(op);
        return original(...args);
      };
    }

    let running = true;
    let stopped: Promise<void> | undefined;
    let ackedAtStop = 0;
    const waiters: { n: number; resolve(): void }[] = [];
    const untilAcked = (n: number) => new Promise<void>((resolve) => (acked.size >= n ? resolve() : waiters.push({ n, resolve })));
    const loop = async (l: number) => {
      for (let i = 0; running; i++) {
        const key = `s.${l}.${i}`;
        const put = await client.request(ClientOp.Put, key, `v${i}`);
        if (put.code !== 200) {
          failures.push(`put ${key}: ${put.code} ${put.message}`);
          continue;
        }
        acked.set(key, `v${i}`);
        for (const w of waiters.filter((x) => acked.size >= x.n)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
        const get = await client.request(ClientOp.Get, key);
        if (get.code !== 200 || get.value !== `v${i}`) failures.push(`get ${key}: ${get.code} ${get.value} ${get.message}`);
      }
    };
    await c.clock.run(
      (async () => {
        const all = Array.from({ length: loops }, (_, l) => loop(l));
        await untilAcked(300);
        ackedAtStop = acked.size;
        stopped = victim.node.stop();
        await stopped;
        await untilAcked(acked.size + 300);
        running = false;
        await Promise.all(all);
      })(),
      120_000,
    );
    victim.up = false; // stopped: c.stop() leaves it alone

    assert.ok(acked.size > ackedAtStop + 300, 'the load ran through the stop');
    assert.deepEqual(failures.slice(0, 10), [], `seed ${seed}: ${failures.length} requests failed`);
    assert.deepEqual(usedAfterClose, [], `seed ${seed}: storage used after it was closed`);
    for (const [key, value] of acked) {
      const get = await c.request(ClientOp.Get, key, '', { 'KV-R': '2' });
      assert.equal(get.value, value, `seed ${seed}: ${key} reads back (${get.code} ${get.message})`);
    }
    await c.stop();
  });
  it('sim - with one replica already down, requests that need the stopping node as a replica succeed or fail at once (503), never time out', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids);
    await c.start();
    await c.crash('n3');
    await c.clock.advance(4000); // n3 is marked down: every write needs n1 and n2
    const client = c.connectClient('load', 10_000);
    const acked = new Map<string, string>();
    const codes = new Map<number, number>();
    let running = true;
    let answered = 0;
    const waiters: { n: number; resolve(): void }[] = [];
    const until = (n: number) => new Promise<void>((resolve) => (answered >= n ? resolve() : waiters.push({ n, resolve })));
    const loop = async (l: number) => {
      for (let i = 0; running; i++) {
        const key = `w.${l}.${i}`;
        const put = await client.request(ClientOp.Put, key, `v${i}`);
        codes.set(put.code, (codes.get(put.code) ?? 0) + 1);
        if (put.code === 200) acked.set(key, `v${i}`);
        answered++;
        for (const w of waiters.filter((x) => answered >= x.n)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    };
    await c.clock.run(
      (async () => {
        const all = Array.from({ length: loops }, (_, l) => loop(l));
        await until(300);
        await c.node('n2').node.stop();
        await until(answered + 300);
        running = false;
        await Promise.all(all);
      })(),
      120_000,
    );
    c.node('n2').up = false;
    assert.equal(codes.get(504) ?? 0, 0, `seed ${seed}: no request timed out (codes ${JSON.stringify([...codes])})`);
    assert.ok((codes.get(200) ?? 0) >= 300 && (codes.get(503) ?? 0) > 0, `seed ${seed}: writes succeeded until the stop and failed fast after it (${JSON.stringify([...codes])})`);
    for (const [key, value] of acked) {
      const get = await c.request(ClientOp.Get, key, '', { 'KV-R': '1' });
      assert.equal(get.value, value, `seed ${seed}: ${key} reads back from n1 (${get.code} ${get.message})`);
    }
    await c.stop();
  });
});
