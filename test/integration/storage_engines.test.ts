/**
 * The storage contract against every engine (memory, lmdb in a temporary
 * directory, redis on a real redis-server), then what only one engine does:
 * injected faults, a full lmdb map, a Redis that goes away and comes back.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StorageError } from '../../src/core/errors.js';
import { startRedisServer, type RedisServerHandle } from '../../src/devtools/servers.js';
import { createEngine } from '../../src/storage/index.js';
import { LmdbEngine } from '../../src/storage/lmdb.js';
import { MemoryEngine } from '../../src/storage/memory.js';
import { RedisEngine } from '../../src/storage/redis.js';
import { storageContract } from '../contract/storage_contract.js';

const mapSizeBytes = 64 * 1024 * 1024;
/** How soon a call must fail once Redis is gone (fail fast, never hang). */
const outageDetectMs = 2_000;
/** How long the engine may take to notice that Redis is back (reconnect back-off is capped at 1 s). */
const recoveryWaitMs = 10_000;

async function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `goddb-${label}-`));
}

// One redis-server for every redis fixture in this file, started on first use.
let sharedRedis: Promise<RedisServerHandle> | undefined;
let redisDb = 0;
after(async () => {
  if (sharedRedis !== undefined) await (await sharedRedis).stop();
});

function redisEngineOn(port: number, db: number): RedisEngine {
  return new RedisEngine({ host: '127.0.0.1', port, db, password: '' });
}

storageContract('memory', async () => ({ engine: new MemoryEngine(), cleanup: async () => undefined }));

storageContract('lmdb', async () => {
  const path = await tempDir('lmdb');
  return {
    engine: new LmdbEngine({ path, mapSizeBytes }),
    reopen: async () => new LmdbEngine({ path, mapSizeBytes }),
    cleanup: () => rm(path, { recursive: true, force: true }),
  };
});

storageContract('redis', async () => {
  sharedRedis ??= startRedisServer();
  const { port } = await sharedRedis;
  // A database of its own per fixture keeps each engine's store empty.
  const db = redisDb++;
  return {
    engine: redisEngineOn(port, db),
    reopen: async () => redisEngineOn(port, db),
    cleanup: async () => undefined,
  };
});

describe('memory engine', () => {
  it('memory engine - setFailing makes every call reject with StorageError until it is cleared', async () => {
    const engine = new MemoryEngine();
    await engine.open();
    await engine.put('k', Uint8Array.of(1, 2, 3));
    engine.setFailing(true);
    await assert.rejects(engine.get('k'), StorageError);
    await assert.rejects(engine.put('k', Uint8Array.of(4)), StorageError);
    await assert.rejects(engine.delete('k'), StorageError);
    await assert.rejects(drain(engine.scan()), StorageError);
    engine.setFailing(false);
    assert.deepEqual(await engine.get('k'), Uint8Array.of(1, 2, 3));
    await engine.close();
  });

  it('memory engine - a scan under way fails at its next batch once the disk breaks', async () => {
    const engine = new MemoryEngine();
    await engine.open();
    for (let i = 0; i < 10; i += 1) await engine.put(`k${i}`, Uint8Array.of(i));
    const entries = engine.scan(2)[Symbol.asyncIterator]();
    await entries.next();
    engine.setFailing(true);
    await assert.rejects(drain({ [Symbol.asyncIterator]: () => entries }), StorageError);
    await engine.close();
  });
});

describe('lmdb engine', () => {
  it('lmdb engine - a write that does not fit the map rejects with StorageError saying it is full, and the engine stays usable', async () => {
    const path = await tempDir('lmdb-full');
    const engine = new LmdbEngine({ path, mapSizeBytes: 1024 * 1024 });
    try {
      await engine.open();
      await engine.put('small', Uint8Array.of(1));
      const error = await rejection(engine.put('huge', new Uint8Array(2 * 1024 * 1024)));
      assert.ok(error instanceof StorageError, `expected StorageError, got ${String(error)}`);
      assert.match(error.message, /full/);
      assert.match(error.message, /1048576/, 'the message names the configured size');
      assert.equal(error.code, 507);
      assert.deepEqual(await engine.get('small'), Buffer.of(1));
      await engine.put('after', Uint8Array.of(2));
      assert.deepEqual(await engine.get('after'), Buffer.of(2));
    } finally {
      await engine.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  it('lmdb engine - filling the map refuses writes, and deleting makes room again', async () => {
    const path = await tempDir('lmdb-fill');
    const engine = new LmdbEngine({ path, mapSizeBytes: 1024 * 1024 });
    const record = new Uint8Array(100 * 1024);
    try {
      await engine.open();
      let stored = 0;
      for (; stored < 100; stored += 1) {
        const error = await rejection(engine.put(`k${stored}`, record));
        if (error === undefined) continue;
        assert.ok(error instanceof StorageError && /full/.test(error.message), `unexpected ${String(error)}`);
        break;
      }
      assert.ok(stored > 0 && stored < 11, `a 1 MiB map took ${stored} records of 100 KiB`);
      await engine.delete('k0');
      await engine.put('k-again', record);
      assert.equal((await engine.get('k-again'))?.byteLength, record.byteLength);
    } finally {
      await engine.close();
      await rm(path, { recursive: true, force: true });
    }
  });
});

describe('redis engine', () => {
  it('redis engine - open fails with StorageError when nothing listens', async () => {
    const server = await startRedisServer();
    const { port } = server;
    await server.stop();
    const engine = redisEngineOn(port, 0);
    await assert.rejects(engine.open(), StorageError);
    await engine.close();
  });

  it('redis engine - calls fail fast with StorageError while Redis is down and work again once it is back', async () => {
    let server = await startRedisServer();
    const engine = redisEngineOn(server.port, 0);
    try {
      await engine.open();
      await engine.put('k', Uint8Array.of(1));
      await server.stop();
      const started = Date.now();
      await assert.rejects(engine.get('k'), StorageError);
      assert.ok(Date.now() - started < outageDetectMs, `get took ${Date.now() - started} ms to fail`);
      await assert.rejects(engine.put('k', Uint8Array.of(2)), StorageError);

      server = await startRedisServer({ port: server.port });
      await eventually(() => engine.put('k', Uint8Array.of(3)), recoveryWaitMs);
      assert.deepEqual(await engine.get('k'), Buffer.of(3));
    } finally {
      await engine.close();
      await server.stop();
    }
  });
});

describe('createEngine', () => {
  it('createEngine - builds the engine the configuration names, unopened', async () => {
    const redis = { host: '127.0.0.1', port: 1, db: 0, password: '' };
    const base = { redis, lmdbPath: join(tmpdir(), 'goddb-unused'), lmdbMapSizeBytes: mapSizeBytes };
    assert.ok(createEngine({ ...base, engine: 'memory' }) instanceof MemoryEngine);
    assert.ok(createEngine({ ...base, engine: 'lmdb' }) instanceof LmdbEngine);
    const engine = createEngine({ ...base, engine: 'redis' });
    assert.ok(engine instanceof RedisEngine);
    assert.equal(engine.kind, 'redis');
    await assert.rejects(engine.get('k'), StorageError);
  });
});

async function drain(entries: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of entries) {
    // only the rejection matters
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Retries `attempt` until it succeeds or the deadline passes (then rethrows the last failure). */
async function eventually(attempt: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
