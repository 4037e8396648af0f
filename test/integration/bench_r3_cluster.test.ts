/**
 * The bench's three-server NATS cluster (jetstream-kv-r3) starts again on new
 * ports when one it picked is taken before its server binds it, and every
 * server of the start given up on is stopped.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { r3ServerCount, startR3Cluster } from '../../src/bench/nats_cluster.js';
import { freePorts, type NatsServerHandle } from '../../src/devtools/servers.js';

describe('bench r3 cluster', () => {
  it('bench - a route port taken by another process makes the cluster start again on new ports; the servers of the first try are stopped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'goddb-r3-'));
    const started: NatsServerHandle[] = [];
    const squatter = await listenAnywhere();
    const taken = (squatter.address() as { port: number }).port;
    let picks = 0;
    try {
      const servers = await startR3Cluster(dir, (_label, server) => started.push(server), async (count) => {
        const ports = await freePorts(count);
        // The first pick hands the second server a route port that is already taken.
        if (++picks === 1) ports[3] = taken;
        return ports;
      });
      assert.equal(picks, 2, 'started again once');
      assert.equal(servers.length, r3ServerCount);
      assert.ok(!servers.some((s) => s.port === taken));
      const givenUp = started.filter((s) => !servers.includes(s));
      assert.ok(givenUp.length >= 1, 'the first try had started a server before the taken port failed the second');
      for (const s of givenUp) assert.ok(s.process.exitCode !== null || s.process.signalCode !== null, `server on ${s.port} of the first try was stopped`);
      for (const s of servers) assert.equal(s.process.exitCode, null, `server on ${s.port} runs`);
    } finally {
      await Promise.all(started.map((s) => s.stop()));
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A listener on a free port that takes the port and nothing else: connections (a route's dial) are dropped at once. */
function listenAnywhere(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
