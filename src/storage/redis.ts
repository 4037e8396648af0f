/**
 * The seed's backend: one Redis per node, records as plain string values
 * under a key prefix. Calls fail fast with StorageError while Redis is gone
 * (no offline queue, one retry) and the client keeps reconnecting in the
 * background, so the engine recovers by itself when Redis comes back.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { StorageError } from '../core/errors.js';
import type { StorageEngine, StorageEntry } from './engine.js';

export interface RedisEngineOptions {
  host: string;
  port: number;
  db: number;
  /** '' means no AUTH. */
  password: string;
  /** Prepended to every key, so a Redis can be shared; default 'god:r:'. */
  keyPrefix?: string;
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

export class RedisEngine implements StorageEngine {
  readonly kind = 'redis';
  private readonly options: Required<RedisEngineOptions>;
  private client: Redis | undefined;
  private closed = false;
  /** The latest connection error, for messages: a command only learns "stream isn't writeable". */
  private lastConnectionError = '';

  constructor(options: RedisEngineOptions) {
    this.options = {
      ...options,
      keyPrefix: options.keyPrefix ?? keyPrefixDefault,
      connectTimeoutMs: options.connectTimeoutMs ?? connectTimeoutMsDefault,
      commandTimeoutMs: options.commandTimeoutMs ?? commandTimeoutMsDefault,
    };
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
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const client = this.ready();
    const record = await this.call('get', () => client.getBuffer(this.options.keyPrefix + key));
    return record ?? undefined;
  }

  async put(key: string, record: Uint8Array): Promise<void> {
    const client = this.ready();
    const value = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
    await this.call('put', () => client.set(this.options.keyPrefix + key, value));
  }

  async delete(key: string): Promise<void> {
    const client = this.ready();
    await this.call('delete', () => client.del(this.options.keyPrefix + key));
  }

  /** DBSIZE is O(1) but counts the whole db, keys outside the prefix included (engine.ts). */
  async count(): Promise<number> {
    const client = this.ready();
    return this.call('count', () => client.dbsize());
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
    return this.client;
  }

  private address(): string {
    return `${this.options.host}:${this.options.port}/${this.options.db}`;
  }
}

/** Escapes Redis glob metacharacters so the prefix matches literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
