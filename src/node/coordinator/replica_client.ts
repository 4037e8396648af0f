/**
 * The coordinator's side of the replica protocol. Every read (or write) for
 * one replica made in the same event-loop turn travels in one batch message
 * (flushed on a microtask, or earlier when the batch is full), and each
 * item's promise settles with its own result. At high concurrency this turns
 * a message per replica per operation into a message per replica per turn.
 *
 * Every message fits the NATS max_payload: batches are bounded in bytes, an
 * item too large on its own fails with 413 unsent, and a read the replica
 * could not fit in its batch reply is asked again alone.
 * Each replica is spoken to in the newest protocol version it speaks.
 */
import { errorFromCode, StaleWriteError, TooLargeError } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { TurnBatches, type Batch } from '../../core/turn_batch.js';
import { versionsBytes, type Version } from '../../core/version.js';
import { askAloneCode, decode, encode, Kind, ProtocolError, protocolVersion, type ItemFailure, type ItemResult, type ReplicaPutItem } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import { replyError, type Transport } from '../../transport/transport.js';

type Sender<I, T> = (node: string, batch: Batch<I, T>) => Promise<void>;

/** Key bytes and CBOR framing per item, as counted towards the batch byte bound. */
const itemOverheadBytes = 64;

export interface ReplicaClientOptions {
  /** Largest request payload (the NATS max_payload less room for headers); undefined: no bound known. */
  requestBytesMax?: number;
  /** The protocol version a node speaks (from its heartbeats); default the newest. */
  protocolOf?: (node: string) => number;
}

export class ReplicaClient {
  private readonly gets: TurnBatches<string, Version[]>;
  private readonly puts: TurnBatches<ReplicaPutItem, void>;
  private readonly requestBytesMax: number;
  private readonly protocolOf: (node: string) => number;

  constructor(
    private readonly transport: Transport,
    private readonly cluster: string,
    private readonly timeoutMs: number,
    opts: ReplicaClientOptions = {},
  ) {
    this.requestBytesMax = opts.requestBytesMax ?? Number.POSITIVE_INFINITY;
    // A quarter of the payload bound leaves room for the estimate's error; a larger item travels alone.
    const batchBytesMax = Math.min(limits.replicaBatchBytesMax, Math.floor(this.requestBytesMax / 4));
    this.gets = new TurnBatches((node, batch) => void this.sendGets(node, batch), limits.replicaBatchItemsMax, batchBytesMax);
    this.puts = new TurnBatches((node, batch) => void this.sendPuts(node, batch), limits.replicaBatchItemsMax, batchBytesMax);
    this.protocolOf = opts.protocolOf ?? (() => protocolVersion);
  }

  get(node: string, key: string): Promise<Version[]> {
    return this.gets.add(node, key, key.length + itemOverheadBytes);
  }

  /**
   * `fresh` marks a coordinator's new version: the replica refuses it when
   * stale (StaleWriteError). `hintFor` makes it a hint the replica keeps for
   * that member (sloppy quorum), not its own copy.
   */
  put(node: string, key: string, versions: Version[], fresh = false, hintFor?: string): Promise<void> {
    const bytes = key.length + itemOverheadBytes + versionsBytes(versions);
    const item: ReplicaPutItem = fresh ? { key, versions, fresh } : { key, versions };
    if (hintFor !== undefined) item.hintFor = hintFor;
    return this.puts.add(node, item, bytes);
  }

  private readonly sendGets: Sender<string, Version[]> = async (node, batch) => {
    const v = this.protocolOf(node);
    const retryAlone: number[] = [];
    await this.exchange(node, ReplicaOp.Get, encode({ kind: Kind.ReplicaGet, keys: batch.items }, v), batch, (data) =>
      decode(data, Kind.ReplicaGetReply).results.map((r, i) => {
        if (r.ok) return { ok: true, value: r.versions };
        if (r.code === askAloneCode && batch.items.length > 1) retryAlone.push(i);
        return r;
      }),
      (i) => !retryAlone.includes(i),
    );
    for (const i of retryAlone) void this.sendGets(node, { items: [batch.items[i]!], waiters: [batch.waiters[i]!], bytes: 0 });
  };

  private readonly sendPuts: Sender<ReplicaPutItem, void> = async (node, batch) => {
    const v = this.protocolOf(node);
    await this.exchange(node, ReplicaOp.Put, encode({ kind: Kind.ReplicaPut, items: batch.items }, v), batch, (data) =>
      decode(data, Kind.ReplicaPutReply).results.map((r) => (r.ok ? { ok: true, value: undefined } : r)),
    );
  };

  /**
   * One request for the whole batch; settles every item with its own result
   * (except those `settles` leaves to a retry), or all with the request's
   * failure; a request over the payload bound fails with 413, unsent.
   */
  private async exchange<I, T>(
    node: string,
    op: ReplicaOp,
    payload: Uint8Array,
    batch: Batch<I, T>,
    results: (data: Uint8Array) => ItemResult<{ value: T }>[],
    settles: (index: number) => boolean = () => true,
  ): Promise<void> {
    if (payload.length > this.requestBytesMax) {
      // Batches are bounded at a quarter of the bound by an estimate that errs high, so only an
      // item too large on its own gets here: refused, never sent (NATS would close the connection).
      const err = new TooLargeError(`replica ${op} of ${payload.length} bytes is over the NATS max_payload`);
      for (const w of batch.waiters) w.reject(err);
      return;
    }
    try {
      const reply = await this.transport.request(replicaSubject(this.cluster, node, op), payload, { timeoutMs: this.timeoutMs });
      const refused = replyError(reply);
      if (refused) throw refused;
      const items = results(reply.data);
      if (items.length !== batch.waiters.length) throw new ProtocolError(`${items.length} results for ${batch.waiters.length} items`);
      items.forEach((r, i) => {
        if (!settles(i)) return;
        const w = batch.waiters[i]!;
        if (r.ok) w.resolve(r.value);
        else w.reject(itemError(r));
      });
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const w of batch.waiters) w.reject(e);
    }
  }
}

function itemError(r: ItemFailure): Error {
  if (r.floor !== undefined) return new StaleWriteError(r.error, r.floor);
  return errorFromCode(r.code, r.error);
}
