/**
 * Durable identity: a node's id and vnode count live in its data directory.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BadRequestError } from '../../src/core/errors.js';
import { startNatsServer } from '../../src/devtools/servers.js';
import { identityFile, loadOrCreateIdentity } from '../../src/node/membership/identity.js';
import { startWorker, tempDir } from '../helpers/workers.js';

const request = (nodeId: string, virtualNodes = 10, cluster = 'c') => ({ nodeId, virtualNodes, cluster, generateId: () => 'n-generated' });

describe('node identity', () => {
  it('identity - created once, then read back unchanged', () => {
    const dir = tempDir('identity');
    try {
      const first = loadOrCreateIdentity(dir.path, request(''), '2026-01-01T00:00:00.000Z');
      assert.equal(first.created, true);
      assert.equal(first.identity.nodeId, 'n-generated');
      const again = loadOrCreateIdentity(dir.path, request(''), '2027-01-01T00:00:00.000Z');
      assert.equal(again.created, false);
      assert.deepEqual(again.identity, first.identity);
      assert.equal(JSON.parse(readFileSync(join(dir.path, identityFile), 'utf8')).nodeId, 'n-generated');
    } finally {
      dir.remove();
    }
  });

  it('identity - a directory of another node or cluster is refused; another vnode count is ignored', () => {
    const dir = tempDir('identity');
    try {
      loadOrCreateIdentity(dir.path, request('a1', 10, 'c'), 'now');
      assert.throws(() => loadOrCreateIdentity(dir.path, request('a2'), 'now'), (e: unknown) => e instanceof BadRequestError && /belongs to node a1/.test(e.message));
      assert.throws(() => loadOrCreateIdentity(dir.path, request('a1', 10, 'other'), 'now'), /belongs to cluster c/);
      const moved = loadOrCreateIdentity(dir.path, request('a1', 64), 'now');
      assert.equal(moved.identity.virtualNodes, 10);
      assert.equal(moved.virtualNodesIgnored, 64);
    } finally {
      dir.remove();
    }
  });

  it('identity - a damaged identity file is an error, not a new identity', () => {
    const dir = tempDir('identity');
    try {
      writeFileSync(join(dir.path, identityFile), '{"format":1,"nodeId":"x.y"}');
      assert.throws(() => loadOrCreateIdentity(dir.path, request(''), 'now'), /not a GoD-DB identity file/);
    } finally {
      dir.remove();
    }
  });

  it('identity - a worker restarted on the same data directory comes back with the same id', async () => {
    const nats = await startNatsServer();
    const dir = tempDir('identity-worker');
    try {
      const args = ['--cluster', 'ident', '-discovery', nats.url, '--data-dir', dir.path, '--engine', 'lmdb'];
      const first = await startWorker('', args);
      assert.match(first.id, /^n-[0-9a-f]{8}$/);
      await first.kill('SIGKILL');
      const second = await startWorker('', args);
      assert.equal(second.id, first.id);
      await second.kill();
      assert.equal(await second.exited, 0, 'SIGTERM stops a worker cleanly');
    } finally {
      dir.remove();
      await nats.stop();
    }
  });
});

describe('worker shutdown', () => {
  it('worker - SIGTERM stops a worker in bounded time even when its NATS server is gone', async () => {
    const nats = await startNatsServer();
    const worker = await startWorker('gone1', ['--cluster', 'gone', '-discovery', nats.url, '--engine', 'memory']);
    await nats.stop();
    worker.process.kill('SIGTERM');
    const code = await worker.exited;
    assert.equal(code, 0, worker.logs.slice(-5).join('\n'));
  });
});
