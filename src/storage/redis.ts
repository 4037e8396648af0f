/**
 * The seed's backend: one Redis per node, records as plain string values
 * under a key prefix. Calls fail fast with StorageError while Redis is gone
 * (no offline queue, one retry) and the client keeps reconnecting in the
 * background, so the engine recovers by itself when Redis comes back.
 *
 * Beside the records, a sorted set (the hash index, `hashIndexKeyOf`) holds
 * one member `<16 hex digits of keyHash>:<key>` per record, all with score 0:
 * Redis then orders members by their bytes, which is (hash, key bytes) order
 * because the hex is fixed-width lowercase, so ZRANGEBYLEX reads a ring range
 * in order (scanRange). A put or delete changes record and member in one
 * MULTI. open() builds the index for a db written before it existed.
 *
 * A Redis restarted without persistence (or flushed) comes back empty, and a
 * node serving from it would answer reads with nothing for keys it
 * acknowledged. So open() leaves a marker key with a random value, and after
 * every reconnection the engine refuses all calls until it has read the
 * marker back; a marker gone or changed means the data went with it, and the
 * engine then refuses every call for good (the node counts toward no quorum).
 * Restarting the worker refills its ranges from the other replicas
 * (node/handoff/store_fill.ts).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { StorageError } from '../core/errors.js';
import { keyHash } from '../core/ring.js';
import type { HashCursor, HashedEntry, HashRange, StorageEngine, StorageEntry } from './engine.js';
import { checkRangeArgs, hashHex, rangeBatchSizeDefault, startOf } from './hash_order.js';

export interface RedisEngineOptions {
  host: string;
  port: number;
  db: number;
  /** '' means no AUTH. */
  password: string;
  /** Prepended to every key, so a Redis can be shared; default 'god:r:'. */
  keyPrefix?: string;
  /** The sorted set of the hash index; default hashIndexKeyOf(keyPrefix). Must not start with keyPrefix. */
  hashIndexKey?: string;
  /** Bound on establishing the connection in open(). */
  connectTimeoutMs?: number;
  /** Bound on any one command, so a Redis that hangs (rather than vanishes) fails too. */
  commandTimeoutMs?: number;
}

const keyPrefixDefault = 'god:r:';
const connectTimeoutMsDefault = 2_000;
const commandTimeoutMsDefault = 5_000;
/** Reconnect back-off grows by this step per attempt up to the cap, so recovery is noticed within a second. */
const reconnectDelayMsStep = 100;
const reconnectDelayMsMax = 1_000;
/** SCAN COUNT and MGET width when the caller gives none. */
const scanBatchSizeDefault = 256;
/** SCAN COUNT and ZADD width while open() builds a missing hash index. */
const indexBuildBatchSize = 1_000;

/** The default hash index of the records under `keyPrefix`: outside the prefix, so neither a record key nor matched by scan. */
export function hashIndexKeyOf(keyPrefix: string): string {
  return `hash-index:${keyPrefix}`;
}

/** The marker that tells a reconnection to the same data from one to a Redis that lost it: outside the prefix too. */
export function storeMarkKeyOf(keyPrefix: string): string {
  return `store-mark:${keyPrefix}`;
}

const Link = { Checking: 'checking', Ok: 'ok', Lost: 'lost' } as const;
type Link = (typeof Link)[keyof typeof Link];

/** A key's member in the hash index. */
export function hashIndexMember(key: string, hash = keyHash(key)): string {
  return `${hashHex(hash)}:${key}`;
}

export class RedisEngine implements StorageEngine {
  readonly kind = 'redis';
  private readonly options: Required<RedisEngineOptions>;
  private client: Redis | undefined;
  private closed = false;
  /** The latest connection error, for messages: a command only learns "stream isn't writeable". */
  private lastConnectionError = '';
  /** The store's marker value, set or read by open(); '' before. */
  private mark = '';
  /** Whether the data behind the connection is known to be the data open() found. */
  private link: Link = Link.Checking;

  constructor(options: RedisEngineOptions) {
    this.options = {
      ...options,
      keyPrefix: options.keyPrefix ?? keyPrefixDefault,
      hashIndexKey: options.hashIndexKey ?? hashIndexKeyOf(options.keyPrefix ?? keyPrefixDefault),
      connectTimeoutMs: options.connectTimeoutMs ?? connectTimeoutMsDefault,
      commandTimeoutMs: options.commandTimeoutMs ?? commandTimeoutMsDefault,
    };
    const { keyPrefix, hashIndexKey } = this.options;
    assert.ok(!this.buildingIndexKey().startsWith(keyPrefix), `redis hash index ${hashIndexKey} must lie outside the key prefix ${keyPrefix}`);
    assert.ok(!this.markKey().startsWith(keyPrefix), `redis store marker ${this.markKey()} must lie outside the key prefix ${keyPrefix}`);
  }

  async open(): Promise<void> {
    if (this.closed) throw new StorageError('redis engine is closed');
    if (this.client !== undefined) return;
    const client = this.createClient();
    try {
      await client.connect();
    } catch (err) {
      // Stop the background reconnection that a failed first connect leaves running.
      client.disconnect();
      const reason = this.lastConnectionError || describe(err);
      throw new StorageError(`redis at ${this.address()} is unreachable: ${reason}`, { cause: err });
    }
    this.client = client;
    try {
      await this.buildHashIndex(client);
      const fresh = randomBytes(12).toString('hex');
      const [, kept] = await this.call('open', () => exec(client.multi().set(this.markKey(), fresh, 'NX').get(this.markKey())));
      this.mark = String(kept);
      this.link = Link.Ok;
    } catch (err) {
      this.client = undefined;
      client.disconnect();
      throw err;
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const client = this.ready();
    const record = await this.call('get', () => client.getBuffer(this.options.keyPrefix + key));
    return record ?? undefined;
  }

  async put(key: string, record: Uint8Array): Promise<void> {
    const client = this.ready();
    const value = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
    const member = hashIndexMember(key);
    await this.call('put', () => exec(client.multi().set(this.options.keyPrefix + key, value).zadd(this.options.hashIndexKey, 0, member)));
  }

  /** One MULTI of SET and ZADD per entry: one round trip, applied whole by EXEC. */
  async putMany(entries: readonly StorageEntry[]): Promise<void> {
    const client = this.ready();
    if (entries.length === 0) return;
    const multi = client.multi();
    for (const { key, record } of entries) {
      multi.set(this.options.keyPrefix + key, Buffer.from(record.buffer, record.byteOffset, record.byteLength));
      multi.zadd(this.options.hashIndexKey, 0, hashIndexMember(key));
    }
    await this.call('put', () => exec(multi));
  }

  async delete(key: string): Promise<void> {
    const client = this.ready();
    const member = hashIndexMember(key);
    await this.call('delete', () => exec(client.multi().del(this.options.keyPrefix + key).zrem(this.options.hashIndexKey, member)));
  }

  /**
   * DBSIZE is O(1) but counts the whole db, keys outside the prefix included
   * (engine.ts); the hash index is one key of it and is not counted.
   */
  async count(): Promise<number> {
    const client = this.ready();
    const [size, index, mark] = await this.call('count', () => exec(client.multi().dbsize().exists(this.options.hashIndexKey).exists(this.markKey())));
    return Number(size) - Number(index) - Number(mark);
  }

  /**
   * ZRANGEBYLEX over the hash index a batch at a time, each batch resuming
   * strictly after the last member read, then MGET of the batch's records. A
   * member whose record is gone was deleted between the two reads and is
   * skipped, as the contract allows.
   */
  async *scanRange(range: HashRange, opts: { after?: HashCursor; batchSize?: number } = {}): AsyncIterable<HashedEntry> {
    const batchSize = opts.batchSize ?? rangeBatchSizeDefault;
    checkRangeArgs(range, batchSize);
    this.ready();
    const start = startOf(range, opts.after);
    if (start === undefined) return;
    // Members of hash h are "h:key"; ';' follows ':', so "(h;" bounds every member of h from above.
    let min = start.after === undefined ? `[${hashHex(start.hash)}` : `(${hashIndexMember(start.after, start.hash)}`;
    const max = `(${hashHex(range.toHash)};`;
    const prefix = this.options.keyPrefix;
    for (;;) {
      const client = this.ready();
      const members = await this.call('scan', () => client.zrangebylex(this.options.hashIndexKey, min, max, 'LIMIT', 0, batchSize));
      const last = members.at(-1);
      if (last === undefined) return;
      const entries = members.map(parseMember);
      const records = await this.call('scan', () => client.mgetBuffer(entries.map(({ key }) => prefix + key)));
      for (const [i, record] of records.entries()) {
        if (record !== null) yield { ...entries[i]!, record };
      }
      if (members.length < batchSize) return;
      min = `(${last}`;
    }
  }

  /**
   * SCAN then MGET per batch. SCAN may return a key twice (when Redis resizes
   * its table mid-scan), so keys already yielded are remembered: the contract
   * promises exactly once, at the price of memory for the key names.
   */
  async *scan(batchSize = scanBatchSizeDefault): AsyncIterable<StorageEntry> {
    assert.ok(Number.isInteger(batchSize) && batchSize > 0, `scan batch size must be a positive integer, got ${batchSize}`);
    const prefix = this.options.keyPrefix;
    const pattern = `${escapeGlob(prefix)}*`;
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const client = this.ready();
      const [next, found] = await this.call('scan', () => client.scan(cursor, 'MATCH', pattern, 'COUNT', batchSize));
      cursor = next;
      const fresh = found.filter((key) => !seen.has(key));
      if (fresh.length === 0) continue;
      for (const key of fresh) seen.add(key);
      const records = await this.call('scan', () => client.mgetBuffer(fresh));
      for (const [i, record] of records.entries()) {
        // Null: deleted between SCAN and MGET, which the contract allows us to skip.
        if (record !== null) yield { key: fresh[i]!.slice(prefix.length), record };
      }
    } while (cursor !== '0');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    try {
      if (client.status === 'ready') await client.quit();
    } catch {
      // Redis went away during QUIT: nothing is left to flush.
    } finally {
      client.disconnect();
    }
  }

  /**
   * Builds the hash index of a db written before it existed: SCAN the records
   * into a building key, then RENAME it into place, so the index is whole or
   * absent and an open interrupted midway starts over. A db with records
   * always has an index (its last ZREM deletes it with the last record), so an
   * absent index means it was never built, and this is one EXISTS per open.
   */
  private async buildHashIndex(client: Redis): Promise<void> {
    const { keyPrefix, hashIndexKey } = this.options;
    if ((await this.call('index build', () => client.exists(hashIndexKey))) === 1) return;
    const building = this.buildingIndexKey();
    await this.call('index build', () => client.del(building));
    const pattern = `${escapeGlob(keyPrefix)}*`;
    let cursor = '0';
    do {
      const [next, found] = await this.call('index build', () => client.scan(cursor, 'MATCH', pattern, 'COUNT', indexBuildBatchSize));
      cursor = next;
      if (found.length === 0) continue;
      // SCAN may repeat a key; ZADD of a member already present changes nothing.
      const scoredMembers = found.flatMap((stored) => [0, hashIndexMember(stored.slice(keyPrefix.length))]);
      await this.call('index build', () => client.zadd(building, ...scoredMembers));
    } while (cursor !== '0');
    if ((await this.call('index build', () => client.exists(building))) === 1) {
      await this.call('index build', () => client.rename(building, hashIndexKey));
    }
  }

  private markKey(): string {
    return storeMarkKeyOf(this.options.keyPrefix);
  }

  /** After a reconnection: the marker read back, or the store counted lost for good. */
  private async verify(client: Redis): Promise<void> {
    try {
      const kept = await client.get(this.markKey());
      if (this.link !== Link.Checking) return;
      this.link = kept === this.mark ? Link.Ok : Link.Lost;
    } catch (err) {
      // Gone again before it answered: the next 'ready' checks once more.
      this.lastConnectionError = describe(err);
    }
  }

  private buildingIndexKey(): string {
    return `${this.options.hashIndexKey}:building`;
  }

  private createClient(): Redis {
    const { host, port, db, password, connectTimeoutMs, commandTimeoutMs } = this.options;
    const client = new Redis({
      host,
      port,
      db,
      password: password === '' ? undefined : password,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: connectTimeoutMs,
      commandTimeout: commandTimeoutMs,
      retryStrategy: (attempt: number) => Math.min(attempt * reconnectDelayMsStep, reconnectDelayMsMax),
    });
    // ioredis emits 'error' on every failed reconnect; unheard, an 'error' event kills the process.
    // Callers learn about the outage from their own rejected calls.
    client.on('error', (err: Error) => {
      this.lastConnectionError = err.message;
    });
    client.on('ready', () => {
      this.lastConnectionError = '';
      if (this.mark !== '' && this.link === Link.Checking) void this.verify(client);
    });
    // Whatever Redis is there after a reconnection is checked before it is used again.
    client.on('close', () => {
      if (this.link === Link.Ok) this.link = Link.Checking;
    });
    return client;
  }

  private async call<T>(op: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new StorageError(`redis ${op} at ${this.address()} failed: ${this.explain(err)}`, { cause: err });
    }
  }

  /** Adds the connection state when the link is down, which the command's own error hides. */
  private explain(err: unknown): string {
    const status = this.client?.status ?? 'closed';
    if (status === 'ready') return describe(err);
    const last = this.lastConnectionError === '' ? '' : `, last error: ${this.lastConnectionError}`;
    return `${describe(err)} (connection ${status}${last})`;
  }

  private ready(): Redis {
    if (this.closed) throw new StorageError('redis engine is closed');
    if (this.client === undefined) throw new StorageError('redis engine is not open');
    if (this.link === Link.Lost) {
      throw new StorageError(`redis at ${this.address()} lost this node's data (restarted without persistence, or flushed): refusing to serve from it; restart the worker to refill its ranges from the other replicas`);
    }
    if (this.link === Link.Checking) throw new StorageError(`redis at ${this.address()} is reconnecting: checking that it kept this node's data`);
    return this.client;
  }

  private address(): string {
    return `${this.options.host}:${this.options.port}/${this.options.db}`;
  }
}

/** Runs a MULTI and returns its replies, rejecting with the first command's error if any failed. */
async function exec(multi: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const replies = await multi.exec();
  if (replies === null) throw new Error('MULTI was discarded');
  const failed = replies.find(([err]) => err !== null);
  if (failed !== undefined) throw failed[0];
  return replies.map(([, reply]) => reply);
}

/** The hash and key of a hash index member ("<16 hex>:<key>"). */
function parseMember(member: string): { key: string; hash: bigint } {
  return { hash: BigInt(`0x${member.slice(0, 16)}`), key: member.slice(17) };
}

/** Escapes Redis glob metacharacters so the prefix matches literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
