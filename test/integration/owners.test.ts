/**
 * Issue 9, "seeing it": `goddb owners <key>` shows what the coordinator
 * does (the same placement call), through every node; a killed node is
 * listed down once detected, with a fallback only when a healthy member
 * remains beyond the preference list; `goddb status --json` shows each
 * member's share of the ring, counting replicas.
 */
import assert from 'node:assert/strict';
import { ErrorCode, GodDbError } from '../../src/core/errors.js';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type ClusterStatus, type GodDbClient, type OwnersReport } from '../../src/client/index.js';
import { startWireCluster, type WireCluster } from '../helpers/wire_cluster.js';
import { cliPath, runScript } from '../helpers/workers.js';

/** Asks until `done` holds for the answers seen so far (each node's latest), or fails after `timeoutMs`. */
async function ownersUntil(db: GodDbClient, key: string, done: (byNode: Map<string, OwnersReport>) => boolean, timeoutMs = 10_000): Promise<Map<string, OwnersReport>> {
  const byNode = new Map<string, OwnersReport>();
  const deadline = Date.now() + timeoutMs;
  while (!done(byNode)) {
    if (Date.now() > deadline) assert.fail(`not seen within ${timeoutMs}ms: ${JSON.stringify([...byNode.values()])}`);
    // A request the server handed to a node just killed (before it noticed the connection gone) is lost: ask again.
    const r = await db.owners(key).catch((err: unknown) => {
      if (err instanceof GodDbError && (err.code === ErrorCode.Timeout || err.code === ErrorCode.QuorumNotMet)) return undefined;
      throw err;
    });
    if (r) byNode.set(r.node, r);
    if (!done(byNode)) await delay(20);
  }
  return byNode;
}

/**
 * `goddb status --json` once every node says settled: a starting member says which ring it holds
 * in its next heartbeat (every 200 ms here), so right after start a node may not have heard it yet.
 */
async function settledStatus(url: string, timeoutMs = 10_000): Promise<ClusterStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = (await cli(['status', '--json', '--servers', url])) as ClusterStatus;
    if (status.settled === true) return status;
    if (Date.now() > deadline) assert.fail(`not settled within ${timeoutMs}ms: ${JSON.stringify(status.members)}`);
    await delay(200);
  }
}

async function cli(args: string[]): Promise<unknown> {
  const run = await runScript(cliPath, args, '', 30_000);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as unknown;
}

function ownsTotal(status: ClusterStatus): number {
  return status.members.reduce((sum, m) => sum + (m.owns ?? 0), 0);
}

describe('goddb owners and the ring in goddb status', () => {
  const clusters: WireCluster[] = [];
  const clients: GodDbClient[] = [];
  after(async () => {
    for (const db of clients) await db.close();
    for (const c of clusters) await c.stop();
  });

  it('owners - every node lists the same three replicas in the same order; a killed one is listed down, with no fallback among three', async () => {
    const ids = ['o1', 'o2', 'o3'];
    const cluster = await startWireCluster('owners3', ids, 'memory');
    clusters.push(cluster);
    const db = await connect({ servers: cluster.nats.url });
    clients.push(db);

    const fromCli = (await cli(['owners', 'user.42', '--json', '--servers', cluster.nats.url])) as OwnersReport;
    assert.match(fromCli.hash, /^[0-9a-f]{16}$/);
    assert.equal(fromCli.replicas.length, 3);
    const order = fromCli.replicas.map((r) => r.node);
    assert.deepEqual([...order].sort(), ids);
    const all = await ownersUntil(db, 'user.42', (m) => m.size === 3);
    for (const [node, r] of all) {
      assert.deepEqual(r.replicas, order.map((id) => ({ node: id, up: true })), `as ${node} sees it`);
      assert.equal(r.hash, fromCli.hash);
      assert.deepEqual(r.fallbacks, []);
      assert.deepEqual(r.pending, []);
    }

    const status = await settledStatus(cluster.nats.url);
    assert.deepEqual(status.members.map((m) => [m.id, m.status, m.virtualNodes, m.answered]), ids.map((id) => [id, 'up', 10, true]));
    assert.ok(Math.abs(ownsTotal(status) - 300) < 0.5, `shares sum to ${ownsTotal(status)}%`);

    const victim = order[1]!;
    await cluster.workers.find((w) => w.id === victim)!.kill('SIGKILL');
    const seen = await ownersUntil(db, 'user.42', (m) => {
      const live = [...m.values()].filter((r) => r.node !== victim);
      return live.length === 2 && live.every((r) => r.replicas.some((p) => p.node === victim && !p.up));
    });
    for (const r of [...seen.values()].filter((x) => x.node !== victim)) {
      assert.deepEqual(r.replicas.map((p) => p.node), order, 'a down node stays in the preference list');
      assert.deepEqual(r.fallbacks, [], 'no healthy member beyond the list');
    }
    const text = await runScript(cliPath, ['owners', 'user.42', '--servers', cluster.nats.url], '', 30_000);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`\\n2\\s+${victim}\\s+replica\\s+down\\s+-\\n`));
  });

  it('owners - with four members and N=3, the fourth stands in for a killed replica; status shares still sum to 300%', async () => {
    const ids = ['f1', 'f2', 'f3', 'f4'];
    const cluster = await startWireCluster('owners4', ids, 'memory');
    clusters.push(cluster);
    const db = await connect({ servers: cluster.nats.url });
    clients.push(db);

    const status = await settledStatus(cluster.nats.url);
    assert.equal(status.members.length, 4);
    assert.ok(Math.abs(ownsTotal(status) - 300) < 0.5, `shares sum to ${ownsTotal(status)}%`);
    for (const m of status.members) assert.ok(m.owns! > 50 && m.owns! < 100, `${m.id} owns ${m.owns}%`);

    const first = await db.owners('k');
    const order = first.replicas.map((r) => r.node);
    const spare = ids.find((id) => !order.includes(id))!;
    const victim = order.find((id) => id !== first.node)!;
    await cluster.workers.find((w) => w.id === victim)!.kill('SIGKILL');
    const seen = await ownersUntil(db, 'k', (m) => {
      const live = [...m.values()].filter((r) => r.node !== victim);
      return live.length === 3 && live.every((r) => r.replicas.some((p) => p.node === victim && !p.up));
    });
    for (const r of [...seen.values()].filter((x) => x.node !== victim)) {
      assert.deepEqual(r.replicas.map((p) => p.node), order);
      assert.deepEqual(r.fallbacks, [{ node: spare, standsInFor: victim }], `as ${r.node} sees it`);
    }
  });
});
