/**
 * The storage contract, written once and run against every engine (etcd
 * raft's storage tests over MemoryStorage; riak_core's vnode callbacks). Each
 * test checks one sentence of the contract in src/storage/engine.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StorageError } from '../../src/core/errors.js';
import { limits } from '../../src/core/limits.js';
import { keyHash } from '../../src/core/ring.js';
import type { HashCursor, HashedEntry, HashRange, StorageEngine, StorageEntry } from '../../src/storage/engine.js';
import { holdsNoRecord } from '../../src/storage/hash_order.js';

export interface StorageFixture {
  /** A fresh engine over an empty store, not yet opened: opening is part of the contract. */
  engine: StorageEngine;
  /** For durable engines: a new, unopened engine over the same store (the suite closes the first one before). */
  reopen?: () => Promise<StorageEngine>;
  /** Releases the store (temporary directories and the like); engines are closed by the suite. */
  cleanup: () => Promise<void>;
}

const largeRecordBytes = 1024 * 1024;
const hashMax = (1n << 64n) - 1n;

export function storageContract(name: string, make: () => Promise<StorageFixture>): void {
  describe(`storage contract (${name})`, () => {
    let fixture: StorageFixture | undefined;
    let engine: StorageEngine;

    before(async () => {
      fixture = await make();
      engine = fixture.engine;
      await engine.open();
    });

    after(async () => {
      await engine?.close();
      await fixture?.cleanup();
    });

    // First: the store is still empty here.
    it('holdsNoRecord is true on the empty store, false once a record is in, true again once it is deleted', async () => {
      assert.equal(await holdsNoRecord(engine), true);
      await engine.put('only/one', Uint8Array.of(1));
      assert.equal(await holdsNoRecord(engine), false);
      await engine.delete('only/one');
      assert.equal(await holdsNoRecord(engine), true);
    });

    it('get of an absent key is undefined', async () => {
      assert.equal(await engine.get('absent/never-written'), undefined);
    });

    it('put then get returns the exact bytes, every byte value included', async () => {
      const record = Uint8Array.from({ length: 256 }, (_, i) => i);
      await engine.put('roundtrip', record);
      assertBytes(await engine.get('roundtrip'), record, 'roundtrip');
    });

    it('getSync, where the engine has one, reads what get reads: a record, a changed one, an absent key, a deleted one', async (t) => {
      const getSync = engine.getSync?.bind(engine);
      if (getSync === undefined) {
        t.skip('no synchronous read (Redis: reads need a round trip)');
        return;
      }
      const first = pattern(300, 4);
      await engine.put('sync/read', first);
      assertBytes(getSync('sync/read'), first, 'sync/read');
      const second = pattern(20, 5);
      await engine.putMany([{ key: 'sync/read', record: second }]);
      assertBytes(getSync('sync/read'), second, 'sync/read after putMany');
      assert.equal(getSync('sync/never-written'), undefined);
      await engine.delete('sync/read');
      assert.equal(getSync('sync/read'), undefined);
      assert.equal(await engine.get('sync/read'), undefined);
    });

    it('an empty record reads back as empty bytes, not as absent', async () => {
      await engine.put('empty', new Uint8Array(0));
      assertBytes(await engine.get('empty'), new Uint8Array(0), 'empty');
    });

    it('a record of 1 MiB round-trips byte for byte', async () => {
      const record = pattern(largeRecordBytes, 1);
      await engine.put('large', record);
      assertBytes(await engine.get('large'), record, 'large');
    });

    it('put replaces the previous record, a shorter one included', async () => {
      await engine.put('overwrite', pattern(4096, 2));
      const shorter = pattern(10, 3);
      await engine.put('overwrite', shorter);
      assertBytes(await engine.get('overwrite'), shorter, 'overwrite');
    });

    it('once concurrent puts resolve, get returns each of them', async () => {
      const keys = Array.from({ length: 50 }, (_, i) => `concurrent/${i}`);
      await Promise.all(keys.map((key, i) => engine.put(key, pattern(100, i))));
      for (const [i, key] of keys.entries()) assertBytes(await engine.get(key), pattern(100, i), key);
    });

    it('putMany puts every entry: once it resolves, get returns each record, scanRange and count see every new key', async () => {
      await engine.put('batch/0', pattern(16, 40));
      const before = await engine.count();
      const entries: StorageEntry[] = [
        ...Array.from({ length: 300 }, (_, i) => ({ key: `batch/${i}`, record: pattern(50 + (i % 7), 41 + i) })),
        ...oddKeys().map((key, i) => ({ key: `batch/${key}`, record: pattern(i, 500 + i) })),
        { key: 'batch/empty', record: new Uint8Array(0) },
      ];
      await engine.putMany(entries);
      for (const { key, record } of entries) assertBytes(await engine.get(key), record, key);
      assert.equal(await engine.count(), before + entries.length - 1, 'batch/0 was overwritten, the rest are new');
      const ranged = await collect(engine.scanRange({ fromHash: 0n, toHash: hashMax }, { batchSize: 64 }));
      const seen = new Set(ranged.map((entry) => entry.key));
      for (const { key } of entries) assert.ok(seen.has(key), `scanRange missed ${JSON.stringify(key)}`);
    });

    it('putMany of an empty batch resolves and changes nothing', async () => {
      const before = await engine.count();
      await engine.putMany([]);
      assert.equal(await engine.count(), before);
    });

    it('putMany of a key given twice ends with its later record', async () => {
      await engine.putMany([
        { key: 'batch-twice', record: pattern(40, 60) },
        { key: 'batch-twice', record: pattern(8, 61) },
      ]);
      assertBytes(await engine.get('batch-twice'), pattern(8, 61), 'batch-twice');
    });

    it('bytes given to putMany are not aliased to the store', async () => {
      const record = pattern(64, 62);
      const put = engine.putMany([{ key: 'alias/putMany', record }]);
      record.fill(0);
      await put;
      assertBytes(await engine.get('alias/putMany'), pattern(64, 62), 'after mutating the given record');
    });

    it('delete removes the key', async () => {
      await engine.put('doomed', pattern(8, 4));
      await engine.delete('doomed');
      assert.equal(await engine.get('doomed'), undefined);
    });

    it('delete of an absent key is not an error', async () => {
      await engine.delete('absent/never-written');
      await engine.delete('absent/never-written');
      assert.equal(await engine.get('absent/never-written'), undefined);
    });

    it('keys with dots, spaces, slashes, glob characters and unicode are distinct and round-trip', async () => {
      const keys = oddKeys();
      await Promise.all(keys.map((key, i) => engine.put(key, pattern(16, 100 + i))));
      for (const [i, key] of keys.entries()) assertBytes(await engine.get(key), pattern(16, 100 + i), JSON.stringify(key));
    });

    it(`a key of exactly ${limits.keyBytesMax} UTF-8 bytes round-trips`, async () => {
      const key = longestKey();
      await engine.put(key, pattern(32, 5));
      assertBytes(await engine.get(key), pattern(32, 5), 'longest key');
      const found = await collect(engine.scan(16));
      assert.equal(found.filter((entry) => entry.key === key).length, 1, 'scan yields the longest key intact, once');
    });

    it('scan yields every key exactly once with batches smaller than the key count', async () => {
      const keys = Array.from({ length: 250 }, (_, i) => `scan/${i}`);
      await Promise.all(keys.map((key, i) => engine.put(key, pattern(24, i))));
      const found = await collect(engine.scan(16));
      assertNoDuplicates(found);
      const byKey = new Map(found.map((entry) => [entry.key, entry.record]));
      for (const [i, key] of keys.entries()) assertBytes(byKey.get(key), pattern(24, i), key);
      for (const entry of found) assertBytes(await engine.get(entry.key), entry.record, `scanned ${entry.key}`);
    });

    it('scan yields every key it started with and nobody deleted exactly once while writes and deletes run', async () => {
      const keys = Array.from({ length: 120 }, (_, i) => `busy/${String(i).padStart(3, '0')}`);
      await Promise.all(keys.map((key, i) => engine.put(key, pattern(24, i))));
      const deleted = new Set(keys.filter((_, i) => i % 6 === 0));
      const found: StorageEntry[] = [];
      let mutated = false;
      for await (const entry of engine.scan(8)) {
        found.push(entry);
        if (mutated) continue;
        mutated = true;
        await mutateDuringScan(engine, keys, deleted);
      }
      assertNoDuplicates(found);
      const seen = new Set(found.map((entry) => entry.key));
      for (const key of keys) {
        if (!deleted.has(key)) assert.ok(seen.has(key), `scan missed ${key}`);
      }
    });

    it('count is the number of keys present: a new key adds one, an overwrite none, a delete takes one away', async () => {
      assert.equal(await engine.count(), (await collect(engine.scan(64))).length, 'count agrees with scan');
      const before = await engine.count();
      await Promise.all(Array.from({ length: 10 }, (_, i) => engine.put(`count/${i}`, pattern(8, i))));
      assert.equal(await engine.count(), before + 10, 'ten new keys');
      await engine.put('count/0', pattern(40, 1));
      assert.equal(await engine.count(), before + 10, 'an overwrite adds nothing');
      await engine.delete('count/1');
      await engine.delete('count/absent');
      assert.equal(await engine.count(), before + 9, 'a delete takes one away, of an absent key none');
    });

    it('bytes returned by get are not aliased to the store', async () => {
      await engine.put('alias/get', pattern(64, 6));
      const first = await engine.get('alias/get');
      assert.ok(first !== undefined);
      first.fill(0xee);
      assertBytes(await engine.get('alias/get'), pattern(64, 6), 'after mutating a returned copy');
    });

    it('bytes given to put are not aliased to the store', async () => {
      const record = pattern(64, 7);
      await engine.put('alias/put', record);
      record.fill(0xdd);
      assertBytes(await engine.get('alias/put'), pattern(64, 7), 'after mutating the argument');
    });

    it('records yielded by scan are not aliased to the store', async () => {
      await engine.put('alias/scan', pattern(64, 8));
      for await (const entry of engine.scan(16)) entry.record.fill(0xcc);
      assertBytes(await engine.get('alias/scan'), pattern(64, 8), 'after mutating scanned records');
    });

    it('calls after close reject with StorageError', async () => {
      const other = await make();
      try {
        await other.engine.open();
        await other.engine.put('k', pattern(4, 9));
        await other.engine.close();
        await assert.rejects(other.engine.get('k'), StorageError);
        await assert.rejects(other.engine.put('k', pattern(4, 9)), StorageError);
        await assert.rejects(other.engine.putMany([{ key: 'k', record: pattern(4, 9) }]), StorageError);
        await assert.rejects(other.engine.putMany([]), StorageError);
        await assert.rejects(other.engine.delete('k'), StorageError);
        await assert.rejects(collect(other.engine.scan(16)), StorageError);
        await assert.rejects(other.engine.count(), StorageError);
        await assert.rejects(collect(other.engine.scanRange({ fromHash: 0n, toHash: hashMax })), StorageError);
        await assert.rejects(other.engine.open(), StorageError);
      } finally {
        await other.engine.close();
        await other.cleanup();
      }
    });

    describe('scanRange', () => {
      // The keys these tests write; assertions compare against every key the engine holds (scan).
      const rangeKeys = [
        ...Array.from({ length: 300 }, (_, i) => `range/${i}`),
        ...oddKeys().map((key) => `range/${key}`),
        'range:with:colons',
        ':',
        'a:b',
        'a:b:',
        '\uff61halfwidth',
        longestKey(),
      ];
      let sortedPresent: HashCursor[] = [];

      before(async () => {
        await Promise.all(rangeKeys.map((key, i) => engine.put(key, pattern(20, 400 + i))));
        sortedPresent = (await collect(engine.scan(64))).map(({ key }) => ({ hash: keyHash(key), key })).sort(compareCursors);
      });

      it('scanRange over every hash yields every key once, in (hash, key bytes) order, with its hash and record', async () => {
        const found = await collect(engine.scanRange({ fromHash: 0n, toHash: hashMax }, { batchSize: 16 }));
        assert.deepEqual(found.map(cursorOf), sortedPresent);
        for (const entry of found) {
          assert.equal(entry.hash, keyHash(entry.key), `hash of ${JSON.stringify(entry.key)}`);
          assertBytes(await engine.get(entry.key), entry.record, `ranged ${JSON.stringify(entry.key)}`);
        }
      });

      it('scanRange yields exactly the keys whose hash is in range, at the ends of the hash space and for a single hash', async () => {
        const someHash = keyHash('range/7');
        const quarter = hashMax / 4n;
        const ranges: HashRange[] = [
          { fromHash: 0n, toHash: quarter },
          { fromHash: quarter + 1n, toHash: hashMax - quarter },
          { fromHash: hashMax - quarter + 1n, toHash: hashMax },
          { fromHash: 0n, toHash: 0n },
          { fromHash: hashMax, toHash: hashMax },
          { fromHash: someHash, toHash: someHash },
          { fromHash: 0n, toHash: someHash - 1n },
          { fromHash: someHash + 1n, toHash: hashMax },
        ];
        for (const range of ranges) {
          for (const batchSize of [1, 7, 10_000]) {
            const found = await collect(engine.scanRange(range, { batchSize }));
            assert.deepEqual(found.map(cursorOf), inRange(sortedPresent, range), `range ${describeRange(range)}, batches of ${batchSize}`);
          }
        }
        const single = await collect(engine.scanRange({ fromHash: someHash, toHash: someHash }));
        assert.deepEqual(single.map(({ key }) => key), ['range/7'], 'a single hash yields its key');
      });

      it('scanRange over hashes between two present keys yields nothing', async () => {
        const gap = sortedPresent.findIndex((entry, i) => i > 0 && entry.hash - sortedPresent[i - 1]!.hash > 2n);
        assert.ok(gap > 0, 'some two adjacent hashes are more than 2 apart');
        const range = { fromHash: sortedPresent[gap - 1]!.hash + 1n, toHash: sortedPresent[gap]!.hash - 1n };
        assert.deepEqual(await collect(engine.scanRange(range, { batchSize: 1 })), []);
      });

      it('scanRange resumed after the last entry yielded yields the rest exactly once, for every batch size', async () => {
        const range = { fromHash: hashMax / 8n, toHash: hashMax - hashMax / 8n };
        const whole = inRange(sortedPresent, range);
        assert.ok(whole.length > 100, `the range holds ${whole.length} keys`);
        for (const batchSize of [1, 5, 64, 10_000]) {
          for (const stopAfter of [1, 37, whole.length - 1, whole.length]) {
            const first = await take(engine.scanRange(range, { batchSize }), stopAfter);
            const rest = await collect(engine.scanRange(range, { batchSize, after: cursorOf(first.at(-1)!) }));
            assert.deepEqual([...first, ...rest].map(cursorOf), whole, `stopped after ${stopAfter}, batches of ${batchSize}`);
          }
        }
      });

      it('scanRange after a cursor of the same hash and a smaller key yields that key; of the key itself or a larger key, not', async () => {
        const key = 'range/42';
        const hash = keyHash(key);
        const range = { fromHash: hash, toHash: hash };
        const keysAfter = async (after: HashCursor) => (await collect(engine.scanRange(range, { after }))).map((entry) => entry.key);
        assert.deepEqual(await keysAfter({ hash, key: 'range/4' }), [key], 'a byte prefix is smaller');
        assert.deepEqual(await keysAfter({ hash, key: '' }), [key], 'the empty key is smallest');
        assert.deepEqual(await keysAfter({ hash, key }), [], 'the cursor itself is excluded');
        assert.deepEqual(await keysAfter({ hash, key: `${key}\u0000` }), [], 'a longer key is larger');
        assert.deepEqual(await keysAfter({ hash: hash - 1n, key: '\uffff' }), [key], 'a smaller hash comes first whatever its key');
        assert.deepEqual(await keysAfter({ hash: 0n, key: '' }), [key], 'a cursor before the range yields the range, not the keys between');
        assert.deepEqual(await keysAfter({ hash: hash + 1n, key: '' }), [], 'a cursor past the range yields nothing');
      });

      it('scanRange compares keys of the same hash by UTF-8 bytes, not UTF-16 code units', async () => {
        // U+FF61 is EF BD A1 in UTF-8, after U+FF00 (EF BC 80) and before U+1F389 (F0 9F 8E 89), whose
        // UTF-16 form (D83C DF89) sorts before U+FF61.
        const key = '\uff61halfwidth';
        const hash = keyHash(key);
        const range = { fromHash: hash, toHash: hash };
        assert.deepEqual((await collect(engine.scanRange(range, { after: { hash, key: '\uff00' } }))).map((e) => e.key), [key]);
        assert.deepEqual((await collect(engine.scanRange(range, { after: { hash, key: '\u{1F389}' } }))).map((e) => e.key), []);
      });

      it('scanRange yields every key present for the whole scan exactly once, in order, while keys are put and deleted', async () => {
        const range = { fromHash: 0n, toHash: hashMax };
        const doomed = rangeKeys.filter((_, i) => i % 5 === 0 && i < 300);
        const overwritten = rangeKeys.filter((_, i) => i % 5 === 1 && i < 300);
        const found: HashedEntry[] = [];
        for await (const entry of engine.scanRange(range, { batchSize: 4 })) {
          found.push(entry);
          if (found.length !== 10) continue;
          await Promise.all(doomed.map((key) => engine.delete(key)));
          await Promise.all(overwritten.map((key) => engine.put(key, pattern(30, 9))));
          await Promise.all(Array.from({ length: 40 }, (_, i) => engine.put(`range/new/${i}`, pattern(8, i))));
        }
        assertNoDuplicates(found);
        for (let i = 1; i < found.length; i += 1) {
          assert.ok(compareCursors(cursorOf(found[i - 1]!), cursorOf(found[i]!)) < 0, `out of order at ${i}`);
        }
        const seen = new Set(found.map((entry) => entry.key));
        const doomedSet = new Set(doomed);
        for (const { key } of sortedPresent) {
          if (!doomedSet.has(key)) assert.ok(seen.has(key), `scanRange missed ${JSON.stringify(key)}`);
        }
      });

      it('records yielded by scanRange are not aliased to the store', async () => {
        const hash = keyHash('range/3');
        for await (const entry of engine.scanRange({ fromHash: hash, toHash: hash })) entry.record.fill(0xbb);
        assertBytes(await engine.get('range/3'), pattern(20, 403), 'after mutating ranged records');
      });

      it('scanRange of a range that wraps past zero, or with a batch size below one, is refused', async () => {
        await assert.rejects(collect(engine.scanRange({ fromHash: 10n, toHash: 9n })), { name: 'AssertionError' });
        await assert.rejects(collect(engine.scanRange({ fromHash: 0n, toHash: hashMax + 1n })), { name: 'AssertionError' });
        await assert.rejects(collect(engine.scanRange({ fromHash: 0n, toHash: 1n }, { batchSize: 0 })), { name: 'AssertionError' });
      });
    });

    // Last: it replaces the suite's engine with the reopened one.
    it('a reopened engine finds everything', async (t) => {
      const reopen = fixture?.reopen;
      if (reopen === undefined) {
        t.skip('this engine is not durable');
        return;
      }
      const expected = await writeForReopen(engine);
      await engine.close();
      engine = await reopen();
      await engine.open();
      for (const [key, record] of expected) assertBytes(await engine.get(key), record, `reopened ${JSON.stringify(key)}`);
      assert.equal(await engine.get('reopen/deleted'), undefined, 'a delete survives reopening');
      const found = await collect(engine.scan(16));
      assertNoDuplicates(found);
      const seen = new Set(found.map((entry) => entry.key));
      for (const key of expected.keys()) assert.ok(seen.has(key), `scan after reopen missed ${JSON.stringify(key)}`);
      const ranged = await collect(engine.scanRange({ fromHash: 0n, toHash: hashMax }, { batchSize: 16 }));
      assert.deepEqual(ranged.map(cursorOf), found.map(({ key }) => ({ hash: keyHash(key), key })).sort(compareCursors));
    });
  });
}

/** Deletes some keys, overwrites others and adds new ones, in the middle of a scan. */
async function mutateDuringScan(engine: StorageEngine, keys: string[], deleted: Set<string>): Promise<void> {
  await Promise.all([...deleted].map((key) => engine.delete(key)));
  await Promise.all(keys.filter((_, i) => i % 6 === 1).map((key) => engine.put(key, pattern(200, 77))));
  await Promise.all(Array.from({ length: 40 }, (_, i) => engine.put(`busy/new/${i}`, pattern(24, i))));
}

async function writeForReopen(engine: StorageEngine): Promise<Map<string, Uint8Array>> {
  const expected = new Map<string, Uint8Array>([
    ['reopen/empty', new Uint8Array(0)],
    ['reopen/large', pattern(largeRecordBytes, 10)],
    [longestKey(), pattern(32, 11)],
    ...oddKeys().map((key, i): [string, Uint8Array] => [`reopen/${key}`, pattern(16, 200 + i)]),
    ...Array.from({ length: 100 }, (_, i): [string, Uint8Array] => [`reopen/${i}`, pattern(48, 300 + i)]),
  ]);
  for (const [key, record] of expected) await engine.put(key, record);
  await engine.put('reopen/deleted', pattern(8, 12));
  await engine.delete('reopen/deleted');
  return expected;
}

function oddKeys(): string[] {
  return [
    'user.42',
    'user.42.',
    'with space',
    ' leading and trailing ',
    'a/b/c',
    '/leading/slash',
    'glob*?[x]\\',
    'percent %s %d',
    'tab\tand\nnewline',
    'ключ',
    '日本語のキー',
    'emoji 🎉🚀',
    'é',
    'e\u0301',
  ];
}

/** Four-byte, two-byte and one-byte characters adding up to exactly keyBytesMax. */
function longestKey(): string {
  const key = '🎉'.repeat(200) + 'é'.repeat(100) + 'k'.repeat(limits.keyBytesMax - 800 - 200);
  assert.equal(Buffer.byteLength(key, 'utf8'), limits.keyBytesMax);
  return key;
}

/** Deterministic bytes that differ by seed and by position. */
function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 1) bytes[i] = (i * 31 + seed * 17 + (i >>> 8)) & 0xff;
  return bytes;
}

async function collect<T>(entries: AsyncIterable<T>): Promise<T[]> {
  const found: T[] = [];
  for await (const entry of entries) found.push(entry);
  return found;
}

/** The first `count` entries, leaving the iteration unfinished as a handoff that stops would. */
async function take<T>(entries: AsyncIterable<T>, count: number): Promise<T[]> {
  const found: T[] = [];
  for await (const entry of entries) {
    found.push(entry);
    if (found.length === count) break;
  }
  return found;
}

function cursorOf(entry: HashedEntry | HashCursor): HashCursor {
  return { hash: entry.hash, key: entry.key };
}

/** The contract's order, written out independently of the engines' helpers. */
function compareCursors(a: HashCursor, b: HashCursor): number {
  if (a.hash !== b.hash) return a.hash < b.hash ? -1 : 1;
  return Buffer.compare(Buffer.from(a.key, 'utf8'), Buffer.from(b.key, 'utf8'));
}

function inRange(sorted: HashCursor[], range: HashRange): HashCursor[] {
  return sorted.filter(({ hash }) => range.fromHash <= hash && hash <= range.toHash);
}

function describeRange(range: HashRange): string {
  return `${range.fromHash.toString(16)}..${range.toHash.toString(16)}`;
}

function assertNoDuplicates(entries: StorageEntry[]): void {
  const counts = new Map<string, number>();
  for (const { key } of entries) counts.set(key, (counts.get(key) ?? 0) + 1);
  const repeated = [...counts].filter(([, count]) => count > 1).map(([key]) => key);
  assert.deepEqual(repeated, [], 'scan yielded these keys more than once');
}

function assertBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: expected ${expected.byteLength} bytes, got ${String(actual)}`);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(e)) return;
  const firstDifference = a.findIndex((byte, i) => byte !== e[i]);
  assert.fail(`${what}: ${a.byteLength} bytes differ from the expected ${e.byteLength} (first at index ${firstDifference})`);
}
