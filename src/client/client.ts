/**
 * The SDK's client over any Transport: it speaks the public wire contract
 * (kv.<op>.<key>, KV-* headers, service-error headers), so it works against a
 * real cluster over NATS and against the simulated bus alike.
 */
import {
  BadRequestError,
  ConditionFailedError,
  ErrorCode,
  GodDbError,
  QuorumNotMetError,
  TimeoutError,
  TooLargeError,
} from '../core/errors.js';
import { limits } from '../core/limits.js';
import { listNodes, type NodeInfo } from './nodes.js';
import { NodeRouter } from './node_router.js';
import { RingRouter, type Route } from './ring_router.js';
import { parseOwnersReport, type OwnersReport } from '../protocol/placement_report.js';
import { ClientOp, Header, clientRequest, isValidToken, keysSubject, unsendableKey, type AdminOp } from '../protocol/subjects.js';
import { ttlSecondsOf } from '../protocol/ttl.js';
import { decodeSiblings } from '../protocol/siblings_reply.js';
import { watchChanges, type WatchOptions, type Watcher } from './watch.js';
import { listKeys, type KeysOptions } from './keys.js';
import {
  NoRespondersError,
  RequestTimeoutError,
  replyError,
  type Reply,
  type Transport,
} from '../transport/transport.js';

export interface GetResult {
  /** The value's bytes, exactly as stored (with siblings: the newest, by LWW). */
  readonly value: Uint8Array;
  /**
   * Every live concurrent value, newest first (conflictPolicy `siblings`);
   * `[value]` when there is one. A put with `context` resolves them all.
   */
  readonly values: Uint8Array[];
  /** The value decoded as UTF-8. */
  text(): string;
  /** Opaque causal context; pass it to put/del to supersede exactly what was read. */
  readonly context: string;
  /** Concurrent versions the read found (1 when there is a single version). */
  readonly siblings: number;
}

export interface GetOptions {
  /** Read quorum for this request (KV-R). */
  r?: number;
  /**
   * A serial read (KV-Serial): through Paxos among the key's replicas, so it
   * is linearizable with conditional writes (finishing one in progress
   * first). One round trip and one synced write on a majority; `r` is not used.
   */
  serial?: boolean;
}

export interface WriteOptions {
  /** Write quorum for this request (KV-W). */
  w?: number;
  /** The context of an earlier read (KV-Context). */
  context?: string;
  /** Sloppy quorum for this write (KV-Sloppy): false answers 503 rather than counting hints on fallbacks. */
  sloppy?: boolean;
  /**
   * Write only if the key's current version is exactly the one this context
   * names (KV-If-Match: the context of an earlier get), linearizably (Paxos
   * among the key's replicas); otherwise ConditionFailedError (409), whose
   * `context` is the current one. Not with `context`, `w` or `sloppy`.
   */
  ifMatch?: string;
}

export interface PutOptions extends WriteOptions {
  /**
   * Time to live (KV-TTL): seconds, or a duration with one unit ('30s', '5m',
   * '1h', '2d'); a whole number of seconds from 1 to ten years. The key reads
   * as absent from then on. Without it the cluster's defaultTtlSeconds applies.
   */
  ttl?: number | string;
  /** Create only (KV-If-Absent): write only if the key has no live value, else ConditionFailedError (409). */
  ifAbsent?: boolean;
}

export interface PutResult {
  /** Replicas that acknowledged, as the node reports it (e.g. '2/3'); '' when not reported. */
  readonly acks: string;
}

/** A member's membership state after a leave or remove was accepted ('leaving', 'left', 'removed'...). */
export interface MembershipChange {
  readonly node: string;
  readonly state: string;
}

export interface GodDbClient {
  /** The value under `key`, or null when there is none (404). */
  get(key: string, opts?: GetOptions): Promise<GetResult | null>;
  put(key: string, value: Uint8Array | string, opts?: PutOptions): Promise<PutResult>;
  del(key: string, opts?: WriteOptions): Promise<void>;
  /**
   * Where `key` lives as the answering node's coordinator sees it (kv.owners): its hash, its
   * replicas in preference order with their liveness, fallbacks for the down ones, pending owners.
   */
  owners(key: string): Promise<OwnersReport>;
  /** The nodes that answer within `waitMs` (default 500), from their micro-service statistics. */
  nodes(opts?: { waitMs?: number }): Promise<NodeInfo[]>;
  /**
   * Asks the live member `nodeId` to leave (kv.leave): it hands its ranges to
   * their next owners, then exits. Resolves once the request is accepted, with
   * the member's state then ('leaving'); watch nodes() for the rest. NotFoundError
   * for an unknown member, a GodDbError with code 409 when its state forbids it.
   */
  leave(nodeId: string): Promise<MembershipChange>;
  /**
   * Removes the down member `nodeId` (kv.remove): each of its ranges gets a
   * new replica, streamed from the surviving copies. A member that is up is
   * refused with code 409 (ask it to leave instead).
   */
  remove(nodeId: string): Promise<MembershipChange>;
  /**
   * The change feed of the keys starting with `prefix` ('' for all), as an
   * async iterator: each key's events in HLC order, without duplicates or
   * older events (client/watch.ts). Live by default; with `stream` (a
   * JetStream stream capturing the feed) from a sequence, a time or the last
   * event of each key, then live. Resolves once subscribed; `stop()` ends it.
   */
  watch(prefix: string, opts?: WatchOptions): Promise<Watcher>;
  /**
   * Every live key that starts with `prefix` ('' or absent for all), once
   * each, in hash order, as an async iterator over the pages of `kv.keys`
   * (each asked for when the last is consumed). It walks the whole store:
   * for tools and maintenance, not for a request path.
   */
  keys(prefix?: string, opts?: KeysOptions): AsyncIterableIterator<string>;
  /** The nodes requests go to now (those that answered the last $SRV.PING round), when routing by node. */
  liveNodes(): string[];
  /**
   * The key's replicas in preference order by the ring this client holds
   * (routing 'direct', from `kv.ring`); [] under other routings or before
   * the ring is known. Requests on the key go to the first of them that is live.
   */
  replicasOf(key: string): string[];
  close(): Promise<void>;
}

export interface ClientRouting {
  /**
   * 'direct' (the SDK's default): each request goes to the first live
   * replica of its key, by the ring the nodes publish on `kv.ring`, so the
   * coordinator is a replica (client/ring_router.ts); else as 'any'.
   * 'any' ('nodes' is its old name): to one node that answers $SRV.PING,
   * on its own subject, so a paused node stops getting requests within
   * about a second (client/node_router.ts); 'queue': through the `kv.>`
   * queue group, where the NATS server picks.
   */
  routing?: 'direct' | 'any' | 'nodes' | 'queue';
  /** How often the live nodes are asked for (ms). */
  routeProbeMs?: number;
  /** 'direct': how often the ring's fingerprint is checked (ms, default 1000). */
  ringPollMs?: number;
}

type Router = NodeRouter | RingRouter;

function routerFor(transport: Transport, opts: ClientRouting): Router | undefined {
  const probe = opts.routeProbeMs === undefined ? {} : { probeMs: opts.routeProbeMs };
  if (opts.routing === 'direct') return new RingRouter(transport, { ...probe, ...(opts.ringPollMs === undefined ? {} : { ringPollMs: opts.ringPollMs }) });
  if (opts.routing === 'any' || opts.routing === 'nodes') return new NodeRouter(transport, probe);
  return undefined;
}

const empty = new Uint8Array(0);
const encoder = new TextEncoder();

/** A client over an already-connected transport; it takes ownership (close() closes it). */
export function clientOverTransport(transport: Transport, opts: { timeoutMs: number } & ClientRouting): GodDbClient {
  const router = routerFor(transport, opts);
  router?.start();
  return new TransportClient(transport, opts.timeoutMs, router);
}

class TransportClient implements GodDbClient {
  constructor(
    private readonly transport: Transport,
    private readonly timeoutMs: number,
    private readonly router: Router | undefined,
  ) {}

  liveNodes(): string[] {
    return this.router?.nodes() ?? [];
  }

  replicasOf(key: string): string[] {
    return this.router instanceof RingRouter ? this.router.replicasOf(key) : [];
  }

  watch(prefix: string, opts: WatchOptions = {}): Promise<Watcher> {
    return watchChanges(this.transport, prefix, opts);
  }

  keys(prefix = '', opts: KeysOptions = {}): AsyncIterableIterator<string> {
    // A page changes nothing: sent again to another node like a get when the one asked goes away.
    return listKeys((headers) => this.send(ClientOp.Get, keysSubject, empty, headers), prefix, opts);
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult | null> {
    const headers = quorumHeader(Header.R, opts.r);
    if (opts.serial === true) headers[Header.Serial] = '1';
    const reply = await this.call(ClientOp.Get, key, empty, headers, true);
    if (reply === null) return null;
    const lengths = reply.header(Header.SiblingLengths);
    const values = lengths === undefined ? [reply.data] : decodeSiblings(reply.data, lengths);
    const value = values[0] ?? reply.data;
    return {
      value,
      values,
      text: () => new TextDecoder().decode(value),
      context: reply.header(Header.Context) ?? '',
      siblings: values.length,
    };
  }

  async put(key: string, value: Uint8Array | string, opts: PutOptions = {}): Promise<PutResult> {
    const data = typeof value === 'string' ? encoder.encode(value) : value;
    if (data.length > limits.valueBytesMaxDefault) {
      throw new TooLargeError(`value is ${data.length} bytes; the most any node accepts is ${limits.valueBytesMaxDefault}`);
    }
    const headers = writeHeaders(opts);
    if (opts.ttl !== undefined) {
      const ttl = ttlSecondsOf(opts.ttl);
      if (ttl === undefined) {
        throw new BadRequestError(`ttl must be whole seconds from 1 to ${limits.ttlSecondsMax} (a number, or like '30s', '5m', '1h', '2d'), got ${JSON.stringify(opts.ttl)}`);
      }
      headers[Header.Ttl] = String(ttl);
    }
    if (opts.ifAbsent === true) headers[Header.IfAbsent] = '1';
    const reply = await this.call(ClientOp.Put, key, data, headers, false);
    return { acks: reply?.header(Header.Acks) ?? '' };
  }

  async del(key: string, opts: WriteOptions = {}): Promise<void> {
    await this.call(ClientOp.Del, key, empty, writeHeaders(opts), false);
  }

  async owners(key: string): Promise<OwnersReport> {
    const reply = await this.call(ClientOp.Owners, key, empty, {}, false);
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(reply!.data));
    } catch {
      raw = undefined;
    }
    const report = parseOwnersReport(raw);
    if (report === undefined) throw new GodDbError(ErrorCode.Internal, `the answer to ${ClientOp.Owners} of ${JSON.stringify(key)} is not an owners report`);
    return report;
  }

  nodes(opts: { waitMs?: number } = {}): Promise<NodeInfo[]> {
    return listNodes(this.transport, opts.waitMs ?? 500);
  }

  leave(nodeId: string): Promise<MembershipChange> {
    return this.membershipChange(ClientOp.Leave, nodeId);
  }

  remove(nodeId: string): Promise<MembershipChange> {
    return this.membershipChange(ClientOp.Remove, nodeId);
  }

  private async membershipChange(op: AdminOp, nodeId: string): Promise<MembershipChange> {
    if (typeof nodeId !== 'string' || !isValidToken(nodeId)) {
      throw new BadRequestError(`not a node id: ${JSON.stringify(nodeId)} (1 to 64 letters, digits, '-' or '_')`);
    }
    const reply = await this.call(op, nodeId, empty, {}, false);
    const change = parseMembershipChange(reply!.data);
    if (change === undefined) throw new GodDbError(ErrorCode.Internal, `the answer to ${op} of ${nodeId} is not { node, state }`);
    return change;
  }

  close(): Promise<void> {
    this.router?.stop();
    return this.transport.close();
  }

  /** One request; null only when `notFoundIsNull` and the reply is a 404. */
  private async call(
    op: ClientOp,
    key: string,
    data: Uint8Array,
    headers: Record<string, string>,
    notFoundIsNull: boolean,
  ): Promise<Reply | null> {
    checkKey(key);
    // Long keys and keys that are not subject tokens travel in a header (see clientRequest).
    const { subject, keyHeader, keyB64Header } = clientRequest(op, key);
    if (keyHeader !== undefined) headers[Header.Key] = keyHeader;
    if (keyB64Header !== undefined) headers[Header.KeyB64] = keyB64Header;
    // Reads and writes go to one of the key's replicas under 'direct' routing (leave and remove name a node, not a key).
    const reply = await this.send(op, subject, data, headers, keyed.has(op) ? key : undefined);
    const err = replyError(reply);
    if (err === undefined) return reply;
    if (notFoundIsNull && err.code === ErrorCode.NotFound) return null;
    // A failed condition says what the key holds now (absent when it has no value).
    if (err.code === ErrorCode.ConditionFailed && (op === ClientOp.Put || op === ClientOp.Del)) throw new ConditionFailedError(err.message, reply.header(Header.Context));
    throw err;
  }

  /**
   * Sends a request to a live node (or the queue group), within one
   * timeoutMs in all. Sent again, to a node not tried yet, when it cannot
   * have been acted on or changes nothing: no responders (the node's
   * subscription is gone: nothing was delivered), and for reads, the node
   * stopped answering pings while the read waited (killed or paused: the
   * router noticed before the timeout). A write that reached a node which
   * then went quiet is not sent again: it may still take effect later (a
   * paused node acts on it when resumed), and a second copy would be a
   * second, later write; it fails with a timeout, its outcome unknown.
   */
  private async send(op: ClientOp, subject: string, data: Uint8Array, headers: Record<string, string>, key?: string): Promise<Reply> {
    const deadline = performance.now() + this.timeoutMs;
    const tried = new Set<string>();
    let last: GodDbError | undefined;
    for (;;) {
      const routed: Route | undefined = this.router === undefined ? { subject, node: undefined } : this.router instanceof RingRouter ? this.router.route(subject, tried, key) : this.router.route(subject, tried);
      const leftMs = Math.ceil(deadline - performance.now());
      if (last !== undefined && (routed === undefined || leftMs <= 0)) throw last;
      if (routed === undefined) throw new Error('assertion: a first request always has a route');
      // Routed by the ring: the node says when its ring differs (a replica no longer, or not yet).
      if (routed.ring !== undefined) headers[Header.Ring] = routed.ring;
      else delete headers[Header.Ring];
      try {
        const reply = await this.attempt(routed.subject, routed.node, rereadable.has(op), data, headers, leftMs);
        if (this.router instanceof RingRouter && routed.ring !== undefined) this.router.observe(reply);
        return reply;
      } catch (err) {
        if (routed.node === undefined) throw fromTransportError(err, subject, this.timeoutMs);
        const again = err instanceof NodeGoneError || err instanceof NoRespondersError;
        const e = fromTransportError(err, subject, this.timeoutMs);
        if (again || e instanceof TimeoutError || e instanceof QuorumNotMetError) this.router!.timedOut(routed.node);
        if (!again) throw e;
        tried.add(routed.node);
        last = err instanceof NodeGoneError ? new TimeoutError(`no reply on ${subject} within ${this.timeoutMs}ms (${[...tried].join(', ')} stopped answering)`) : e;
      }
    }
  }

  /** One request; a read waiting on a node fails with NodeGoneError as soon as the router sees the node go. */
  private attempt(subject: string, node: string | undefined, reread: boolean, data: Uint8Array, headers: Record<string, string>, timeoutMs: number): Promise<Reply> {
    const request = this.transport.request(subject, data, { timeoutMs, headers });
    if (!reread || node === undefined) return request;
    return new Promise<Reply>((resolve, reject) => {
      const unwatch = this.router!.onGone(node, () => reject(new NodeGoneError(`${node} stopped answering`)));
      request.then(
        (r) => {
          unwatch();
          resolve(r);
        },
        (err: unknown) => {
          unwatch();
          reject(err);
        },
      );
    });
  }
}

/** A read sent to a node that stopped answering before it replied; it is sent to another. */
class NodeGoneError extends Error {}

/**
 * Reads and writes of a key: routed to one of its replicas under 'direct'
 * routing. Not owners: it answers as the node asked sees the key, and
 * asking different nodes in turn is how one compares their views.
 */
const keyed: ReadonlySet<ClientOp> = new Set([ClientOp.Get, ClientOp.Put, ClientOp.Del]);
/** Reads: sent again to another node when the one asked goes away (they change nothing). */
const rereadable: ReadonlySet<ClientOp> = new Set([ClientOp.Get, ClientOp.Owners]);
/** The `{ node, state }` a leave or remove answers, or undefined when `data` is not one. */
export function parseMembershipChange(data: Uint8Array): MembershipChange | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { node, state } = raw as Record<string, unknown>;
  return typeof node === 'string' && typeof state === 'string' ? { node, state } : undefined;
}

/** Client-side checks, so an obviously bad key never costs a round trip. */
function checkKey(key: string): void {
  if (typeof key !== 'string') throw new BadRequestError('the key must be a string');
  const problem = unsendableKey(key, limits.keyBytesMax);
  if (problem !== undefined) throw new BadRequestError(problem);
}

function quorumHeader(name: string, n: number | undefined): Record<string, string> {
  if (n === undefined) return {};
  if (!Number.isInteger(n) || n < 1 || n > limits.replicationMax) {
    throw new BadRequestError(`${name} must be an integer from 1 to ${limits.replicationMax}, got ${n}`);
  }
  return { [name]: String(n) };
}

function writeHeaders(opts: WriteOptions): Record<string, string> {
  const headers = quorumHeader(Header.W, opts.w);
  if (opts.context !== undefined && opts.context !== '') headers[Header.Context] = opts.context;
  if (opts.sloppy !== undefined) headers[Header.Sloppy] = opts.sloppy ? '1' : '0';
  if (opts.ifMatch !== undefined) headers[Header.IfMatch] = opts.ifMatch;
  return headers;
}

/** Transport failures as the SDK's typed errors. */
function fromTransportError(err: unknown, subject: string, timeoutMs: number): GodDbError {
  if (err instanceof RequestTimeoutError) {
    return new TimeoutError(`no reply on ${subject} within ${timeoutMs}ms`, { cause: err });
  }
  if (err instanceof NoRespondersError) {
    return new QuorumNotMetError(`no GoD-DB node serves ${subject} (no responders)`, 0, 1, { cause: err });
  }
  if (err instanceof GodDbError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GodDbError(ErrorCode.Internal, `request on ${subject} failed: ${message}`, { cause: err });
}
