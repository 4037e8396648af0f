/**
 * An in-process engine for tests and the cluster simulator (raft's
 * MemoryStorage). It copies bytes in and out, so callers see the same
 * isolation a real store gives, and `setFailing` models a broken disk.
 */
import assert from 'node:assert/strict';
import { StorageError } from '../core/errors.js';
import { keyHash } from '../core/ring.js';
import type { HashCursor, HashedEntry, HashRange, StorageEngine, StorageEntry } from './engine.js';
import { checkRangeArgs, compareHashOrder, rangeBatchSizeDefault, startOf } from './hash_order.js';

/** Entries yielded between two checks of the engine's state during a scan. */
const scanBatchSizeDefault = 256;

const State = { New: 'new', Open: 'open', Closed: 'closed' } as const;
type State = (typeof State)[keyof typeof State];

export class MemoryEngine implements StorageEngine {
  readonly kind = 'memory';
  private readonly records = new Map<string, Uint8Array>();
  /** keyHash of each key present, computed once at its first put rather than at every range scan. */
  private readonly hashes = new Map<string, bigint>();
  private state: State = State.New;
  private failing = false;

  /** While true every data call rejects with StorageError, as a dead disk would; false recovers. */
  setFailing(failing: boolean): void {
    this.failing = failing;
  }

  async open(): Promise<void> {
    if (this.state === State.Closed) throw new StorageError('memory engine is closed');
    this.checkFailing();
    this.state = State.Open;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.read(key);
  }

  getSync(key: string): Uint8Array | undefined {
    return this.read(key);
  }

  private read(key: string): Uint8Array | undefined {
    this.checkUsable();
    const record = this.records.get(key);
    return record === undefined ? undefined : new Uint8Array(record);
  }

  async put(key: string, record: Uint8Array): Promise<void> {
    this.checkUsable();
    this.records.set(key, new Uint8Array(record));
    if (!this.hashes.has(key)) this.hashes.set(key, keyHash(key));
  }

  /** A loop after one check: a failing or closed engine writes none of the batch. */
  async putMany(entries: readonly StorageEntry[]): Promise<void> {
    this.checkUsable();
    for (const { key, record } of entries) {
      this.records.set(key, new Uint8Array(record));
      if (!this.hashes.has(key)) this.hashes.set(key, keyHash(key));
    }
  }

  async delete(key: string): Promise<void> {
    this.checkUsable();
    this.records.delete(key);
    this.hashes.delete(key);
  }

  async count(): Promise<number> {
    this.checkUsable();
    return this.records.size;
  }

  /**
   * Map iteration is live: a key deleted meanwhile is skipped and an
   * overwritten key keeps its position, so each surviving key comes once.
   */
  async *scan(batchSize = scanBatchSizeDefault): AsyncIterable<StorageEntry> {
    assert.ok(Number.isInteger(batchSize) && batchSize > 0, `scan batch size must be a positive integer, got ${batchSize}`);
    this.checkUsable();
    let inBatch = 0;
    for (const [key, record] of this.records) {
      if (inBatch === batchSize) {
        inBatch = 0;
        this.checkUsable();
      }
      inBatch += 1;
      yield { key, record: new Uint8Array(record) };
    }
  }

  /**
   * Sorts a snapshot of the keys in range, then reads each record as it is
   * reached: a key deleted before that is skipped, and one added after the
   * snapshot is not seen (both allowed by the contract).
   */
  async *scanRange(range: HashRange, opts: { after?: HashCursor; batchSize?: number } = {}): AsyncIterable<HashedEntry> {
    const batchSize = opts.batchSize ?? rangeBatchSizeDefault;
    checkRangeArgs(range, batchSize);
    this.checkUsable();
    const start = startOf(range, opts.after);
    if (start === undefined) return;
    const from: HashCursor = { hash: start.hash, key: start.after ?? '' };
    const inRange = (cursor: HashCursor) =>
      cursor.hash <= range.toHash && (start.after === undefined ? cursor.hash >= from.hash : compareHashOrder(cursor, from) > 0);
    const snapshot = [...this.hashes].map(([key, hash]) => ({ hash, key })).filter(inRange);
    snapshot.sort(compareHashOrder);
    for (const [i, { hash, key }] of snapshot.entries()) {
      if (i > 0 && i % batchSize === 0) this.checkUsable();
      const record = this.records.get(key);
      if (record !== undefined) yield { key, hash, record: new Uint8Array(record) };
    }
  }

  /** Succeeds even while failing: shutting down must work with a broken disk. */
  async close(): Promise<void> {
    this.state = State.Closed;
  }

  private checkUsable(): void {
    if (this.state === State.New) throw new StorageError('memory engine is not open');
    if (this.state === State.Closed) throw new StorageError('memory engine is closed');
    this.checkFailing();
  }

  private checkFailing(): void {
    if (this.failing) throw new StorageError('memory engine is failing (injected fault)');
  }
}
