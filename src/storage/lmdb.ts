/**
 * The embedded durable engine (LMDB through lmdb-js), the default for
 * `npm start`. When a put resolves depends on the sync mode (engine.ts SyncMode):
 *
 * - `always`: once the transaction holding it is fsynced. This is group
 *   commit, and lmdb-js does it by itself: writes are queued for one writer
 *   thread, which begins a transaction, applies everything queued, and
 *   commits (with its fsync) when it finds the queue empty; whatever is
 *   queued meanwhile, from any number of event-loop turns, goes into the
 *   next transaction, and each write's promise resolves when the commit
 *   holding it returns (the `commits` counter and a test show it).
 * - `periodic`: the environment is opened with MDB_NOSYNC, so a commit
 *   writes its pages to the OS and a put resolves without an fsync; a timer
 *   fsyncs the environment (mdb_env_sync) every `syncIntervalMs` when
 *   anything was committed since the last one, and close() fsyncs last.
 *   With no fsync to wait for, the writes of one event-loop turn (puts,
 *   putMany, deletes, in order) are committed together at its end by one
 *   synchronous transaction on this thread (commitQueued): about a hundred
 *   microseconds for a turn's writes, where handing them to lmdb-js's
 *   writer thread and back cost more than the work (issue 11, in the
 *   README's lever table).
 *
 * Layout: records live in the named sub-database `hashOrderDbName`, under the
 * key's 64-bit ring hash (8 bytes, big-endian) followed by its UTF-8 bytes, so
 * LMDB's byte order is hash order and a ring range is one ordered range read
 * (scanRange). Directories written before this layout hold plain string keys
 * in the root database; open() moves them over first (migrateToHashOrder).
 *
 * lmdb-js grows the memory map by itself when it fills, so MDB_MAP_FULL
 * never reaches us on its own: the configured size is enforced here as a
 * cap on live pages, and a write that would cross it is refused.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { open, type Database, type RootDatabase } from 'lmdb';
import { StorageError } from '../core/errors.js';
import { limits } from '../core/limits.js';
import { keyHash } from '../core/ring.js';
import { SyncMode, type HashCursor, type HashedEntry, type HashRange, type StorageEngine, type StorageEntry } from './engine.js';
import { checkRangeArgs, hashBytes, hashMax, rangeBatchSizeDefault, startOf } from './hash_order.js';

export interface LmdbEngineOptions {
  /** Directory of the environment; created if missing. */
  path: string;
  /** Most bytes of live pages the environment may hold. */
  mapSizeBytes: number;
  /** When a write resolves (default always: after its fsync). */
  sync?: SyncMode;
  /** With sync periodic: time between two fsyncs of the environment (default syncIntervalMsDefault). */
  syncIntervalMs?: number;
}

export const syncIntervalMsDefault = 1000;

/** Entries read per range query: one short read transaction per batch keeps memory bounded. */
const scanBatchSizeDefault = 256;
/**
 * The sub-database of the hash-ordered layout. Its name starts below byte 27,
 * and lmdb-js's ordered-binary encoding starts every string key at byte 27 or
 * above, so no key of the old layout can be this name, and the old layout's
 * keys are exactly the root's keys from '' on.
 */
export const hashOrderDbName = '\u0001hash-order';
/** Old-layout entries moved per transaction on open: bounded by count and by bytes held in memory. */
const migrationBatchEntriesMax = 2_000;
const migrationBatchBytesMax = 32 * 1024 * 1024;
/** Bytes of the hash prefix of every key in the hash-ordered layout. */
const hashPrefixBytes = 8;
/** Node header, key and page slack a single entry costs beyond its record (LMDB's B+tree). */
const entryOverheadBytes = 64;
/**
 * getStats() costs a read transaction and was 7% of a node's CPU when called
 * for every put: the used size is re-read at most this often, and in between
 * estimated from it plus the bytes written since (an overestimate, since
 * overwrites reuse pages); near the cap it is always re-read.
 */
const statsRefreshMs = 1000;
const estimateTrustedFraction = 0.8;
/** How long to wait for the real cause of a failed commit before reporting the generic one. */
const commitCauseWaitMs = 1000;

/** One change of a write: `value` stored under the LMDB key `at`, or `at` removed (undefined). */
interface Row {
  at: Buffer;
  value: Buffer | undefined;
}

/** A write waiting for the end of its event-loop turn (periodic mode). */
interface QueuedWrite {
  rows: readonly Row[];
  resolve(): void;
  reject(err: unknown): void;
}

/** The fields of lmdb-js getStats() this engine reads. */
interface LmdbStats {
  pageSize: number;
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
  entryCount: number;
}

export class LmdbEngine implements StorageEngine {
  readonly kind = 'lmdb';
  private readonly options: Required<LmdbEngineOptions>;
  private committedCount = 0;
  private syncedCount = 0;
  private commitsAtLastSync = 0;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncRunning: Promise<void> | undefined;
  /** Set when a periodic fsync failed: acknowledged writes may not be on disk, so later writes are refused. */
  private syncFailure: StorageError | undefined;
  /** The environment's root database: the old layout's records until open() has moved them. */
  private root: RootDatabase<Buffer, string> | undefined;
  /** The records, keyed by storageKey(key). */
  private db: Database<Buffer, Buffer> | undefined;
  private closed = false;
  /** Bytes of puts admitted but not yet committed, so concurrent puts cannot overshoot the cap together. */
  private pendingBytes = 0;
  /** Used bytes at the last getStats(), when, and bytes committed since. */
  private usedAtRefresh = 0;
  private refreshedAtMs = Number.NEGATIVE_INFINITY;
  private writtenSinceRefresh = 0;
  /** LMDB's largest key in bytes (storage keys included), read at open. */
  private keyBytesMax = Number.POSITIVE_INFINITY;
  /** Periodic mode: the writes of this event-loop turn, in order, for commitQueued at its end. */
  private queued: QueuedWrite[] = [];

  constructor(options: LmdbEngineOptions) {
    assert.ok(options.mapSizeBytes > 0, `lmdb mapSizeBytes must be positive, got ${options.mapSizeBytes}`);
    this.options = { sync: SyncMode.Always, syncIntervalMs: syncIntervalMsDefault, ...options };
    assert.ok(Object.values(SyncMode).includes(this.options.sync), `lmdb sync must be always or periodic, got ${this.options.sync}`);
    assert.ok(Number.isInteger(this.options.syncIntervalMs) && this.options.syncIntervalMs > 0, `lmdb syncIntervalMs must be a positive integer, got ${this.options.syncIntervalMs}`);
  }

  /** Write transactions committed since open (lmdb-js's aftercommit event; in periodic mode commitQueued's): fewer than writes when commits are grouped. */
  get commits(): number {
    return this.committedCount;
  }

  /** Fsyncs of the environment this engine ran (periodic mode; in always mode each commit syncs itself). */
  get syncs(): number {
    return this.syncedCount;
  }

  async open(): Promise<void> {
    if (this.closed) throw new StorageError('lmdb engine is closed');
    if (this.db !== undefined) return;
    let root: RootDatabase<Buffer, string> | undefined;
    try {
      await mkdir(this.options.path, { recursive: true });
      root = open<Buffer, string>({
        path: this.options.path,
        encoding: 'binary',
        mapSize: this.options.mapSizeBytes,
        // lmdb-js defaults to overlappingSync on Linux, which resolves a put at commit and
        // flushes later; in always mode a replica acknowledges a write only once it is on disk.
        overlappingSync: false,
        // periodic: commit to the OS only (MDB_NOSYNC); the timer below fsyncs.
        noSync: this.options.sync === SyncMode.Periodic,
      });
      root.on('aftercommit', () => {
        this.committedCount++;
      });
      const db = root.openDB<Buffer, Buffer>(hashOrderDbName, { keyEncoding: 'binary', encoding: 'binary' });
      // lmdb-js's maximum key size (1978 bytes with its defaults); not in its typings.
      this.keyBytesMax = (db as unknown as { maxKeySize?: number }).maxKeySize ?? Number.POSITIVE_INFINITY;
      if (hashPrefixBytes + limits.keyBytesMax > this.keyBytesMax) {
        throw new StorageError(`LMDB's maximum key size ${this.keyBytesMax} is under the ${hashPrefixBytes + limits.keyBytesMax} bytes a key can take (hash prefix and limits.keyBytesMax)`);
      }
      await migrateToHashOrder(root, db);
      this.root = root;
      this.db = db;
      if (this.options.sync === SyncMode.Periodic) {
        this.syncTimer = setInterval(() => void this.syncIfCommitted(), this.options.syncIntervalMs);
        this.syncTimer.unref();
      }
    } catch (err) {
      await root?.close().catch(() => undefined);
      throw new StorageError(`lmdb open of ${this.options.path} failed: ${describe(err)}`, { cause: err });
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.getSync(key);
  }

  /** lmdb-js reads synchronously (from the map, in its cached read transaction): get is this. */
  getSync(key: string): Uint8Array | undefined {
    const db = this.ready();
    try {
      // With encoding 'binary' lmdb-js returns a fresh copy, never a view of the map.
      return db.get(lookupKey(key));
    } catch (err) {
      throw this.failure('get', err);
    }
  }

  async put(key: string, record: Uint8Array): Promise<void> {
    const db = this.writable();
    const bytes = hashPrefixBytes + Buffer.byteLength(key) + record.byteLength + entryOverheadBytes;
    this.admit(db, bytes);
    try {
      // lmdb-js reads the value's memory on its writer thread; a copy keeps later caller edits out.
      await this.write(db, [{ at: storageKey(key), value: Buffer.from(record) }]);
      this.writtenSinceRefresh += bytes;
    } catch (err) {
      throw this.failure('put', await commitCause(err));
    } finally {
      this.pendingBytes -= bytes;
    }
  }

  /**
   * One write transaction for the whole batch, so one commit and one sync
   * rather than whatever batching the event loop gives single puts; all or
   * nothing. The map cap admits the batch's bytes together.
   */
  async putMany(entries: readonly StorageEntry[]): Promise<void> {
    const db = this.writable();
    if (entries.length === 0) return;
    let bytes = 0;
    for (const { key, record } of entries) bytes += hashPrefixBytes + Buffer.byteLength(key) + record.byteLength + entryOverheadBytes;
    this.admit(db, bytes);
    try {
      // The callback runs later, when the writer is free: copies keep caller edits made meanwhile out,
      // and keys encoded here keep the write lock short.
      await this.write(db, entries.map(({ key, record }) => ({ at: storageKey(key), value: Buffer.from(record) })));
      this.writtenSinceRefresh += bytes;
    } catch (err) {
      throw this.failure('put', await commitCause(err));
    } finally {
      this.pendingBytes -= bytes;
    }
  }

  async delete(key: string): Promise<void> {
    const db = this.writable();
    try {
      await this.write(db, [{ at: storageKey(key), value: undefined }]);
    } catch (err) {
      throw this.failure('delete', err);
    }
  }

  /**
   * Applies `rows` in one transaction, resolving once it is committed: in
   * always mode by lmdb-js's writer thread (a row alone, more in one
   * transaction callback), in periodic mode queued for the transaction that
   * commits this event-loop turn's writes.
   */
  private write(db: Database<Buffer, Buffer>, rows: readonly Row[]): Promise<unknown> {
    // Refused here, before anything is queued: LMDB would fail the key inside lmdb-js's write path
    // (in periodic mode the whole turn's transaction with it), and a later close() then crashed
    // the process from lmdb-js's queued writer start. Keys a node accepts always fit (open()).
    for (const { at } of rows) {
      if (at.length > this.keyBytesMax) throw new StorageError(`lmdb key of ${at.length} bytes is over LMDB's maximum key size of ${this.keyBytesMax} (${this.options.path})`);
    }
    if (this.options.sync === SyncMode.Periodic) {
      return new Promise<void>((resolve, reject) => {
        if (this.queued.length === 0) setImmediate(() => this.commitQueued());
        this.queued.push({ rows, resolve, reject });
      });
    }
    // lmdb-js's own promise, awaited by the caller: no promise of ours on the always-mode hot path.
    const apply = ({ at, value }: Row) => (value === undefined ? db.remove(at) : db.put(at, value));
    return rows.length === 1 ? apply(rows[0]!) : db.transaction(() => rows.forEach((r) => void apply(r)));
  }

  /**
   * Applies the queued writes in order in one synchronous write transaction
   * and commits it (to the OS: MDB_NOSYNC), then resolves them; when any
   * fails the transaction is aborted and all of them reject, as one
   * lmdb-js batch would. close() runs it for what is still queued.
   */
  private commitQueued(): void {
    const batch = this.queued;
    if (batch.length === 0) return;
    this.queued = [];
    try {
      const db = this.writable(); // a periodic fsync may have failed since they were queued
      db.transactionSync(() => {
        for (const w of batch) for (const { at, value } of w.rows) void (value === undefined ? db.removeSync(at) : db.putSync(at, value));
      });
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    this.committedCount++;
    for (const w of batch) w.resolve();
  }

  /** The sub-database's B-tree keeps its entry count: O(1), where getCount() would walk every key. */
  async count(): Promise<number> {
    const db = this.ready();
    try {
      db.resetReadTxn(); // the cached read transaction may predate the last commits
      return (db.getStats() as LmdbStats).entryCount;
    } catch (err) {
      throw this.failure('count', err);
    }
  }

  /** The whole key space is one hash range: every hash from 0 to 2^64-1. */
  async *scan(batchSize = scanBatchSizeDefault): AsyncIterable<StorageEntry> {
    assert.ok(Number.isInteger(batchSize) && batchSize > 0, `scan batch size must be a positive integer, got ${batchSize}`);
    for await (const { key, record } of this.scanRange({ fromHash: 0n, toHash: hashMax }, { batchSize })) yield { key, record };
  }

  /**
   * One bounded range read per batch, each in the read transaction current
   * when it starts. Keys come in (hash, key bytes) order, so resuming strictly
   * after the last LMDB key read yields each survivor exactly once.
   */
  async *scanRange(range: HashRange, opts: { after?: HashCursor; batchSize?: number } = {}): AsyncIterable<HashedEntry> {
    const batchSize = opts.batchSize ?? rangeBatchSizeDefault;
    checkRangeArgs(range, batchSize);
    this.ready();
    const start = startOf(range, opts.after);
    if (start === undefined) return;
    let from = start.after === undefined ? hashBytes(start.hash) : storageKey(start.after, start.hash);
    let exclusiveStart = start.after !== undefined;
    // The end is exclusive: the first key of the next hash, or none past the last hash.
    const end = range.toHash === hashMax ? {} : { end: hashBytes(range.toHash + 1n) };
    for (;;) {
      const batch = this.readRange({ start: from, exclusiveStart, ...end, limit: batchSize });
      for (const { key, value } of batch) yield { ...splitStorageKey(key), record: value };
      const last = batch.at(-1);
      if (last === undefined || batch.length < batchSize) return;
      from = last.key;
      exclusiveStart = true;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.commitQueued(); // writes of this turn before close() was called
    this.closed = true;
    const root = this.root;
    this.root = undefined;
    this.db = undefined;
    clearInterval(this.syncTimer);
    if (root === undefined) return;
    try {
      if (this.options.sync === SyncMode.Periodic) {
        // Every write begun before close() committed, then one last fsync: a clean stop loses nothing.
        await root.committed;
        await this.syncRunning;
        await syncEnvironment(root);
        this.syncedCount++;
      }
      // Closing the root closes the environment and its sub-databases.
      await root.close();
    } catch (err) {
      throw this.failure('close', err);
    }
  }

  private readRange(range: { start: Buffer; exclusiveStart: boolean; end?: Buffer; limit: number }): { key: Buffer; value: Buffer }[] {
    const db = this.ready();
    try {
      return Array.from(db.getRange(range), ({ key, value }) => ({ key, value }));
    } catch (err) {
      throw this.failure('scan', err);
    }
  }

  /** Refuses a put that would take live pages past the configured size, as a fixed LMDB map would. */
  private admit(db: Database<Buffer, Buffer>, bytes: number): void {
    const fits = (used: number, cap: number) => used + this.pendingBytes + bytes <= cap;
    let usedBytes = this.usedAtRefresh + this.writtenSinceRefresh;
    // The estimate ignores page rounding and B-tree splits, so it is trusted only well below the cap.
    if (Date.now() - this.refreshedAtMs > statsRefreshMs || !fits(usedBytes, this.options.mapSizeBytes * estimateTrustedFraction)) {
      usedBytes = this.usedBytes(db);
      this.usedAtRefresh = usedBytes;
      this.refreshedAtMs = Date.now();
      this.writtenSinceRefresh = 0;
    }
    if (!fits(usedBytes, this.options.mapSizeBytes)) {
      throw new StorageError(
        `lmdb map is full: ${usedBytes} bytes used, ${this.pendingBytes} pending, this write needs ${bytes}, ` +
          `mapSizeBytes is ${this.options.mapSizeBytes} (${this.options.path})`,
      );
    }
    this.pendingBytes += bytes;
  }

  /**
   * Live pages only: LMDB reuses the pages on its free list for new writes, so
   * a delete makes room. The records' sub-database plus the root (which holds
   * its name, and the old layout until migrated).
   */
  private usedBytes(db: Database<Buffer, Buffer>): number {
    try {
      db.resetReadTxn(); // the cached read transaction may predate the last commits
      const stats = db.getStats() as LmdbStats & { root: LmdbStats };
      return (livePages(stats) + livePages(stats.root)) * stats.pageSize;
    } catch (err) {
      throw this.failure('stat', err);
    }
  }

  /**
   * Periodic mode's timer: one fsync at a time, and none when nothing was
   * committed since the last. The pages of every commit that returned before
   * the fsync began are on disk once it resolves.
   */
  private async syncIfCommitted(): Promise<void> {
    const root = this.root;
    if (root === undefined || this.syncRunning !== undefined || this.syncFailure !== undefined) return;
    if (this.committedCount === this.commitsAtLastSync) return;
    const commits = this.committedCount;
    this.syncRunning = syncEnvironment(root).then(
      () => {
        this.commitsAtLastSync = commits;
        this.syncedCount++;
      },
      (err: unknown) => {
        // After a failed fsync the kernel may have dropped the dirty pages, and a later fsync can
        // succeed without them (PostgreSQL's fsyncgate): refuse writes until the node restarts.
        this.syncFailure = new StorageError(`lmdb periodic sync of ${this.options.path} failed, writes refused until restart: ${describe(err)}`, { cause: err });
      },
    );
    try {
      await this.syncRunning;
    } finally {
      this.syncRunning = undefined;
    }
  }

  private writable(): Database<Buffer, Buffer> {
    const db = this.ready();
    if (this.syncFailure !== undefined) throw this.syncFailure;
    return db;
  }

  private ready(): Database<Buffer, Buffer> {
    if (this.closed) throw new StorageError('lmdb engine is closed');
    if (this.db === undefined) throw new StorageError('lmdb engine is not open');
    return this.db;
  }

  private failure(op: string, err: unknown): StorageError {
    if (err instanceof StorageError) return err;
    const text = describe(err);
    if (text.includes('MDB_MAP_FULL')) {
      return new StorageError(`lmdb map is full: mapSizeBytes is ${this.options.mapSizeBytes} (${this.options.path})`, { cause: err });
    }
    return new StorageError(`lmdb ${op} failed: ${text}`, { cause: err });
  }
}

/**
 * The key in the hash-ordered layout: 8 bytes of keyHash, big-endian, then
 * the key's UTF-8 bytes. One allocation (from Node's pool when small): it was
 * three, one of them a zero-filled 8-byte buffer of its own.
 */
export function storageKey(key: string, hash = keyHash(key)): Buffer {
  const bytes = Buffer.allocUnsafe(hashPrefixBytes + Buffer.byteLength(key, 'utf8'));
  return bytes.subarray(0, layStorageKey(bytes, key, hash));
}

/** Lays `key`'s storage key out at the start of `into` (room enough); its length. */
function layStorageKey(into: Buffer, key: string, hash: bigint): number {
  into.writeBigUInt64BE(hash, 0);
  return hashPrefixBytes + into.write(key, hashPrefixBytes, 'utf8');
}

/** Where lookupKey lays keys out: room for any key a node accepts (limits.keyBytesMax UTF-8 bytes), at up to 3 bytes per UTF-16 unit. */
const lookupScratch = Buffer.allocUnsafe(hashPrefixBytes + 3 * limits.keyBytesMax);

/**
 * storageKey in one buffer reused by every call, for a synchronous read only:
 * lmdb-js copies the key before db.get returns. A key that might not fit
 * (more UTF-16 units than limits.keyBytesMax) gets its own buffer.
 */
export function lookupKey(key: string): Buffer {
  if (hashPrefixBytes + 3 * key.length > lookupScratch.length) return storageKey(key);
  return lookupScratch.subarray(0, layStorageKey(lookupScratch, key, keyHash(key)));
}

function splitStorageKey(stored: Uint8Array): { key: string; hash: bigint } {
  const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  return { hash: bytes.readBigUInt64BE(0), key: bytes.toString('utf8', hashPrefixBytes) };
}

/** mdb_env_sync(env, force=1) on a libuv thread: fdatasync of the data file, also with MDB_NOSYNC. */
function syncEnvironment(root: RootDatabase<Buffer, string>): Promise<void> {
  const env = root as unknown as { sync(callback: (err?: unknown) => void): void };
  return new Promise((resolve, reject) => env.sync((err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve())));
}

function livePages(stats: LmdbStats): number {
  return stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages;
}

/**
 * Moves the old layout (string keys in the root) into the hash-ordered
 * sub-database, a bounded batch per transaction: each batch copies its
 * entries and deletes them from the root atomically, so a node killed midway
 * holds every key in exactly one layout and the next open simply carries on
 * from what is left in the root. Once the root holds no string key this is
 * one empty range read per open.
 */
async function migrateToHashOrder(root: RootDatabase<Buffer, string>, db: Database<Buffer, Buffer>): Promise<void> {
  for (;;) {
    const moved = await root.transaction(() => {
      const batch: { key: string; value: Buffer }[] = [];
      let bytes = 0;
      // '' is the smallest string key; the sub-database's own entry in the root sorts before it.
      for (const { key, value } of root.getRange({ start: '', limit: migrationBatchEntriesMax })) {
        batch.push({ key, value });
        bytes += Buffer.byteLength(key) + value.byteLength;
        if (bytes >= migrationBatchBytesMax) break;
      }
      // A key already in the new layout too can only come from an older GoD-DB writing this
      // directory after a migration began, so the root's record is the later one and replaces it.
      for (const { key, value } of batch) {
        db.put(storageKey(key), value);
        root.remove(key);
      }
      return batch.length;
    });
    if (moved === 0) return;
  }
}

/**
 * lmdb-js rejects every write of a failed commit with a generic error whose
 * `commitError` promise holds the real one (rejected in the same tick); reading
 * it also keeps that promise from rejecting unhandled.
 */
async function commitCause(err: unknown): Promise<unknown> {
  const commitError = (err as { commitError?: Promise<unknown> } | null)?.commitError;
  if (commitError === undefined) return err;
  const abort = new AbortController();
  const fallback = delay(commitCauseWaitMs, err, { signal: abort.signal }).catch(() => err);
  try {
    return await Promise.race([commitError.then(() => err, (real: unknown) => real), fallback]);
  } finally {
    abort.abort();
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
