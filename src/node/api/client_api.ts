/**
 * The client API: `kv.get|put|del|owners.<key>`, `kv.leave|remove.<node-id>` (and the bare subjects with the key
 * in `KV-Key` or `KV-Key-B64`), served by every node in one queue group and
 * registered as a NATS micro service with one endpoint on all of `kv.>`, so
 * that an unknown operation is answered 400 rather than "no responders".
 * Validates everything on the way in (400/413), then hands the operation to
 * the coordinator; errors go back in the `Nats-Service-Error-Code` /
 * `Nats-Service-Error` headers. Every answer is counted once, by operation
 * and code (Metrics.observe): /metrics and $SRV.STATS both read those counts.
 */
import type { Logger } from 'pino';
import { BadRequestError, ConditionFailedError, ErrorCode, GodDbError, NotFoundError, TooLargeError, UnavailableError } from '../../core/errors.js';
import { emptyClock, type VClock } from '../../core/vclock.js';
import { contextOf, liveSiblings, visibleValue, type Version } from '../../core/version.js';
import { encodeSiblings } from '../../protocol/siblings_reply.js';
import { decodeContext, encodeContext, ProtocolError } from '../../protocol/codec.js';
import { ownersReport } from '../../protocol/placement_report.js';
import { parseTtlHeader } from '../../protocol/ttl.js';
import { summarizeRequests } from '../../protocol/request_counts.js';
import { ClientOp, clientEndpoint, Header, parseClientSubject, serviceName, unaddressed, unsendableKey, type AdminOp } from '../../protocol/subjects.js';
import type { HeaderMap, InboundMessage, ServiceSpec } from '../../transport/transport.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { LogLimiter } from '../log_limiter.js';
import type { Condition } from '../../core/paxos.js';
import type { Metrics } from './metrics.js';
import { answerKeys, isKeysSubject, type ListKeys } from './keys_api.js';
import { isRingSubject, type RingPublisher } from './ring_api.js';

/**
 * Membership changes an operator asks for (`kv.leave.<id>`, `kv.remove.<id>`;
 * `goddb leave|remove`). The node implements them; the API only validates the
 * request and sends back what they resolve or the code of what they throw
 * (GodDbError: 404 unknown member, 409 a state that does not allow it, 503 not now).
 */
export interface AdminHooks {
  /** Starts `nodeId` leaving (forwarded to it when it is another node). Resolves the member's state after the request. */
  leave(nodeId: string): Promise<{ node: string; state: string }>;
  /** Marks a down member removed; its ranges are re-replicated from surviving copies. */
  remove(nodeId: string): Promise<{ node: string; state: string }>;
}

export interface ApiOptions {
  nodeId: string;
  cluster: string;
  version: string;
  replication: number;
  readQuorum: number;
  writeQuorum: number;
  /** Virtual nodes this node placed on the ring (with replication, in $SRV.INFO metadata). */
  virtualNodes: number;
  keyBytesMax: number;
  valueBytesMax: number;
  /** Time to live of a put without KV-TTL, in seconds; 0: none (config defaultTtlSeconds). */
  defaultTtlSeconds: number;
  /** Leave and remove; without them those operations answer 503. */
  admin?: AdminHooks;
  /** Key listing (`kv.keys`, node/keys); without it a listing answers 503. */
  listKeys?: ListKeys;
  /** The change feed (node/changes): told of every put and delete answered 200, after the answer. */
  changes?: { publish(key: string, version: Version): void };
  /** The serving ring for clients (`kv.ring`, node/api/ring_api.ts); without it `kv.ring` answers 503. */
  ring?: RingPublisher;
}

const empty = new Uint8Array(0);
/** Characters of a bad header value quoted back in an error message. */
const quotedCharsMax = 64;

/** The request headers the API defines, checked. */
interface RequestHeaders {
  r: number;
  w: number;
  context: VClock;
  /** KV-TTL in seconds, when sent. */
  ttlSeconds?: number;
  /** KV-Sloppy, when sent. */
  sloppy?: boolean;
  /** KV-If-Absent or KV-If-Match: a conditional write (node/paxos). */
  condition?: Condition;
  /** KV-Serial: a read through Paxos. */
  serial?: boolean;
}

function quoted(raw: string): string {
  return JSON.stringify(raw.length > quotedCharsMax ? `${raw.slice(0, quotedCharsMax)}...` : raw);
}

/** KV-Sloppy: 1 or true (sloppy quorum), 0 or false (strict), case-insensitive; undefined when absent; 400 otherwise. */
export function parseSloppyHeader(raw: string | undefined): boolean | undefined {
  return parseFlagHeader(Header.Sloppy, raw);
}

/** A yes/no header: 1 or true, 0 or false, case-insensitive; undefined when absent; 400 otherwise. */
function parseFlagHeader(name: string, raw: string | undefined): boolean | undefined {
  if (raw === undefined) return undefined;
  const v = raw.trim().toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new BadRequestError(`${name} must be 1, 0, true or false, got ${quoted(raw)}`);
}

export class ClientApi {
  private readonly logs: LogLimiter;

  constructor(
    private readonly opts: ApiOptions,
    private readonly coordinator: Coordinator,
    private readonly metrics: Metrics,
    logger: Logger,
    /** Keys this node holds, cached (node/api/key_count.ts); undefined until counted. */
    private readonly keys: () => Promise<number | undefined>,
  ) {
    this.logs = new LogLimiter(logger);
  }

  service(): ServiceSpec {
    // The promise lets a draining subscription wait until the reply is sent.
    const handler = (m: InboundMessage) => this.handle(m);
    return {
      name: serviceName,
      version: this.opts.version,
      description: `GoD-DB key-value store, cluster ${this.opts.cluster}`,
      queue: `goddb-${this.opts.cluster}`,
      // NATS metadata values are strings; these two place the node on the ring without a stats call.
      metadata: {
        node_id: this.opts.nodeId,
        cluster: this.opts.cluster,
        virtual_nodes: String(this.opts.virtualNodes),
        replication: String(this.opts.replication),
      },
      endpoints: [{ ...clientEndpoint, handler }],
      stats: async () => {
        const [requests, keys] = await Promise.all([this.metrics.requestCounts(), this.keys()]);
        return { data: { requests, ring: this.coordinator.ringReport(keys) }, errors: summarizeRequests(requests).errors };
      },
    };
  }

  async handle(msg: InboundMessage): Promise<void> {
    const started = performance.now();
    let op = 'unknown';
    try {
      const subject = unaddressed(msg.subject, this.opts.nodeId);
      if (isKeysSubject(subject)) {
        op = 'keys';
        const page = await answerKeys(msg, subject, { ...this.opts, payloadBytesMax: this.opts.valueBytesMax }, this.opts.listKeys);
        if (msg.expectsReply) msg.respond(page.data, page.headers);
        this.metrics.observe(op, 200, performance.now() - started);
        return;
      }
      if (isRingSubject(subject)) {
        op = 'ring';
        if (this.opts.ring === undefined) throw new UnavailableError(`node ${this.opts.nodeId} does not publish its ring`);
        const data = this.opts.ring.answer(msg, subject);
        if (msg.expectsReply) msg.respond(data);
        this.metrics.observe(op, 200, performance.now() - started);
        return;
      }
      // The first header read also checks the whole block: a malformed one is 400 (BadRequestError) here.
      const parsed = parseClientSubject(unaddressed(msg.subject, this.opts.nodeId), this.keyHeader(msg), msg.header(Header.KeyB64));
      if ('error' in parsed) throw new BadRequestError(parsed.error);
      op = parsed.op;
      const keyProblem = unsendableKey(parsed.key, this.opts.keyBytesMax);
      if (keyProblem !== undefined) throw new BadRequestError(keyProblem);
      const reply = await this.dispatch(parsed.op, parsed.key, this.requestHeaders(msg), msg);
      this.noteStaleRing(msg, reply);
      if (msg.expectsReply) msg.respond(reply.data, reply.headers);
      // After the answer: announcing the change never delays or fails the write.
      if (reply.changed !== undefined) this.opts.changes?.publish(parsed.key, reply.changed);
      this.metrics.observe(op, 200, performance.now() - started);
    } catch (err) {
      const code = err instanceof GodDbError ? err.code : ErrorCode.Internal;
      const message = err instanceof Error ? err.message : String(err);
      // Rate-limited: a flood of requests that all hit one bug must not fill the disk with lines.
      if (code === ErrorCode.Internal) this.logs.error('request-bug', { err, subject: msg.subject }, 'request failed');
      // A failed condition says what the key holds now, so the client can try again from there.
      const headers = err instanceof ConditionFailedError && err.context !== undefined ? { [Header.Context]: err.context } : undefined;
      if (msg.expectsReply) msg.respondError(code, message, headers);
      this.metrics.observe(op, code, performance.now() - started);
    }
  }

  /**
   * Every header the API defines, checked whatever the op (a KV-R on a put
   * is unused but must still be well formed): a request is either well
   * formed or answered 400, never half read.
   */
  private requestHeaders(msg: InboundMessage): RequestHeaders {
    const headers: RequestHeaders = {
      r: this.quorumHeader(msg, Header.R, this.opts.readQuorum),
      w: this.quorumHeader(msg, Header.W, this.opts.writeQuorum),
      context: this.contextHeader(msg, Header.Context) ?? emptyClock,
    };
    const ttl = this.ttlHeader(msg);
    if (ttl !== undefined) headers.ttlSeconds = ttl;
    const sloppy = parseSloppyHeader(msg.header(Header.Sloppy));
    if (sloppy !== undefined) headers.sloppy = sloppy;
    const ifAbsent = parseFlagHeader(Header.IfAbsent, msg.header(Header.IfAbsent));
    const ifMatch = this.contextHeader(msg, Header.IfMatch);
    if (ifAbsent === true && ifMatch !== undefined) throw new BadRequestError(`${Header.IfAbsent} and ${Header.IfMatch} exclude each other: a key cannot be both absent and at a version`);
    if (ifAbsent === true) headers.condition = { ifAbsent: true };
    if (ifMatch !== undefined) headers.condition = { ifMatch };
    if (headers.condition !== undefined && msg.header(Header.Context) !== undefined) {
      throw new BadRequestError(`${Header.Context} does not go with a condition: a conditional write supersedes the version the condition names`);
    }
    const serial = parseFlagHeader(Header.Serial, msg.header(Header.Serial));
    if (serial !== undefined) headers.serial = serial;
    return headers;
  }

  private async dispatch(op: ClientOp, key: string, headers: RequestHeaders, msg: InboundMessage): Promise<{ data: Uint8Array; headers?: HeaderMap; changed?: Version }> {
    const { r, w, context } = headers;
    switch (op) {
      case ClientOp.Get: {
        if (headers.condition !== undefined) throw new BadRequestError(`${Header.IfAbsent} and ${Header.IfMatch} are for puts and deletes`);
        const res = headers.serial === true ? await this.coordinator.serialRead(key) : await this.coordinator.read(key, r);
        const acks = `${res.acks}/${res.asked}`;
        // Several versions only under the siblings policy (lww reconciles to one): every live value, once.
        const live = res.versions.length > 1 ? liveSiblings(res.versions, res.nowHlc) : undefined;
        const winner = live === undefined ? visibleValue(res.versions, res.nowHlc) : live[0];
        if (!winner) throw new NotFoundError(`not found: ${key}`);
        const out: Record<string, string> = { [Header.Context]: encodeContext(contextOf(res.versions)), [Header.Acks]: acks };
        if (live === undefined || live.length === 1) return { data: winner.value, headers: out };
        const reply = encodeSiblings(live.map((v) => v.value));
        return { data: reply.data, headers: { ...out, [Header.Siblings]: String(live.length), [Header.SiblingLengths]: reply.lengths } };
      }
      case ClientOp.Put:
      case ClientOp.Del: {
        if (op === ClientOp.Put && msg.data.length > this.opts.valueBytesMax) {
          throw new TooLargeError(`value of ${msg.data.length} bytes is over the maximum of ${this.opts.valueBytesMax}`);
        }
        if (op === ClientOp.Del && msg.data.length > 0) throw new BadRequestError('a delete takes an empty payload');
        if (op === ClientOp.Del && headers.ttlSeconds !== undefined) throw new BadRequestError(`${Header.Ttl} is for puts: a delete takes none`);
        const ttl = op === ClientOp.Put ? (headers.ttlSeconds ?? (this.opts.defaultTtlSeconds > 0 ? this.opts.defaultTtlSeconds : undefined)) : undefined;
        if (headers.serial !== undefined) throw new BadRequestError(`${Header.Serial} is for gets: a conditional write is serial by itself`);
        if (headers.condition !== undefined) {
          if (op === ClientOp.Del && 'ifAbsent' in headers.condition) throw new BadRequestError(`${Header.IfAbsent} is for puts: a delete of an absent key has nothing to do`);
          // A Paxos prepare reply carries the stored versions and the accepted proposal: each must fit in half of it.
          if (msg.data.length > Math.floor(this.opts.valueBytesMax / 2)) {
            throw new TooLargeError(`a conditional put's value is at most half the maximum value size, ${Math.floor(this.opts.valueBytesMax / 2)} bytes; this one is ${msg.data.length}`);
          }
          const res = await this.coordinator.conditionalWrite(key, headers.condition, op === ClientOp.Put ? msg.data : null, ttl);
          return { data: empty, headers: { [Header.Acks]: `${res.acks}/${res.asked}` }, ...(res.version === undefined ? {} : { changed: res.version }) };
        }
        const res = await this.coordinator.write(key, op === ClientOp.Put ? msg.data : null, w, context, ttl, headers.sloppy === undefined ? {} : { sloppy: headers.sloppy });
        return { data: empty, headers: { [Header.Acks]: `${res.acks}/${res.asked}` }, ...(res.version === undefined ? {} : { changed: res.version }) };
      }
      case ClientOp.Owners: {
        const report = ownersReport(key, this.opts.nodeId, this.opts.replication, this.coordinator.placementOf(key));
        return { data: new TextEncoder().encode(JSON.stringify(report)) };
      }
      case ClientOp.Leave:
      case ClientOp.Remove:
        return { data: await this.membershipChange(op, key, msg) };
    }
  }

  /**
   * A request the SDK routed by a ring (KV-Ring: its fingerprint) other than
   * this node's: served all the same (any node may coordinate any key), and
   * the reply carries this node's fingerprint so the SDK fetches the ring.
   */
  private noteStaleRing(msg: InboundMessage, reply: { headers?: HeaderMap }): void {
    const held = msg.header(Header.Ring);
    if (held === undefined || this.opts.ring === undefined) return;
    const fingerprint = this.opts.ring.fingerprint();
    if (held.trim() !== fingerprint) reply.headers = { ...reply.headers, [Header.Ring]: fingerprint };
  }

  /** A leave or remove of member `nodeId` (a valid node id: parseClientSubject checked it), as `{ node, state }`. */
  private async membershipChange(op: AdminOp, nodeId: string, msg: InboundMessage): Promise<Uint8Array> {
    if (msg.data.length > 0) throw new BadRequestError(`a ${op} takes an empty payload`);
    const admin = this.opts.admin;
    if (admin === undefined) throw new UnavailableError(`node ${this.opts.nodeId} cannot change membership: ${op} is not available on it`);
    const result = op === ClientOp.Leave ? await admin.leave(nodeId) : await admin.remove(nodeId);
    if (typeof result?.node !== 'string' || typeof result.state !== 'string') {
      throw new GodDbError(ErrorCode.Internal, `${op} of ${nodeId} resolved no member state`);
    }
    return new TextEncoder().encode(JSON.stringify({ node: result.node, state: result.state }));
  }

  /** KV-Key, unless header parsing changed it: a key padded with white space would arrive as another key. */
  private keyHeader(msg: InboundMessage): string | undefined {
    const key = msg.header(Header.Key);
    if (key !== undefined && msg.headerPadded(Header.Key)) {
      throw new BadRequestError(`${Header.Key} starts or ends with white space, which header parsing drops: send such a key in ${Header.KeyB64} (base64url of its UTF-8 bytes)`);
    }
    return key;
  }

  private quorumHeader(msg: InboundMessage, name: string, fallback: number): number {
    const raw = msg.header(name);
    if (raw === undefined) return fallback;
    const n = Number(raw.trim());
    if (!/^\s*\d+\s*$/.test(raw) || n < 1 || n > this.opts.replication) {
      throw new BadRequestError(`${name} must be an integer from 1 to N=${this.opts.replication}, got ${quoted(raw)}`);
    }
    return n;
  }

  private ttlHeader(msg: InboundMessage): number | undefined {
    const raw = msg.header(Header.Ttl);
    if (raw === undefined) return undefined;
    const ttl = parseTtlHeader(raw);
    if (typeof ttl !== 'number') throw new BadRequestError(`${Header.Ttl} ${ttl.error}, got ${quoted(raw)}`);
    return ttl;
  }

  /** A context header (KV-Context, KV-If-Match): undefined when absent, 400 when not a context a read returned. */
  private contextHeader(msg: InboundMessage, name: string): VClock | undefined {
    const raw = msg.header(name);
    if (raw === undefined) return undefined;
    try {
      return decodeContext(raw.trim());
    } catch (err) {
      const why = err instanceof ProtocolError ? `: ${err.message.replace(/^malformed message: /, '')}` : '';
      throw new BadRequestError(`${name} is not a context returned by a read${why}`, { cause: err });
    }
  }
}
