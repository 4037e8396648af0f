/**
 * The coordinator's side of the replica protocol. Every read (or write) for
 * one replica made in the same event-loop turn travels in one batch message
 * (flushed on a microtask, or earlier when the batch is full), and each
 * item's promise settles with its own result. At high concurrency this turns
 * a message per replica per operation into a message per replica per turn.
 */
import { errorFromCode } from '../core/errors.js';
import { limits } from '../core/limits.js';
import type { Version } from '../core/version.js';
import { decode, encode, Kind, ProtocolError, type ItemResult, type ReplicaPutItem } from '../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../protocol/subjects.js';
import { replyError, type Transport } from '../transport/transport.js';

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

interface Batch<I, T> {
  items: I[];
  waiters: Waiter<T>[];
  bytes: number;
}

type Sender<I, T> = (node: string, batch: Batch<I, T>) => Promise<void>;

/** Key bytes and CBOR framing per item, as counted towards replicaBatchBytesMax. */
const itemOverheadBytes = 64;

export class ReplicaClient {
  private readonly gets = new Map<string, Batch<string, Version[]>>();
  private readonly puts = new Map<string, Batch<ReplicaPutItem, void>>();

  constructor(
    private readonly transport: Transport,
    private readonly cluster: string,
    private readonly timeoutMs: number,
  ) {}

  get(node: string, key: string): Promise<Version[]> {
    return this.enqueue(this.gets, node, key, key.length + itemOverheadBytes, this.sendGets);
  }

  put(node: string, key: string, versions: Version[]): Promise<void> {
    const bytes = versions.reduce((n, v) => n + v.value.length + itemOverheadBytes, key.length);
    return this.enqueue(this.puts, node, { key, versions }, bytes, this.sendPuts);
  }

  private enqueue<I, T>(pending: Map<string, Batch<I, T>>, node: string, item: I, bytes: number, send: Sender<I, T>): Promise<T> {
    let batch = pending.get(node);
    if (batch && (batch.items.length >= limits.replicaBatchItemsMax || batch.bytes + bytes > limits.replicaBatchBytesMax)) {
      pending.delete(node);
      void send(node, batch);
      batch = undefined;
    }
    if (!batch) {
      const fresh: Batch<I, T> = { items: [], waiters: [], bytes: 0 };
      pending.set(node, fresh);
      queueMicrotask(() => {
        if (pending.get(node) !== fresh) return; // already sent because it filled up
        pending.delete(node);
        void send(node, fresh);
      });
      batch = fresh;
    }
    batch.items.push(item);
    batch.bytes += bytes;
    const b = batch;
    return new Promise<T>((resolve, reject) => b.waiters.push({ resolve, reject }));
  }

  private readonly sendGets: Sender<string, Version[]> = async (node, batch) => {
    await this.exchange(node, ReplicaOp.Get, encode({ kind: Kind.ReplicaGet, keys: batch.items }), batch, (data) =>
      decode(data, Kind.ReplicaGetReply).results.map((r) => (r.ok ? { ok: true, value: r.versions } : r)),
    );
  };

  private readonly sendPuts: Sender<ReplicaPutItem, void> = async (node, batch) => {
    await this.exchange(node, ReplicaOp.Put, encode({ kind: Kind.ReplicaPut, items: batch.items }), batch, (data) =>
      decode(data, Kind.ReplicaPutReply).results.map((r) => (r.ok ? { ok: true, value: undefined } : r)),
    );
  };

  /** One request for the whole batch; settles every item with its own result, or all with the request's failure. */
  private async exchange<I, T>(
    node: string,
    op: ReplicaOp,
    payload: Uint8Array,
    batch: Batch<I, T>,
    results: (data: Uint8Array) => ItemResult<{ value: T }>[],
  ): Promise<void> {
    try {
      const reply = await this.transport.request(replicaSubject(this.cluster, node, op), payload, { timeoutMs: this.timeoutMs });
      const refused = replyError(reply);
      if (refused) throw refused;
      const items = results(reply.data);
      if (items.length !== batch.waiters.length) throw new ProtocolError(`${items.length} results for ${batch.waiters.length} items`);
      items.forEach((r, i) => {
        const w = batch.waiters[i]!;
        if (r.ok) w.resolve(r.value);
        else w.reject(errorFromCode(r.code, r.error));
      });
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const w of batch.waiters) w.reject(e);
    }
  }
}
