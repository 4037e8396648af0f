/**
 * The replica: serves reads and writes of this node's own storage on its
 * node subjects. A write merges the incoming versions with the stored
 * siblings (core/version.ts) under a per-key lock and stores the result
 * only when it changed.
 */
import type { Logger } from 'pino';
import { GodDbError, ErrorCode, StorageError } from '../core/errors.js';
import { limits } from '../core/limits.js';
import { mergeSiblings, isUpToDate, type Version } from '../core/version.js';
import { decode, encode, Kind, ProtocolError, type ItemResult, type ReplicaPutItem } from '../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../protocol/subjects.js';
import type { StorageEngine } from '../storage/engine.js';
import type { InboundMessage, Subscription, Transport } from '../transport/transport.js';
import { KeyLock } from './key_lock.js';

export class Replica {
  private readonly locks = new KeyLock(limits.keyLocksMax);

  constructor(
    private readonly engine: StorageEngine,
    private readonly logger: Logger,
  ) {}

  async get(key: string): Promise<Version[]> {
    const record = await this.engine.get(key);
    if (record === undefined) return [];
    return decode(record, Kind.StoredRecord).versions;
  }

  /** Merges `incoming` into what is stored; resolves once it is stored. */
  async put(key: string, incoming: readonly Version[]): Promise<void> {
    await this.locks.run(key, async () => {
      const held = await this.get(key);
      const merged = mergeSiblings(held, incoming, limits.siblingsMax);
      if (isUpToDate(held, merged)) return;
      await this.engine.put(key, encode({ kind: Kind.StoredRecord, versions: merged }));
    });
  }

  /** Subscribes to this node's replica subjects. */
  listen(transport: Transport, cluster: string, nodeId: string): Subscription[] {
    return [
      transport.subscribe(replicaSubject(cluster, nodeId, ReplicaOp.Get), (m) => void this.onGet(m)),
      transport.subscribe(replicaSubject(cluster, nodeId, ReplicaOp.Put), (m) => void this.onPut(m)),
    ];
  }

  private async onGet(msg: InboundMessage): Promise<void> {
    let keys: string[];
    try {
      keys = decode(msg.data, Kind.ReplicaGet).keys;
    } catch (err) {
      return this.refuse(msg, err);
    }
    const results = await Promise.all(
      keys.map((key) => this.get(key).then((versions): ItemResult<{ versions: Version[] }> => ({ ok: true, versions }), (err) => this.failure(err, 'get'))),
    );
    msg.respond(encode({ kind: Kind.ReplicaGetReply, results }));
  }

  private async onPut(msg: InboundMessage): Promise<void> {
    let items: ReplicaPutItem[];
    try {
      items = decode(msg.data, Kind.ReplicaPut).items;
    } catch (err) {
      return this.refuse(msg, err);
    }
    const results = await Promise.all(
      items.map((item) => this.put(item.key, item.versions).then((): ItemResult<object> => ({ ok: true }), (err) => this.failure(err, 'put'))),
    );
    msg.respond(encode({ kind: Kind.ReplicaPutReply, results }));
  }

  /** A message that cannot be decoded is refused whole, with the reason. */
  private refuse(msg: InboundMessage, err: unknown): void {
    const failure = this.failure(err, 'decode');
    msg.respondError(failure.code, failure.error);
  }

  private failure(err: unknown, op: string): { ok: false; code: number; error: string } {
    if (err instanceof ProtocolError) this.logger.warn({ err: err.message, op }, 'refused a malformed replica request');
    else if (err instanceof StorageError) this.logger.error({ err: err.message, op }, 'storage failed');
    else if (!(err instanceof GodDbError)) this.logger.error({ err, op }, 'replica request failed');
    const code = err instanceof GodDbError ? err.code : ErrorCode.Internal;
    return { ok: false, code, error: err instanceof Error ? err.message : String(err) };
  }
}
