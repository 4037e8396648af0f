/**
 * The embedded durable engine (LMDB through lmdb-js), the default for
 * `npm start`. A put resolves only once its transaction is synced to disk.
 *
 * lmdb-js grows the memory map by itself when it fills, so MDB_MAP_FULL
 * never reaches us on its own: the configured size is enforced here as a
 * cap on live pages, and a write that would cross it is refused.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { open, type RootDatabase } from 'lmdb';
import { StorageError } from '../core/errors.js';
import type { StorageEngine, StorageEntry } from './engine.js';

export interface LmdbEngineOptions {
  /** Directory of the environment; created if missing. */
  path: string;
  /** Most bytes of live pages the environment may hold. */
  mapSizeBytes: number;
}

/** Entries read per range query: one short read transaction per batch keeps memory bounded. */
const scanBatchSizeDefault = 256;
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
  private readonly options: LmdbEngineOptions;
  private db: RootDatabase<Buffer, string> | undefined;
  private closed = false;
  /** Bytes of puts admitted but not yet committed, so concurrent puts cannot overshoot the cap together. */
  private pendingBytes = 0;
  /** Used bytes at the last getStats(), when, and bytes committed since. */
  private usedAtRefresh = 0;
  private refreshedAtMs = Number.NEGATIVE_INFINITY;
  private writtenSinceRefresh = 0;

  constructor(options: LmdbEngineOptions) {
    assert.ok(options.mapSizeBytes > 0, `lmdb mapSizeBytes must be positive, got ${options.mapSizeBytes}`);
    this.options = { ...options };
  }

  async open(): Promise<void> {
    if (this.closed) throw new StorageError('lmdb engine is closed');
    if (this.db !== undefined) return;
    try {
      await mkdir(this.options.path, { recursive: true });
      this.db = open<Buffer, string>({
        path: this.options.path,
        encoding: 'binary',
        mapSize: this.options.mapSizeBytes,
        // lmdb-js defaults to overlappingSync on Linux, which resolves a put at commit and
        // flushes later; a replica acknowledges a write only once it is on disk.
        overlappingSync: false,
      });
    } catch (err) {
      throw new StorageError(`lmdb open of ${this.options.path} failed: ${describe(err)}`, { cause: err });
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const db = this.ready();
    try {
      // With encoding 'binary' lmdb-js returns a fresh copy, never a view of the map.
      return db.get(key);
    } catch (err) {
      throw this.failure('get', err);
    }
  }

  async put(key: string, record: Uint8Array): Promise<void> {
    const db = this.ready();
    const bytes = Buffer.byteLength(key) + record.byteLength + entryOverheadBytes;
    this.admit(db, bytes);
    try {
      // lmdb-js reads the value's memory on its writer thread; a copy keeps later caller edits out.
      await db.put(key, Buffer.from(record));
      this.writtenSinceRefresh += bytes;
    } catch (err) {
      throw this.failure('put', await commitCause(err));
    } finally {
      this.pendingBytes -= bytes;
    }
  }

  async delete(key: string): Promise<void> {
    const db = this.ready();
    try {
      await db.remove(key);
    } catch (err) {
      throw this.failure('delete', err);
    }
  }

  /** The B-tree keeps its entry count: O(1), where getCount() would walk every key. */
  async count(): Promise<number> {
    const db = this.ready();
    try {
      db.resetReadTxn(); // the cached read transaction may predate the last commits
      return (db.getStats() as LmdbStats).entryCount;
    } catch (err) {
      throw this.failure('count', err);
    }
  }

  /** Keys come in order, so resuming after the last key seen yields each survivor exactly once. */
  async *scan(batchSize = scanBatchSizeDefault): AsyncIterable<StorageEntry> {
    assert.ok(Number.isInteger(batchSize) && batchSize > 0, `scan batch size must be a positive integer, got ${batchSize}`);
    let after: string | undefined;
    for (;;) {
      const batch = this.readBatch(after, batchSize);
      for (const entry of batch) yield entry;
      const last = batch.at(-1);
      if (last === undefined || batch.length < batchSize) return;
      after = last.key;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const db = this.db;
    this.db = undefined;
    if (db === undefined) return;
    try {
      await db.close();
    } catch (err) {
      throw this.failure('close', err);
    }
  }

  private readBatch(after: string | undefined, batchSize: number): StorageEntry[] {
    const db = this.ready();
    const range = after === undefined ? { limit: batchSize } : { start: after, exclusiveStart: true, limit: batchSize };
    try {
      return Array.from(db.getRange(range), ({ key, value }) => ({ key, record: value }));
    } catch (err) {
      throw this.failure('scan', err);
    }
  }

  /** Refuses a put that would take live pages past the configured size, as a fixed LMDB map would. */
  private admit(db: RootDatabase<Buffer, string>, bytes: number): void {
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

  /** Live pages only: LMDB reuses the pages on its free list for new writes, so a delete makes room. */
  private usedBytes(db: RootDatabase<Buffer, string>): number {
    try {
      db.resetReadTxn(); // the cached read transaction may predate the last commits
      const stats = db.getStats() as LmdbStats;
      return (stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages) * stats.pageSize;
    } catch (err) {
      throw this.failure('stat', err);
    }
  }

  private ready(): RootDatabase<Buffer, string> {
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
