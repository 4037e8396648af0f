/**
 * The storage contract every engine implements (etcd raft storage.go,
 * riak_core vnode callbacks). An engine is a durable map from key to an
 * opaque record: the replica encodes its sibling set into the record and
 * does the read-merge-write under its own per-key lock, so engines need no
 * knowledge of versions. The one multi-key write is `putMany`, for batches
 * that arrive together (a page of a range move): one transaction or round
 * trip instead of one per key.
 *
 * Semantics every engine must keep (the contract suite checks them):
 * - `open()` before anything else; calls after `close()` reject with StorageError.
 * - `get` of an absent key resolves undefined; of a present one, the exact bytes last put.
 * - `put` replaces the record; once it resolves, `get` returns it (read your writes).
 * - `putMany` puts every entry of a batch in one transaction (lmdb: one write
 *   transaction, one sync) or round trip (redis: one MULTI of SET and ZADD per
 *   entry); once it resolves, `get` returns each record. An empty batch is
 *   fine; a key given twice ends with its later record. A failure rejects with
 *   StorageError and writes nothing: lmdb and redis (MULTI/EXEC) are
 *   all-or-nothing, and memory checks its state before the first entry. (A
 *   Redis that dies during EXEC may still have applied it; the caller learns of
 *   the failure, as for a put.)
 * - `delete` of an absent key is not an error.
 * - Keys are any non-empty UTF-8 string up to limits.keyBytesMax bytes
 *   (dots, spaces, slashes, unicode); records are any bytes, including empty.
 * - `scan` yields every key present when it starts and not deleted meanwhile,
 *   exactly once, in no promised order, in bounded memory (batches).
 * - `scanRange` yields the entries whose key hash (core/ring.ts keyHash, the
 *   ring position) lies in a range, in (hash, key UTF-8 bytes) order, in
 *   bounded memory, starting after a cursor when given, so handoff can stream a
 *   ring range and resume where it stopped. Every key present for the whole
 *   scan is yielded exactly once; a key put or deleted during the scan may or
 *   may not be. Resuming from the last entry yielded never repeats it. A range
 *   that wraps past zero is the caller's to split; a wrapping range or a bad
 *   batch size is a programmer error (an assertion).
 * - `count` resolves the number of records present, cheaply (no scan), for
 *   `goddb status` and /metrics. Exact for memory (the map's size) and lmdb
 *   (the B-tree's entry count, `getStats().entryCount`); for redis it is
 *   `DBSIZE` of the node's own db, so it also counts keys other programs put
 *   in that db outside the key prefix (give each node a db of its own).
 * - Any failure of the backing store (disk full, server gone) rejects with
 *   StorageError (code 507) and leaves the engine usable once the store recovers.
 */
/** The engines behind this contract, as configuration names them (storage/index.ts builds one). */
export const EngineKind = {
  Memory: 'memory',
  Redis: 'redis',
  Lmdb: 'lmdb',
} as const;
export type EngineKind = (typeof EngineKind)[keyof typeof EngineKind];

/**
 * When the lmdb engine acknowledges a write (`storage.sync`; Redis ignores it,
 * its own `appendfsync` decides). `always`: after the commit that holds it is
 * fsynced; commits are grouped, every write that arrives while one commit runs
 * goes into the next. `periodic`: once its commit is in the OS (no fsync); the
 * environment is fsynced every `storage.syncIntervalMs` and on close, so a
 * process crash loses nothing and a power loss loses what came after the last
 * sync (README "Durability").
 */
export const SyncMode = {
  Always: 'always',
  Periodic: 'periodic',
} as const;
export type SyncMode = (typeof SyncMode)[keyof typeof SyncMode];

export interface StorageEntry {
  key: string;
  record: Uint8Array;
}

/** A position in hash order: entries after it have a larger hash, or the same hash and a larger key (UTF-8 byte order). */
export interface HashCursor {
  hash: bigint;
  key: string;
}

/** Key hashes from fromHash to toHash, both inclusive (0 <= fromHash <= toHash <= 2^64-1; callers split a range that wraps past zero). */
export interface HashRange {
  fromHash: bigint;
  toHash: bigint;
}

export interface HashedEntry extends StorageEntry {
  /** keyHash(key): the entry's ring position. */
  hash: bigint;
}

export interface StorageEngine {
  /** 'memory' | 'redis' | 'lmdb'; for logs and metrics. */
  readonly kind: string;
  open(): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * `get` at once, for engines whose reads need no round trip (memory, LMDB):
   * throws where `get` rejects. Absent on engines that must wait (Redis). The
   * replica's batch merge reads through it, so a write costs no promise per key.
   */
  getSync?(key: string): Uint8Array | undefined;
  put(key: string, record: Uint8Array): Promise<void>;
  /** Every entry in one transaction or round trip; all-or-nothing (see the contract above). */
  putMany(entries: readonly StorageEntry[]): Promise<void>;
  delete(key: string): Promise<void>;
  scan(batchSize?: number): AsyncIterable<StorageEntry>;
  /**
   * Every entry whose key hash is in `range`, in (hash, key bytes) order, starting after `after`
   * when given; bounded memory (reads `batchSize` at a time). Keys put or deleted during the scan
   * may or may not be seen; every key present for the whole scan is seen exactly once.
   */
  scanRange(range: HashRange, opts?: { after?: HashCursor; batchSize?: number }): AsyncIterable<HashedEntry>;
  /** Records present (see the contract above for what each engine counts). */
  count(): Promise<number>;
  close(): Promise<void>;
}
