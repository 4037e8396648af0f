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
import { decode, encode, Kind, ProtocolError, type ReplicaGetReply, type ReplicaPutReply } from '../protocol/codec.js';
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
    let reply: ReplicaGetReply;
    try {
      const req = decode(msg.data, Kind.ReplicaGet);
      reply = { kind: Kind.ReplicaGetReply, ok: true, versions: await this.get(req.key) };
    } catch (err) {
      reply = { kind: Kind.ReplicaGetReply, ok: false, ...this.failure(err, 'get') };
    }
    msg.respond(encode(reply));
  }

  private async onPut(msg: InboundMessage): Promise<void> {
    let reply: ReplicaPutReply;
    try {
      const req = decode(msg.data, Kind.ReplicaPut);
      await this.put(req.key, req.versions);
      reply = { kind: Kind.ReplicaPutReply, ok: true };
    } catch (err) {
      reply = { kind: Kind.ReplicaPutReply, ok: false, ...this.failure(err, 'put') };
    }
    msg.respond(encode(reply));
  }

  private failure(err: unknown, op: string): { code: number; error: string } {
    if (err instanceof ProtocolError) this.logger.warn({ err: err.message, op }, 'refused a malformed replica request');
    else if (err instanceof StorageError) this.logger.error({ err: err.message, op }, 'storage failed');
    else if (!(err instanceof GodDbError)) this.logger.error({ err, op }, 'replica request failed');
    const code = err instanceof GodDbError ? err.code : ErrorCode.Internal;
    return { code, error: err instanceof Error ? err.message : String(err) };
  }
}
