/**
 * The replica: serves reads and writes of this node's own storage on its
 * node subjects. A write merges the incoming versions with the stored
 * siblings (core/version.ts; under `lww` collapsed into one) under a
 * per-key lock and stores the result only when it changed.
 *
 * Everything that arrives is checked before it is stored: timestamps and
 * counters more than the maximum clock skew ahead are refused (a broken
 * clock or a forged message must not poison a key's history), and a
 * coordinator's new version that would not take effect here is refused with
 * the floor its clock must pass (StaleWriteError), so that the coordinator
 * writes again instead of acknowledging a write that is already lost.
 * Every reply fits the NATS max_payload: results that do not fit in one
 * batch reply are answered "ask again alone" (413), and a key's record is
 * bounded so that alone it always fits.
 */
import type { Logger } from 'pino';
import { ClockSkewError, GodDbError, ErrorCode, StaleWriteError, StorageError, UnavailableError } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { TurnBatches, type Batch } from '../../core/turn_batch.js';
import { counterOf } from '../../core/vclock.js';
import { collapse, ConflictPolicy, mergeOneLww, mergeSiblings, isUpToDate, staleFloor, type Version } from '../../core/version.js';
import { askAloneCode, decodeRecord, decodeVersioned, encode, encodeRecord, Kind, ProtocolError, type ItemFailure, type ItemResult, type ReplicaPutItem } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import type { StorageEngine, StorageEntry } from '../../storage/engine.js';
import type { InboundMessage, Subscription, Transport } from '../../transport/transport.js';
import type { HybridClock } from '../clock/hybrid_clock.js';
import { KeyLock } from './key_lock.js';
import { LogLimiter } from '../log_limiter.js';

export interface ReplicaOptions {
  conflictPolicy: ConflictPolicy;
  /** Under `siblings`: the most siblings a key keeps, past it the oldest collapse (default limits.siblingsMax). */
  siblingsMax?: number;
  /** Largest encoded record of one key (its siblings); more collapse by LWW. */
  recordBytesMax: number;
  /** Largest reply payload this node may send (the NATS max_payload less room for headers). */
  replyBytesMax: number;
  /** The newest protocol version this node reads (simulations run older nodes with 1). */
  protocolMax: number;
}


/** Told of every change to what this replica stores (anti-entropy keeps its hash trees with it). */
export type StoreListener = (key: string, before: readonly Version[], after: readonly Version[]) => void;

/** Where hinted writes go (a fallback keeps them for the member they stand in for: node/hints). */
export interface HintSink {
  store(owner: string, key: string, versions: readonly Version[]): Promise<void>;
}

/** One write of a batch the replica merges (mergeAll); `fresh` marks a coordinator's new version. */
interface MergeItem {
  key: string;
  versions: readonly Version[];
  fresh?: boolean;
}

export class Replica {
  private readonly locks = new KeyLock(limits.keyLocksMax);
  /** The writes this node coordinates for itself over one microtask checkpoint (servePut), stored together. */
  private readonly localBatches = new TurnBatches<MergeItem, void>((_, batch) => this.storeLocal(batch), limits.replicaBatchItemsMax);
  private readonly listeners: StoreListener[] = [];
  /** Set by the node when hinted handoff runs; hinted items are refused (503) without it. */
  hints: HintSink | undefined;
  /**
   * Set while the node, back on an empty disk, pulls its ranges again
   * (node/handoff/moves.ts): it answers no replica read (503) and stores
   * writes without acknowledging them (503), so it counts toward no quorum
   * before it holds what it had.
   */
  bootstrapping = false;
  private readonly logs: LogLimiter;
  /** Versions refused because they were too far ahead of this node's clock. */
  skewRefusals = 0;
  /** Fresh versions refused as stale (the coordinator wrote again with a later clock). */
  staleRefusals = 0;
  /** Requests refused whole because they could not be decoded (garbage, or a protocol this node does not speak). */
  malformed = 0;
  /** Under `siblings`: versions folded into others by LWW past siblingsMax (goddb_siblings_collapsed_total). */
  siblingsCollapsed = 0;

  constructor(
    private readonly engine: StorageEngine,
    private readonly hlc: HybridClock,
    private readonly opts: ReplicaOptions,
    logger: Logger,
  ) {
    this.logs = new LogLimiter(logger);
  }

  /** What the key holds; at once (a settled promise, no async frame) from an engine that reads synchronously. */
  get(key: string): Promise<Version[]> {
    if (this.engine.getSync !== undefined) return settledWith(() => this.getNow(key));
    return this.engine.get(key).then((record) => (record === undefined ? [] : decodeRecord(record)));
  }

  /**
   * Merges `incoming` into what is stored; resolves once it is stored.
   * `fresh` marks a coordinator's new version, refused when stale.
   */
  async put(key: string, incoming: readonly Version[], fresh = false): Promise<void> {
    this.checkSkew(incoming);
    const [failed] = await this.mergeAll([{ key, versions: incoming, fresh }]);
    if (failed !== undefined) throw failed;
  }

  /**
   * `put` (not fresh) of a batch: each item merged with what is stored as put
   * merges it, items of one key in turn, under the locks of all the batch's
   * keys (mergeAll). Rejects, storing nothing, when any item is too far
   * ahead; when the store fails for some keys, rejects with the first failure
   * (the other keys may be stored: merging them again is harmless).
   */
  async putMany(items: readonly { key: string; versions: readonly Version[] }[]): Promise<void> {
    for (const { versions } of items) this.checkSkew(versions);
    const failed = (await this.mergeAll(items)).find((err) => err !== undefined);
    if (failed !== undefined) throw failed;
  }

  /**
   * The read-merge-write of a batch, holding the locks of all its keys: each
   * key read once (at once from an engine that reads synchronously), its
   * items merged in the order given (an item that adds nothing is not
   * written, as in put), and the changed records written by one
   * engine.putMany, which the engine commits with the rest of its turn's
   * writes (lmdb-js's writer thread in always mode, commitQueued in periodic
   * mode). A fresh item (a coordinator's new version) is checked against what
   * the items before it left, as a put alone checks it against the stored
   * record, and is refused alone when stale. Resolves with one entry per
   * item: undefined when it took effect (or added nothing), else why not
   * (StaleWriteError, or the store's failure for every item of a key the
   * batch changed: putMany is all or nothing); rejects when a read fails.
   * The caller has checked the skew.
   *
   * With a synchronous engine and none of the keys held (the common case)
   * the locks are taken, the keys read and merged now, and the engine's
   * write is the one promise of the batch: no async frame per step.
   */
  private mergeAll(items: readonly MergeItem[]): Promise<(Error | undefined)[]> {
    const failed: (Error | undefined)[] = new Array<Error | undefined>(items.length).fill(undefined);
    const byKey = new Map<string, number[]>();
    for (let i = 0; i < items.length; i++) {
      const at = byKey.get(items[i]!.key);
      if (at === undefined) byKey.set(items[i]!.key, [i]);
      else at.push(i);
    }
    if (byKey.size === 0) return Promise.resolve(failed);
    const keys = [...byKey.keys()];
    // So this node's later writes order after them.
    const advance = (): (Error | undefined)[] => {
      for (let i = 0; i < items.length; i++) if (failed[i] === undefined) for (const v of items[i]!.versions) this.hlc.advanceTo(v.hlc);
      return failed;
    };
    const release = this.engine.getSync === undefined ? undefined : this.locks.tryTakeAll(keys);
    if (release === undefined) {
      return this.locks
        .runAll(keys, async () => {
          await this.mergeHeld(items, byKey, keys, await Promise.all(keys.map((key) => this.get(key))), failed);
        })
        .then(advance);
    }
    let storing: Promise<void> | undefined;
    try {
      storing = this.mergeHeld(items, byKey, keys, keys.map((key) => this.getNow(key)), failed);
    } catch (err) {
      release();
      return Promise.reject(err);
    }
    if (storing === undefined) {
      release();
      return Promise.resolve(advance());
    }
    return storing.then(
      () => {
        release();
        return advance();
      },
      (err: unknown) => {
        release();
        throw err;
      },
    );
  }

  /**
   * mergeAll's work under the locks, given what each key holds: merges,
   * writes the changed records, tells the listeners of each stored change
   * (before the locks go) and marks the items whose key failed to store.
   * Undefined when nothing changed.
   */
  private mergeHeld(items: readonly MergeItem[], byKey: Map<string, number[]>, keys: readonly string[], held: readonly Version[][], failed: (Error | undefined)[]): Promise<void> | undefined {
    const changes: { key: string; held: Version[]; merged: Version[] }[] = [];
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!;
      let merged = held[k]!;
      for (const i of byKey.get(key)!) {
        const { versions, fresh } = items[i]!;
        if (fresh === true && versions.length === 1) {
          const floor = staleFloor(merged, versions[0]!, this.opts.conflictPolicy);
          if (floor !== undefined) {
            this.staleRefusals++;
            failed[i] = new StaleWriteError(`stale write of ${key}: this replica holds a version with timestamp or counter ${floor}`, floor);
            continue;
          }
        }
        const next = this.merge(key, merged, versions);
        if (!isUpToDate(merged, next)) merged = next;
      }
      if (merged !== held[k]) changes.push({ key, held: held[k]!, merged });
    }
    if (changes.length === 0) return undefined;
    return this.store(changes.map(({ key, merged }) => ({ key, record: encodeRecord(merged) }))).then((stored) => {
      for (let c = 0; c < changes.length; c++) {
        const { key, held: before, merged } = changes[c]!;
        const failure = stored[c];
        if (failure === undefined) this.changed(key, before, merged);
        else for (const i of byKey.get(key)!) failed[i] ??= failure;
      }
    });
  }

  /**
   * Writes `entries` by one putMany (one promise, committed with the rest of
   * the turn's writes); when it fails and there are several, each again
   * alone, so that a failure of one key (a refused key, the map's cap) fails
   * only that key's writes. Writing a merged record twice is harmless.
   * Resolves with each entry's failure, or undefined when it is stored.
   */
  private store(entries: readonly StorageEntry[]): Promise<(Error | undefined)[]> {
    return settledWith(() => this.engine.putMany(entries)).then(
      () => new Array<Error | undefined>(entries.length).fill(undefined),
      async (err: unknown) => {
        if (entries.length === 1) return [asError(err)];
        const alone = await Promise.allSettled(entries.map(({ key, record }) => this.engine.put(key, record)));
        return alone.map((r) => (r.status === 'fulfilled' ? undefined : asError(r.reason)));
      },
    );
  }

  /** One key of a replica get batch, read synchronously (the caller checked the engine can): its versions, or why not. */
  private readNow(key: string): ItemResult<{ versions: Version[] }> {
    try {
      this.checkServing();
      return { ok: true, versions: this.getNow(key) };
    } catch (err) {
      return this.failure(err, 'get');
    }
  }

  /** `get` through the engine's synchronous read (the caller checked it has one). */
  private getNow(key: string): Version[] {
    const record = this.engine.getSync!(key);
    return record === undefined ? [] : decodeRecord(record);
  }

  /**
   * Deletes the key's record when it is still exactly `expected` (a purge of
   * what is no longer needed: a foreign key after a move, an old tombstone),
   * under the key's lock; true when deleted. Without `expected`, deletes
   * whatever is there.
   */
  async remove(key: string, expected?: readonly Version[]): Promise<boolean> {
    return this.locks.run(key, async () => {
      const held = await this.get(key);
      if (held.length === 0) return false;
      if (expected !== undefined && !(isUpToDate(expected, held) && isUpToDate(held, expected))) return false;
      await this.engine.delete(key);
      this.changed(key, held, []);
      return true;
    });
  }

  /**
   * `incoming` merged into `held`, bounded: under `lww` collapsed into one
   * version (what a read answers), under `siblings` the oldest collapse, counted
   * and logged (at most once a minute per kind).
   */
  private merge(key: string, held: readonly Version[], incoming: readonly Version[]): Version[] {
    if (this.opts.conflictPolicy !== ConflictPolicy.Siblings) {
      // Under lww every read collapses a key's siblings into one (reconcile), so the replica
      // stores that one version: a record of one value and one clock instead of one per
      // coordinator that wrote blind (three copies of the value to decode, merge and send).
      if (held.length === 1 && incoming.length === 1) return mergeOneLww(held[0]!, incoming[0]!);
      const merged = mergeSiblings(held, incoming, limits.siblingsMax, this.opts.recordBytesMax);
      return merged.length > 1 ? [collapse(merged)] : merged;
    }
    const siblingsMax = Math.min(this.opts.siblingsMax ?? limits.siblingsMax, limits.siblingsMax);
    return mergeSiblings(held, incoming, siblingsMax, this.opts.recordBytesMax, {
      policy: ConflictPolicy.Siblings,
      collapsed: (n) => {
        this.siblingsCollapsed += n;
        this.logs.warn('siblings-collapsed', { key, collapsed: n, siblingsMax }, 'a key had more siblings than siblingsMax: the oldest collapsed by LWW');
      },
    });
  }

  /** The keys whose writes hold or wait for their lock now. */
  writing(): Iterable<string> {
    return this.locks.keys();
  }

  /** Runs `fn` holding the key's lock: no write of the key runs meanwhile (a tree build reads a raced key again). */
  holding<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(key, fn);
  }

  /** Calls `fn` after every change of a stored record (under the key's lock, in the order of the changes). */
  onStored(fn: StoreListener): void {
    this.listeners.push(fn);
  }

  private changed(key: string, before: readonly Version[], after: readonly Version[]): void {
    for (const fn of this.listeners) {
      try {
        fn(key, before, after);
      } catch (err) {
        this.logs.error('store-listener', { err }, 'a store listener failed');
      }
    }
  }

  /** Subscribes to this node's replica subjects. */
  listen(transport: Transport, cluster: string, nodeId: string): Subscription[] {
    return [
      transport.subscribe(replicaSubject(cluster, nodeId, ReplicaOp.Get), (m) => this.onGet(m).catch((err) => this.crashed(m, err))),
      transport.subscribe(replicaSubject(cluster, nodeId, ReplicaOp.Put), (m) => this.onPut(m).catch((err) => this.crashed(m, err))),
    ];
  }

  private async onGet(msg: InboundMessage): Promise<void> {
    let keys: string[];
    let v: number;
    try {
      ({ v, msg: { keys } } = decodeVersioned(msg.data, Kind.ReplicaGet, this.opts.protocolMax));
    } catch (err) {
      return this.refuse(msg, err);
    }
    // An engine that reads synchronously answers the batch at once: no promise per key.
    const results = this.engine.getSync !== undefined
      ? keys.map((key) => this.readNow(key))
      : await Promise.all(keys.map((key) => this.serveGet(key).then((versions): ItemResult<{ versions: Version[] }> => ({ ok: true, versions }), (err) => this.failure(err, 'get'))));
    this.send(msg, this.fitted(results, v));
  }

  private async onPut(msg: InboundMessage): Promise<void> {
    let items: ReplicaPutItem[];
    let v: number;
    try {
      ({ v, msg: { items } } = decodeVersioned(msg.data, Kind.ReplicaPut, this.opts.protocolMax));
    } catch (err) {
      return this.refuse(msg, err);
    }
    this.send(msg, encode({ kind: Kind.ReplicaPutReply, results: await this.putItems(items) }, v));
  }

  /**
   * One result per item, in order. Items that are not hinted are stored by
   * one mergeAll after each has passed its own skew check, each answered
   * with its own outcome (a stale fresh item or a failed write alone); hinted
   * items go to the hints, and while bootstrapping every item goes alone
   * (servePut answers it 503 once stored).
   */
  private putItems(items: readonly ReplicaPutItem[]): Promise<ItemResult<object>[]> {
    const results: ItemResult<object>[] = [];
    const alone: Promise<void>[] = [];
    const batched: number[] = [];
    for (const [i, item] of items.entries()) {
      results.push({ ok: true });
      if (item.hintFor !== undefined || this.bootstrapping) {
        alone.push(this.putItem(item).catch((err) => void (results[i] = this.failure(err, 'put'))));
        continue;
      }
      try {
        this.checkSkew(item.versions);
        batched.push(i);
      } catch (err) {
        results[i] = this.failure(err, 'put');
      }
    }
    if (batched.length > 0) {
      alone.push(
        this.mergeAll(batched.map((i) => items[i]!)).then(
          (failed) => failed.forEach((err, j) => void (err !== undefined && (results[batched[j]!] = this.failure(err, 'put')))),
          (err) => {
            const failure = this.failure(err, 'put');
            for (const i of batched) results[i] = failure;
          },
        ),
      );
    }
    // A message's items are all batched (the common case): its one merge is the only wait.
    return (alone.length === 1 ? alone[0]! : Promise.all(alone)).then(() => results);
  }

  /** A coordinator's read of this replica (remote or local): refused while bootstrapping. */
  serveGet(key: string): Promise<Version[]> {
    return settledWith(() => {
      this.checkServing();
      return this.get(key);
    });
  }

  /** A coordinator's read is refused (503) while this replica bootstraps: it may not hold what it had yet. */
  private checkServing(): void {
    if (this.bootstrapping) throw new UnavailableError(bootstrappingMessage);
  }

  /**
   * A coordinator's write to this replica: stored, but not acknowledged while
   * bootstrapping. The writes of one microtask checkpoint (a turn's client
   * requests coordinated here) are merged and stored together by one
   * mergeAll, as a replica put message's items are; each settles with its
   * own result.
   */
  async servePut(key: string, versions: readonly Version[], fresh: boolean): Promise<void> {
    if (this.bootstrapping) {
      await this.put(key, versions, false);
      throw new UnavailableError(`${bootstrappingMessage}; the write was stored, not counted`);
    }
    this.checkSkew(versions);
    return this.localBatches.add('', { key, versions, fresh });
  }

  /** Settles each waiter of a local batch with its write's outcome; never throws (it runs from a microtask). */
  private storeLocal(batch: Batch<MergeItem, void>): void {
    const failAll = (err: unknown): void => {
      for (const w of batch.waiters) w.reject(err);
    };
    let merged: Promise<(Error | undefined)[]>;
    try {
      merged = this.mergeAll(batch.items);
    } catch (err) {
      return failAll(err);
    }
    merged.then((failed) => failed.forEach((err, i) => (err === undefined ? batch.waiters[i]!.resolve() : batch.waiters[i]!.reject(err))), failAll);
  }

  /** A replica put item: stored here, or kept as a hint for the member it names. */
  private async putItem(item: ReplicaPutItem): Promise<void> {
    if (item.hintFor === undefined) return this.servePut(item.key, item.versions, item.fresh === true);
    if (this.hints === undefined) throw new UnavailableError(`this node keeps no hints: the write for ${item.hintFor} is refused`);
    this.checkSkew(item.versions);
    await this.hints.store(item.hintFor, item.key, item.versions);
  }

  /**
   * The get reply, fitted to replyBytesMax: results are kept in order while
   * they fit; the rest are answered "ask again alone". A result that does
   * not fit even alone (a record written before the bound, or a smaller
   * max_payload than when it was written) is a 413 for that key.
   */
  private fitted(results: ItemResult<{ versions: Version[] }>[], v: number): Uint8Array {
    const whole = encode({ kind: Kind.ReplicaGetReply, results }, v);
    if (whole.length <= this.opts.replyBytesMax) return whole;
    const envelope = encode({ kind: Kind.ReplicaGetReply, results: [] }, v).length + 16;
    let used = envelope;
    const out = results.map((r): ItemResult<{ versions: Version[] }> => {
      const size = encode({ kind: Kind.ReplicaGetReply, results: [r] }, v).length - envelope + 16;
      if (used + size <= this.opts.replyBytesMax) {
        used += size;
        return r;
      }
      const alone = results.length === 1 || envelope + size > this.opts.replyBytesMax;
      const error = alone ? `record of ${size} bytes does not fit in a reply of at most ${this.opts.replyBytesMax}` : 'reply full: ask for this key alone';
      return { ok: false, code: askAloneCode, error };
    });
    return encode({ kind: Kind.ReplicaGetReply, results: out }, v);
  }

  private send(msg: InboundMessage, data: Uint8Array): void {
    if (data.length > this.opts.replyBytesMax) {
      msg.respondError(ErrorCode.TooLarge, `reply of ${data.length} bytes is over ${this.opts.replyBytesMax}`);
      return;
    }
    msg.respond(data);
  }

  /** Refuses versions whose timestamp or counters are too far ahead of this node's clock. */
  checkSkew(incoming: readonly Version[]): void {
    for (const v of incoming) {
      if (!this.hlc.acceptable(highest(v))) {
        this.skewRefusals++;
        throw new ClockSkewError(`version by ${v.writer} with timestamp or counter ${highest(v)} is more than the maximum clock skew of ${this.hlc.maxSkewMs} ms ahead of this node`);
      }
    }
  }

  /** A message that cannot be decoded is refused whole, with the reason. */
  private refuse(msg: InboundMessage, err: unknown): void {
    this.malformed++;
    const failure = this.failure(err, 'decode');
    msg.respondError(failure.code, failure.error);
  }

  /** Last resort: a bug reached the subscription. Logged, answered 500 if possible, never thrown. */
  private crashed(msg: InboundMessage, err: unknown): void {
    this.logs.error('replica-bug', { err }, 'replica request failed');
    try {
      msg.respondError(ErrorCode.Internal, 'replica failed');
    } catch {
      // nothing more to do: the requester times out
    }
  }

  private failure(err: unknown, op: string): ItemFailure {
    if (err instanceof ProtocolError) this.logs.warn(`malformed-${op}`, { err: err.message, op }, 'refused a malformed replica request');
    else if (err instanceof ClockSkewError) this.logs.warn('skew', { err: err.message, op }, 'refused a version from a clock too far ahead');
    else if (err instanceof StorageError) this.logs.error(`storage-${op}`, { err: err.message, op }, 'storage failed');
    else if (!(err instanceof GodDbError)) this.logs.error(`bug-${op}`, { err, op }, 'replica request failed');
    const code = err instanceof GodDbError ? err.code : ErrorCode.Internal;
    const out: ItemFailure = { ok: false, code, error: err instanceof Error ? err.message : String(err) };
    if (err instanceof StaleWriteError) out.floor = err.floor;
    return out;
  }
}

/** `fn`'s result as a promise, its throw as a rejection: no async frame for work that is often synchronous. */
function settledWith<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new StorageError(String(err));
}

const bootstrappingMessage = 'back on an empty disk, this replica is pulling its ranges again and counts toward no quorum yet';

/** The largest timestamp a version carries: its own and its clock's counters. */
function highest(v: Version): number {
  let max = v.hlc;
  for (const id of Object.keys(v.clock)) max = Math.max(max, counterOf(v.clock, id));
  return max;
}
