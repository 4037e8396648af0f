/**
 * The hint store: writes a fallback keeps for a replica that is down
 * (sloppy quorum, Dynamo 4.6), until hinted handoff (hinted_handoff.ts)
 * delivers them. A storage engine of its own (LMDB in `<dataDir>/hints`,
 * Redis under its own key prefix, memory), so hints are durable, survive a
 * restart of the holder, and never mix with the node's own data.
 *
 * One record per (owner, key): hints for the same owner and key merge like a
 * replica's siblings (core/version.ts mergeSiblings). The record's storage
 * key is derived from the owner and a SHA-256 of the key, so it stays within
 * limits.keyBytesMax whatever the key; the real key lives in the record.
 *
 * Bounded: past `bytesMax` bytes in all, a new hint is refused (507: the
 * coordinator counts the write on other replicas, or answers 503). A hint
 * older than `windowMs` (Cassandra's max_hint_window, 3 h by default) is
 * dropped. The window is also what keeps a hint from outliving the
 * tombstone grace period (10 days): a hint replayed after its tombstone was
 * purged everywhere else would bring a deleted value back.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { decodeRecord, encodeRecord } from '../../protocol/codec.js';
import { StorageError } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { ConflictPolicy, isUpToDate, mergeSiblings, type Version } from '../../core/version.js';
import type { StorageEngine } from '../../storage/engine.js';
import { KeyLock } from '../replica/key_lock.js';
import { LogLimiter } from '../log_limiter.js';
import type { HintSink } from '../replica/replica.js';

export interface Hint {
  /** The replica the versions are for. */
  owner: string;
  key: string;
  versions: Version[];
  /** Wall-clock ms when the newest of these versions was kept (the window counts from it: a version merged in late is kept its whole window). */
  storedAtMs: number;
}

/** A hint as read from the store, with what deleting it exactly needs. */
export interface StoredHint extends Hint {
  storageKey: string;
  record: Uint8Array;
}

/** Why hints were dropped (goddb_hints_dropped_total{reason}). */
export const HintDropReason = {
  /** Older than the hint window. */
  Window: 'window',
  /** Refused: the store was at its byte cap. */
  Full: 'full',
  /** The owner left or was removed: its data moved to others. */
  OwnerGone: 'owner_gone',
  /** A record that could not be read back. */
  Corrupt: 'corrupt',
} as const;
export type HintDropReason = (typeof HintDropReason)[keyof typeof HintDropReason];

export interface HintStoreOptions {
  windowMs: number;
  bytesMax: number;
  /** Largest record of one key's versions (as the replica bounds its own). */
  recordBytesMax: number;
  /** Under `siblings` past the bound only the oldest collapse, as on the replica; default lww (all collapse). */
  conflictPolicy?: ConflictPolicy;
}

interface OwnerTally {
  count: number;
  bytes: number;
}

/** Format of a hint record: 4-byte header length, the JSON header, then the versions as a disk record. */
const hintFormat = 1;
const headerBytesMax = 4 * 1024;

export class HintStore implements HintSink {
  private readonly locks = new KeyLock(limits.keyLocksMax);
  private readonly owners = new Map<string, OwnerTally>();
  private bytes = 0;
  private readonly logs: LogLimiter;
  /** Hints kept (new or merged into one already held). */
  storedTotal = 0;
  /** Hints the owner acknowledged. */
  deliveredTotal = 0;
  readonly dropped: Record<HintDropReason, number> = { window: 0, full: 0, owner_gone: 0, corrupt: 0 };

  constructor(
    private readonly engine: StorageEngine,
    private readonly opts: HintStoreOptions,
    private readonly clock: Clock,
    logger: Logger,
  ) {
    this.logs = new LogLimiter(logger, () => clock.monotonicMs());
  }

  /** Opens the engine and counts what it holds (hints kept before a restart), dropping unreadable records. */
  async open(): Promise<void> {
    await this.engine.open();
    this.owners.clear();
    this.bytes = 0;
    for await (const { key, record } of this.engine.scan(limits.hintScanBatchSize)) {
      const hint = decodeHint(record);
      if (hint === undefined) {
        await this.engine.delete(key);
        this.dropped.corrupt++;
        continue;
      }
      this.tally(hint.owner, 1, record.length);
    }
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  /** Keeps `versions` of `key` for `owner`, merged with what is kept already; refused (507) past the byte cap. */
  async store(owner: string, key: string, versions: readonly Version[]): Promise<void> {
    const storageKey = hintStorageKey(owner, key);
    if (!this.owners.has(owner) && this.owners.size >= limits.hintOwnersMax) {
      this.dropped.full++;
      throw new StorageError(`hint store full: hints held for ${this.owners.size} members, at most ${limits.hintOwnersMax}`);
    }
    await this.locks.run(storageKey, async () => {
      const old = await this.engine.get(storageKey);
      const held = old === undefined ? undefined : decodeHint(old);
      const merged = mergeSiblings(held?.versions ?? [], versions, limits.siblingsMax, this.opts.recordBytesMax, { policy: this.opts.conflictPolicy ?? ConflictPolicy.Lww });
      if (held !== undefined && isUpToDate(held.versions, merged)) return;
      const record = encodeHint({ owner, key, versions: merged, storedAtMs: this.clock.nowMs() });
      const grows = record.length - (held === undefined ? 0 : old!.length);
      if (this.bytes + grows > this.opts.bytesMax) {
        this.dropped.full++;
        this.logs.warn('hints-full', { owner, bytes: this.bytes, bytesMax: this.opts.bytesMax }, 'hint store full: refused a hint');
        throw new StorageError(`hint store full: ${this.bytes} bytes of hints held, at most ${this.opts.bytesMax}`);
      }
      await this.engine.put(storageKey, record);
      if (held === undefined) this.tally(owner, 1, record.length);
      else this.tally(owner, 0, grows);
      this.storedTotal++;
    });
  }

  /** Every hint held, in no order, in bounded memory; unreadable records are dropped on the way. */
  async *scan(): AsyncGenerator<StoredHint> {
    for await (const { key: storageKey, record } of this.engine.scan(limits.hintScanBatchSize)) {
      const hint = decodeHint(record);
      if (hint === undefined) {
        if (await this.remove(storageKey, record)) this.dropped.corrupt++;
        continue;
      }
      yield { ...hint, storageKey, record };
    }
  }

  /** True when a hint is older than the window at `nowMs` (wall clock). */
  expired(hint: Hint, nowMs = this.clock.nowMs()): boolean {
    return nowMs - hint.storedAtMs > this.opts.windowMs;
  }

  /** Deletes a hint delivered to its owner, only if it is unchanged since it was read (a newer hint merged meanwhile stays). */
  async delivered(hint: StoredHint): Promise<boolean> {
    const gone = await this.remove(hint.storageKey, hint.record);
    if (gone) this.deliveredTotal++;
    return gone;
  }

  /** Drops a hint for `reason`, only if it is unchanged since it was read. */
  async drop(hint: StoredHint, reason: HintDropReason): Promise<boolean> {
    const gone = await this.remove(hint.storageKey, hint.record);
    if (gone) this.dropped[reason]++;
    return gone;
  }

  /** Hints held per owner. */
  pending(): Map<string, number> {
    return new Map([...this.owners].map(([owner, t]) => [owner, t.count]));
  }

  get pendingTotal(): number {
    let n = 0;
    for (const t of this.owners.values()) n += t.count;
    return n;
  }

  get bytesHeld(): number {
    return this.bytes;
  }

  private async remove(storageKey: string, expected: Uint8Array): Promise<boolean> {
    return this.locks.run(storageKey, async () => {
      const now = await this.engine.get(storageKey);
      if (now === undefined || !Buffer.from(now).equals(Buffer.from(expected))) return false;
      await this.engine.delete(storageKey);
      // The owner is in the storage key (hintStorageKey): no decoding, and an unreadable record is untallied too.
      this.tally(storageKey.slice(0, storageKey.lastIndexOf('/')), -1, -now.length);
      return true;
    });
  }

  private tally(owner: string, count: number, bytes: number): void {
    const t = this.owners.get(owner) ?? { count: 0, bytes: 0 };
    t.count += count;
    t.bytes += bytes;
    this.bytes += bytes;
    if (t.count <= 0) this.owners.delete(owner);
    else this.owners.set(owner, t);
  }
}

/** The storage key of the hint of `key` for `owner`: bounded whatever the key's length. */
export function hintStorageKey(owner: string, key: string): string {
  return `${owner}/${createHash('sha256').update(key, 'utf8').digest('base64url')}`;
}

export function encodeHint(hint: Hint): Uint8Array {
  const header = Buffer.from(JSON.stringify({ f: hintFormat, owner: hint.owner, key: hint.key, storedAtMs: hint.storedAtMs }), 'utf8');
  const record = encodeRecord(hint.versions);
  const out = Buffer.alloc(4 + header.length + record.length);
  out.writeUInt32BE(header.length, 0);
  header.copy(out, 4);
  Buffer.from(record).copy(out, 4 + header.length);
  return out;
}

/** A hint record read back, or undefined when it is not one (never throws). */
export function decodeHint(bytes: Uint8Array): Hint | undefined {
  try {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < 4) return undefined;
    const length = buf.readUInt32BE(0);
    if (length > headerBytesMax || 4 + length > buf.length) return undefined;
    const header: unknown = JSON.parse(buf.subarray(4, 4 + length).toString('utf8'));
    if (typeof header !== 'object' || header === null) return undefined;
    const { f, owner, key, storedAtMs } = header as Record<string, unknown>;
    if (f !== hintFormat || typeof owner !== 'string' || typeof key !== 'string' || typeof storedAtMs !== 'number' || !Number.isFinite(storedAtMs)) return undefined;
    const versions = decodeRecord(buf.subarray(4 + length));
    return { owner, key, versions, storedAtMs };
  } catch {
    return undefined; // a ProtocolError, a SyntaxError (JSON) or a RangeError (lengths): not a hint
  }
}
