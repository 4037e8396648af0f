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
import { Redis } from 'ioredis';
import { open as openLmdb } from 'lmdb';
import { StorageError } from '../../src/core/errors.js';
import { limits } from '../../src/core/limits.js';
import { keyHash } from '../../src/core/ring.js';
import { startRedisServer, type RedisServerHandle } from '../../src/devtools/servers.js';
import { SyncMode, type HashedEntry, type StorageEngine } from '../../src/storage/engine.js';
import { createEngine } from '../../src/storage/index.js';
import { holdsNoRecord } from '../../src/storage/hash_order.js';
import { hashOrderDbName, LmdbEngine, lookupKey, storageKey } from '../../src/storage/lmdb.js';
import { MemoryEngine } from '../../src/storage/memory.js';
import { hashIndexKeyOf, RedisEngine } from '../../src/storage/redis.js';
import { storageContract } from '../contract/storage_contract.js';

const mapSizeBytes = 64 * 1024 * 1024;
const hashMax = (1n << 64n) - 1n;
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

// The same contract when writes are acknowledged before their fsync (storage.sync periodic).
storageContract('lmdb, sync periodic', async () => {
  const path = await tempDir('lmdb-periodic');
  const make = () => new LmdbEngine({ path, mapSizeBytes, sync: 'periodic', syncIntervalMs: 50 });
  return { engine: make(), reopen: async () => make(), cleanup: () => rm(path, { recursive: true, force: true }) };
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
    await assert.rejects(engine.putMany([{ key: 'k', record: Uint8Array.of(4) }, { key: 'other', record: Uint8Array.of(5) }]), StorageError);
    await assert.rejects(engine.delete('k'), StorageError);
    await assert.rejects(drain(engine.scan()), StorageError);
    await assert.rejects(drain(engine.scanRange({ fromHash: 0n, toHash: hashMax })), StorageError);
    engine.setFailing(false);
    assert.deepEqual(await engine.get('k'), Uint8Array.of(1, 2, 3));
    assert.equal(await engine.get('other'), undefined, 'a failed putMany wrote none of its batch');
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
      const batch = [{ key: 'small', record: Uint8Array.of(9) }, ...Array.from({ length: 4 }, (_, i) => ({ key: `big/${i}`, record: new Uint8Array(512 * 1024) }))];
      const batchError = await rejection(engine.putMany(batch));
      assert.ok(batchError instanceof StorageError && /full/.test(batchError.message), `expected a full map, got ${String(batchError)}`);
      assert.deepEqual(await engine.get('small'), Buffer.of(1), 'a refused putMany wrote none of its batch');
      assert.equal(await engine.get('big/0'), undefined);
      await engine.put('after', Uint8Array.of(2));
      assert.deepEqual(await engine.get('after'), Buffer.of(2));
    } finally {
      await engine.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  it('lmdb engine - a read lays its key out in one reused buffer, bytes as the stored key, and a key of more units than fit it still round-trips', async () => {
    // 3 bytes a unit up to limits.keyBytesMax units fit the reused buffer; more units get their own.
    const laidOut = ['k', 'ключ', 'emoji 🎉', '€'.repeat(limits.keyBytesMax), '€'.repeat(limits.keyBytesMax + 1), 'x'.repeat(4 * limits.keyBytesMax)];
    for (const key of laidOut) assert.deepEqual(Buffer.from(lookupKey(key)), storageKey(key), `${key.length} units`);
    // Stored keys within LMDB's maximum key size: the last one takes the own-buffer path.
    const keys = ['k', 'ключ', 'emoji 🎉', '€'.repeat(300), 'x'.repeat(limits.keyBytesMax + 1)];
    const path = await tempDir('lmdb-keys');
    const engine = new LmdbEngine({ path, mapSizeBytes: 16 * 1024 * 1024 });
    try {
      await engine.open();
      for (const [i, key] of keys.entries()) await engine.put(key, Uint8Array.of(i));
      // One read after another: each key laid over the last one's bytes.
      for (const [i, key] of [...keys.entries()].reverse()) assert.deepEqual(await engine.get(key), Buffer.of(i), `${key.length} units`);
      assert.equal(await engine.get('€'.repeat(299)), undefined, 'a shorter key over a longer one\'s leftover bytes is not found');
    } finally {
      await engine.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  for (const sync of [SyncMode.Always, SyncMode.Periodic]) {
    it(`lmdb engine - a key over LMDB's maximum key size is refused with StorageError before it is queued; the turn's other writes and the close go on (sync ${sync})`, async () => {
      const path = await tempDir(`lmdb-long-${sync}`);
      const engine = new LmdbEngine({ path, mapSizeBytes: 16 * 1024 * 1024, sync });
      try {
        await engine.open();
        const [long, many, fine] = await Promise.allSettled([
          engine.put('x'.repeat(4000), Uint8Array.of(1)),
          engine.putMany([{ key: 'a', record: Uint8Array.of(2) }, { key: 'y'.repeat(4000), record: Uint8Array.of(3) }]),
          engine.put('fine', Uint8Array.of(4)),
        ]);
        for (const refused of [long, many]) assert.ok(refused.status === 'rejected' && refused.reason instanceof StorageError && /maximum key size/.test(refused.reason.message), String(refused.status === 'rejected' ? refused.reason : 'stored'));
        assert.equal(fine.status, 'fulfilled', 'a write of the same turn is not failed with it');
        assert.deepEqual(await engine.get('fine'), Buffer.of(4));
        assert.equal(await engine.get('a'), undefined, 'a refused putMany stores none of its batch');
      } finally {
        await engine.close(); // crashed the process from lmdb-js's queued writer when the key reached LMDB
        await rm(path, { recursive: true, force: true });
      }
    });
  }

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

describe('lmdb engine, migration to the hash-ordered layout', () => {
  it('lmdb engine - a directory in the old layout opens with every key readable, counted and in range scans, and is migrated once', async () => {
    const path = await tempDir('lmdb-old');
    const records = oldLayoutRecords(5_000);
    try {
      await writeOldLayout(path, records);
      await withEngine(new LmdbEngine({ path, mapSizeBytes }), (engine) => assertHolds(engine, records));
      assert.deepEqual(await layoutCounts(path), { old: 0, hashOrdered: records.size }, 'nothing is left in the old layout');
      await withEngine(new LmdbEngine({ path, mapSizeBytes }), (engine) => assertHolds(engine, records));
    } finally {
      await rm(path, { recursive: true, force: true });
    }
  });

  it('lmdb engine - a migration interrupted midway completes on the next open without losing or duplicating a key', async () => {
    const path = await tempDir('lmdb-half');
    const records = oldLayoutRecords(3_000);
    try {
      await writeOldLayout(path, records);
      // What a node killed between two migration transactions leaves: each key in exactly one layout.
      await moveToHashOrder(path, [...records.keys()].filter((_, i) => i % 2 === 0));
      assert.deepEqual(await layoutCounts(path), { old: records.size / 2, hashOrdered: records.size / 2 });
      await withEngine(new LmdbEngine({ path, mapSizeBytes }), (engine) => assertHolds(engine, records));
      assert.deepEqual(await layoutCounts(path), { old: 0, hashOrdered: records.size });
    } finally {
      await rm(path, { recursive: true, force: true });
    }
  });

  it('lmdb engine - a key in both layouts keeps the old layout record (an older version wrote it after the migration began), counted once', async () => {
    const path = await tempDir('lmdb-both');
    const records = oldLayoutRecords(10);
    try {
      await writeOldLayout(path, records);
      await moveToHashOrder(path, ['old/1']);
      await writeOldLayout(path, new Map([['old/1', Uint8Array.of(7, 7)]]));
      records.set('old/1', Uint8Array.of(7, 7));
      await withEngine(new LmdbEngine({ path, mapSizeBytes }), (engine) => assertHolds(engine, records));
    } finally {
      await rm(path, { recursive: true, force: true });
    }
  });
});

describe('redis engine', () => {
  it('redis engine - a db written before the hash index gets one on open, an interrupted build is redone, and count leaves it out', async () => {
    const server = await startRedisServer();
    const raw = new Redis({ host: '127.0.0.1', port: server.port, db: 3, lazyConnect: true });
    const records = oldLayoutRecords(2_500);
    try {
      await raw.connect();
      for (const [key, record] of records) await raw.set(`god:r:${key}`, Buffer.from(record));
      // A build killed midway leaves its building key, with a member for a key that no longer exists.
      await raw.zadd(`${hashIndexKeyOf('god:r:')}:building`, 0, `${'0'.repeat(16)}:gone`);
      await withEngine(redisEngineOn(server.port, 3), (engine) => assertHolds(engine, records));
      assert.equal(await raw.zcard(hashIndexKeyOf('god:r:')), records.size, 'one member per record');
      assert.equal(await raw.exists(`${hashIndexKeyOf('god:r:')}:building`), 0, 'the building key is gone');

      await withEngine(redisEngineOn(server.port, 3), async (engine) => {
        await assertHolds(engine, records);
        await Promise.all([...records.keys()].map((key) => engine.delete(key)));
        assert.equal(await engine.count(), 0, 'an empty db counts zero');
      });
      assert.equal(await raw.exists(hashIndexKeyOf('god:r:')), 0, 'the last delete takes the index with it');
    } finally {
      raw.disconnect();
      await server.stop();
    }
  });

  it('redis engine - namespaces sharing a db: count() sees the others\' keys, holdsNoRecord only its own', async () => {
    const server = await startRedisServer();
    const data = new RedisEngine({ host: '127.0.0.1', port: server.port, db: 0, password: '' });
    const paxos = new RedisEngine({ host: '127.0.0.1', port: server.port, db: 0, password: '', keyPrefix: 'god:p:', hashIndexKey: hashIndexKeyOf('god:p:') });
    try {
      await data.open();
      await paxos.open();
      await data.put('k', Uint8Array.of(1));
      assert.ok((await paxos.count()) > 0, 'DBSIZE counts the data namespace too');
      assert.equal(await holdsNoRecord(paxos), true, 'the Paxos namespace holds nothing of its own');
      assert.equal(await holdsNoRecord(data), false);
    } finally {
      await data.close();
      await paxos.close();
      await server.stop();
    }
  });

  it('redis engine - an index key inside the key prefix is refused', () => {
    assert.throws(() => new RedisEngine({ host: '127.0.0.1', port: 1, db: 0, password: '', keyPrefix: 'x:', hashIndexKey: 'x:index' }), {
      name: 'AssertionError',
    });
  });

  it('redis engine - open fails with StorageError when nothing listens', async () => {
    const server = await startRedisServer();
    const { port } = server;
    await server.stop();
    const engine = redisEngineOn(port, 0);
    await assert.rejects(engine.open(), StorageError);
    await engine.close();
  });

  it('redis engine - calls fail fast with StorageError while Redis is down and work again once it is back with its data', async () => {
    const dir = await tempDir('redis-aof');
    let server = await startRedisServer({ dir, appendonly: true });
    const engine = redisEngineOn(server.port, 0);
    try {
      await engine.open();
      await engine.put('k', Uint8Array.of(1));
      await server.stop();
      const started = Date.now();
      await assert.rejects(engine.get('k'), StorageError);
      assert.ok(Date.now() - started < outageDetectMs, `get took ${Date.now() - started} ms to fail`);
      await assert.rejects(engine.put('k', Uint8Array.of(2)), StorageError);

      server = await startRedisServer({ port: server.port, dir, appendonly: true });
      await eventually(() => engine.put('k', Uint8Array.of(3)), recoveryWaitMs);
      assert.deepEqual(await engine.get('k'), Buffer.of(3));
    } finally {
      await engine.close();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('redis engine - a Redis back without its data (restarted without persistence) is refused for good: no empty answers for what the node held', async () => {
    let server = await startRedisServer();
    const engine = redisEngineOn(server.port, 0);
    try {
      await engine.open();
      await engine.put('k', Uint8Array.of(1));
      await server.stop();
      server = await startRedisServer({ port: server.port });
      // Once reconnected and checked, every call names the loss; it never answers "absent" for k.
      await eventually(async () => {
        await assert.rejects(engine.get('k'), /lost this node's data/);
      }, recoveryWaitMs);
      await assert.rejects(engine.put('k', Uint8Array.of(2)), /lost this node's data/);
      await assert.rejects(engine.count(), StorageError);
      // A new engine (the worker restarted) opens on it: the node then refills (node/handoff/store_fill.ts).
      const reopened = redisEngineOn(server.port, 0);
      await withEngine(reopened, async (e) => assert.equal(await e.count(), 0, 'the marker is not counted'));
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

/** Opens `engine`, runs `check` and closes it whatever happens, so a failed assertion leaves no client reconnecting. */
async function withEngine(engine: StorageEngine, check: (engine: StorageEngine) => Promise<void>): Promise<void> {
  try {
    await engine.open();
    await check(engine);
  } finally {
    await engine.close();
  }
}

/** Keys of every shape, some sharing a prefix with ':' in it, with records that differ by key. */
function oldLayoutRecords(count: number): Map<string, Uint8Array> {
  const keys = [
    ...Array.from({ length: count }, (_, i) => `old/${i}`),
    'ключ',
    'emoji 🎉',
    'a:b',
    'a:b:c',
    ':',
    '\u001bbelow the string marker',
    '\u0001hash-order lookalike',
    'k'.repeat(1024),
  ];
  return new Map(keys.map((key, i) => [key, Uint8Array.from({ length: i % 50 }, (_, j) => (i + j) & 0xff)]));
}

/** Writes records as the engine did before the hash-ordered layout: plain string keys in the root database. */
async function writeOldLayout(path: string, records: Map<string, Uint8Array>): Promise<void> {
  const root = openLmdb<Buffer, string>({ path, encoding: 'binary', mapSize: mapSizeBytes, overlappingSync: false });
  await root.transaction(() => {
    for (const [key, record] of records) root.put(key, Buffer.from(record));
  });
  await root.close();
}

/** Moves keys to the hash-ordered layout in one transaction, as one batch of the engine's migration does. */
async function moveToHashOrder(path: string, keys: string[]): Promise<void> {
  const root = openLmdb<Buffer, string>({ path, encoding: 'binary', mapSize: mapSizeBytes, overlappingSync: false });
  const db = root.openDB<Buffer, Buffer>(hashOrderDbName, { keyEncoding: 'binary', encoding: 'binary' });
  await root.transaction(() => {
    for (const key of keys) {
      db.put(storageKey(key), root.get(key)!);
      root.remove(key);
    }
  });
  await root.close();
}

/** Entries in each layout, read with lmdb-js directly. */
async function layoutCounts(path: string): Promise<{ old: number; hashOrdered: number }> {
  const root = openLmdb<Buffer, string>({ path, encoding: 'binary', mapSize: mapSizeBytes });
  const db = root.openDB<Buffer, Buffer>(hashOrderDbName, { keyEncoding: 'binary', encoding: 'binary' });
  const counts = { old: root.getKeysCount({ start: '' }), hashOrdered: db.getKeysCount() };
  await root.close();
  return counts;
}

/** The engine holds exactly `records`: each readable, counted once, and in hash order in a range scan. */
async function assertHolds(engine: StorageEngine, records: Map<string, Uint8Array>): Promise<void> {
  for (const [key, record] of records) assert.deepEqual(new Uint8Array((await engine.get(key))!), record, `get ${JSON.stringify(key)}`);
  assert.equal(await engine.count(), records.size, 'count');
  const ranged: HashedEntry[] = [];
  for await (const entry of engine.scanRange({ fromHash: 0n, toHash: hashMax }, { batchSize: 100 })) ranged.push(entry);
  const expected = [...records.keys()].map((key) => ({ hash: keyHash(key), key }));
  expected.sort((a, b) => (a.hash !== b.hash ? (a.hash < b.hash ? -1 : 1) : Buffer.compare(Buffer.from(a.key), Buffer.from(b.key))));
  // Compared entry by entry: a deepEqual diff of thousands of entries takes minutes to print.
  assert.equal(ranged.length, expected.length, 'scanRange yields every key once');
  const wrong = expected.findIndex(({ hash, key }, i) => ranged[i]!.hash !== hash || ranged[i]!.key !== key);
  assert.equal(wrong, -1, `scanRange order differs at ${wrong}: ${JSON.stringify(ranged[wrong]?.key)} instead of ${JSON.stringify(expected[wrong]?.key)}`);
  let scanned = 0;
  for await (const _ of engine.scan(100)) scanned += 1;
  assert.equal(scanned, records.size, 'scan');
}

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
