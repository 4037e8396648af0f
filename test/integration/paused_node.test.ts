/**
 * Issue 10 (gray failures), the client side: a worker paused with SIGSTOP
 * stays in the `kv.>` queue group as long as its connection lives, so the
 * SDK routes by node instead (client/node_router.ts): within about a second
 * it stops sending requests to a node that does not answer $SRV.PING, every
 * request then succeeds without waiting out a timeout, and once the node is
 * resumed it gets requests again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { startNatsServer } from '../../src/devtools/servers.js';
import { startWorkers, tempDir, type Worker } from '../helpers/workers.js';

const ids = ['p1', 'p2', 'p3'];

async function until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs}ms: ${what}`);
    await delay(100);
  }
}

describe('a paused worker and the SDK', () => {
  it('paused - the SDK stops routing requests to a SIGSTOPped worker and every request succeeds; resumed, it is used again', async () => {
    const nats = await startNatsServer();
    const dirs = ids.map((id) => tempDir(`paused-${id}`));
    const workers: Worker[] = [];
    let db: GodDbClient | undefined;
    let queue: GodDbClient | undefined;
    try {
      workers.push(...(await startWorkers(ids, (_id, i) =>
        ['--cluster', 'paused', '-peers', ids.join(','), '-discovery', nats.url, '-gossip', '200ms', '--failure-timeout', '1000', '--engine', 'lmdb', '--data-dir', dirs[i]!.path, '--port', '0'])));
      db = await connect({ servers: nats.url, timeoutMs: 2_000, routeProbeMs: 300 });
      queue = await connect({ servers: nats.url, timeoutMs: 2_000, routing: 'queue' });
      await until('the SDK sees every node', () => db!.liveNodes().length === 3);
      for (let i = 0; i < 20; i++) await db.put(`p.${i}`, `v${i}`);

      workers[2]!.process.kill('SIGSTOP');
      await until('the paused node is left out', () => !db!.liveNodes().includes('p3') && db!.liveNodes().length === 2, 10_000);
      // R=W=2 of N=3: the two live nodes serve every request; none goes to p3.
      for (let i = 0; i < 60; i++) {
        await db.put(`p.${i % 20}`, `w${i}`);
        assert.equal((await db.get(`p.${i % 20}`))?.text(), `w${i}`);
      }
      // Through the queue group the server still hands p3 its share: some requests wait out the timeout.
      // (each request goes to p3 with probability 1/3: 60 without one would be a 3e-11 chance)
      let timedOut = 0;
      for (let i = 0; i < 60 && timedOut === 0; i++) await queue.get(`p.${i % 20}`).catch((err: Error) => (/timeout|no reply/i.test(err.message) ? timedOut++ : Promise.reject(err)));
      assert.equal(timedOut, 1, 'the queue group still delivered to the paused worker');

      workers[2]!.process.kill('SIGCONT');
      await until('the resumed node is used again', () => db!.liveNodes().includes('p3'), 10_000);
      for (let i = 0; i < 20; i++) assert.equal((await db.get(`p.${i}`))?.text(), `w${40 + i}`);
    } finally {
      for (const w of workers) w.process.kill('SIGCONT');
      await db?.close();
      await queue?.close();
      await Promise.all(workers.map((w) => w.kill('SIGKILL')));
      await nats.stop();
      for (const d of dirs) d.remove();
    }
  });
});
