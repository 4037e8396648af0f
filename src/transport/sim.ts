/**
 * An in-process, seeded, simulated bus with the Transport interface
 * (tigerbeetle packet_simulator, etcd raft's test network). Every delivery
 * goes through the given clock with a seeded delay, so deliveries overtake
 * one another; links can drop or duplicate deliveries at seeded rates or be
 * cut (partitions); a connection can be killed, which removes its
 * subscriptions at once, as the NATS server does when a process dies. Same
 * seed, same schedule, same run.
 *
 * It enforces what nats.js and nats-server enforce, and handles it where
 * the NATS adapter (nats.ts) does, so that the simulator fails where a real
 * node fails: a message over `maxPayloadBytes` (payload plus encoded
 * headers) or with a header value holding CR or LF throws from publish and
 * rejects a request; a reply that cannot be sent becomes a 500, and a
 * handler that throws or rejects is answered with 500 (when it had not
 * answered). Both are reported to `onError`, as the adapter reports them,
 * so a simulation can count what a real node would only log.
 */
import type { Clock } from '../core/clock.js';
import { ErrorCode, GodDbError } from '../core/errors.js';
import { isHeaderName, sanitizeHeaderValue } from '../protocol/headers.js';
import { Handling } from './handling.js';
import {
  NoRespondersError,
  RequestTimeoutError,
  ServiceErrorHeader,
  type HeaderMap,
  type InboundMessage,
  type MessageHandler,
  type Reply,
  type RequestOptions,
  type ServiceSpec,
  type Subscription,
  type Transport,
} from './transport.js';

/** mulberry32: a small, seeded PRNG; good enough for schedules. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** nats-server's default max_payload. */
export const simMaxPayloadBytesDefault = 1024 * 1024;

export interface SimOptions {
  seed: number;
  /** Delivery timers; the bus is the network, not a node, so one clock for all. */
  clock: Clock;
  /** Delivery delay bounds in ms. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Probability that any one delivery is lost. */
  dropRate?: number;
  /** Probability that any one delivery arrives twice, each copy with its own delay. */
  duplicateRate?: number;
  /** Probability that a delivery is slow: delayed up to `slowDelayMsMax` instead. */
  slowRate?: number;
  slowDelayMsMax?: number;
  /** The server's max_payload: payload plus encoded headers (default 1 MiB). */
  maxPayloadBytes?: number;
}

/** A failure the transport caught instead of passing it to a caller, as nats.ts reports them. */
export interface SimTransportError {
  conn: string;
  subject: string;
  what: string;
  err: unknown;
}

/** What nats.js throws for a message it will not send (its InvalidArgumentError, same name and text). */
export class InvalidArgumentError extends Error {
  /** The connection that tried to send it. */
  readonly conn: string;
  constructor(property: string, message: string, conn: string) {
    super(`'${property}' ${message}`);
    this.name = 'InvalidArgumentError';
    this.conn = conn;
  }
}

interface SimSub {
  ep: SimTransport;
  tokens: string[];
  queue: string | undefined;
  handler: MessageHandler;
  active: boolean;
  /** Draining: nothing new is addressed to it; what is on its way is still delivered. */
  draining?: boolean;
}

interface SimReply {
  data: Uint8Array;
  headers: HeaderMap | undefined;
}

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string[], subject: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== '*' && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Bytes the headers add to a message as nats.js encodes them:
 * `NATS/1.0` then `\r\nKey: value` per header then `\r\n\r\n`; nothing when there are none.
 */
export function headerBytes(headers: HeaderMap | undefined): number {
  if (!headers) return 0;
  let n = 0;
  let any = false;
  for (const k in headers) {
    any = true;
    n += 4 + utf8Bytes(k) + utf8Bytes(headers[k]!.trim());
  }
  return any ? 8 + n + 4 : 0;
}

export class SimBus {
  private readonly random: () => number;
  private readonly subs: SimSub[] = [];
  private readonly endpoints: SimTransport[] = [];
  private readonly cut = new Set<string>();
  private readonly stalled = new Map<string, { stalls: (subject: string) => boolean; held: (() => void)[] }>();
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  readonly maxPayloadBytes: number;
  dropRate: number;
  duplicateRate: number;
  slowRate: number;
  slowDelayMsMax: number;
  delivered = 0;
  dropped = 0;
  duplicated = 0;
  /** Hears every failure a transport caught (a reply that could not be sent, a handler that failed). */
  onError: ((e: SimTransportError) => void) | undefined;

  constructor(readonly opts: SimOptions) {
    this.random = seededRandom(opts.seed);
    this.minDelayMs = opts.minDelayMs ?? 1;
    this.maxDelayMs = opts.maxDelayMs ?? 5;
    this.dropRate = opts.dropRate ?? 0;
    this.duplicateRate = opts.duplicateRate ?? 0;
    this.slowRate = opts.slowRate ?? 0;
    this.slowDelayMsMax = opts.slowDelayMsMax ?? 200;
    this.maxPayloadBytes = opts.maxPayloadBytes ?? simMaxPayloadBytesDefault;
  }

  /**
   * A new connection named `conn` (partitions are by name, so a restarted
   * process keeps its cuts). Its request timers run on `clock` when given: a
   * node passes its own, so that a crashed node's pending requests freeze
   * with it instead of failing and running its code on.
   */
  connect(conn: string, clock?: Clock): SimTransport {
    const ep = new SimTransport(this, conn, clock ?? this.opts.clock);
    this.endpoints.push(ep);
    return ep;
  }

  /**
   * Like SIGKILL: the connection's subscriptions vanish, nothing more reaches
   * it and it sends nothing more; what it sent before still arrives (the
   * server had it).
   */
  kill(conn: string): void {
    for (const ep of this.endpoints) if (ep.conn === conn) ep.alive = false;
    for (let i = this.endpoints.length - 1; i >= 0; i--) if (!this.endpoints[i]!.alive) this.endpoints.splice(i, 1);
    for (const s of this.subs) if (s.ep.conn === conn) s.active = false;
    this.removeInactive();
  }

  /** Cuts both directions between two connections. */
  partition(a: string, b: string): void {
    this.cut.add(`${a}|${b}`).add(`${b}|${a}`);
  }

  /** Isolates one connection from every other. */
  isolate(conn: string, others: readonly string[]): void {
    for (const o of others) if (o !== conn) this.partition(conn, o);
  }

  heal(): void {
    this.cut.clear();
  }

  /**
   * A gray failure: deliveries to `conn` on subjects that `stalls` matches
   * are held, not handled, as by a process whose disk or event loop is stuck
   * while its other work (heartbeats) goes on; `unstall` hands them over in
   * order, as the process does when it recovers. Pausing the whole process
   * (SIGSTOP) is stalling every subject and halting its clock.
   */
  stall(conn: string, stalls: (subject: string) => boolean): void {
    this.stalled.set(conn, { stalls, held: this.stalled.get(conn)?.held ?? [] });
  }

  unstall(conn: string): void {
    const s = this.stalled.get(conn);
    this.stalled.delete(conn);
    for (const deliver of s?.held ?? []) deliver();
  }

  addSub(sub: SimSub): void {
    this.subs.push(sub);
  }

  removeInactive(): void {
    for (let i = this.subs.length - 1; i >= 0; i--) if (!this.subs[i]!.active) this.subs.splice(i, 1);
  }

  report(e: SimTransportError): void {
    this.onError?.(e);
  }

  /** Throws what nats.js throws for a message it refuses to send. */
  check(from: SimTransport, data: Uint8Array, headers: HeaderMap | undefined): void {
    if (headers) {
      for (const k in headers) {
        if (/[\r\n]/.test(headers[k]!)) throw new InvalidArgumentError('header', 'values cannot contain \\r or \\n', from.conn);
      }
    }
    if (data.length + headerBytes(headers) > this.maxPayloadBytes) throw new InvalidArgumentError('payload', 'max_payload size exceeded', from.conn);
  }

  private linkUp(from: SimTransport, to: SimTransport): boolean {
    return from.alive && to.alive && !this.cut.has(`${from.conn}|${to.conn}`);
  }

  /** Subscribers a message to `subject` goes to: all plain ones, one per queue group. */
  private targets(subject: string): SimSub[] {
    const tokens = subject.split('.');
    const plain: SimSub[] = [];
    const groups = new Map<string, SimSub[]>();
    for (const s of this.subs) {
      if (!s.active || s.draining || !subjectMatches(s.tokens, tokens)) continue;
      if (s.queue === undefined) plain.push(s);
      else groups.set(s.queue, [...(groups.get(s.queue) ?? []), s]);
    }
    for (const members of groups.values()) plain.push(members[Math.floor(this.random() * members.length)]!);
    return plain;
  }

  /** The longest a delivery can take: a drain waits this long for what is on its way. */
  deliveryDelayMsMax(): number {
    return this.maxDelayMs + (this.slowRate > 0 ? this.slowDelayMsMax + 1 : 0);
  }

  private delay(): number {
    if (this.slowRate > 0 && this.random() < this.slowRate) return this.maxDelayMs + Math.floor(this.random() * this.slowDelayMsMax) + 1;
    return this.minDelayMs + Math.floor(this.random() * (this.maxDelayMs - this.minDelayMs + 1));
  }

  /**
   * Runs `deliver` after a seeded delay, unless the delivery is dropped;
   * sometimes twice, each copy with its own delay. Says how many copies.
   */
  private transmit(from: SimTransport, to: SimTransport, deliver: () => void): number {
    if (!this.linkUp(from, to) || this.random() < this.dropRate) {
      this.dropped++;
      return 0;
    }
    const copies = this.duplicateRate > 0 && this.random() < this.duplicateRate ? 2 : 1;
    if (copies === 2) this.duplicated++;
    for (let i = 0; i < copies; i++) {
      this.opts.clock.setTimer(this.delay(), () => {
        // What the sender had sent reaches the server even if the sender died since; a cut meanwhile loses it.
        if (!to.alive || this.cut.has(`${from.conn}|${to.conn}`)) return;
        this.delivered++;
        deliver();
      });
    }
    return copies;
  }

  /** Sends; returns how many subscribers it was addressed to (before drops). */
  send(from: SimTransport, subject: string, data: Uint8Array, headers: HeaderMap | undefined, reply: ((r: SimReply) => void) | undefined): number {
    const targets = this.targets(subject);
    for (const t of targets) {
      const copy = data.slice();
      const handle = (): void => {
        if (!t.active) return;
        const respond = reply && ((r: SimReply) => this.transmit(t.ep, from, () => reply(r)));
        t.handler(new SimInbound(t.ep, subject, copy, headers, respond));
      };
      const copies = this.transmit(from, t.ep, () => {
        const stall = this.stalled.get(t.ep.conn);
        if (stall && stall.stalls(subject)) stall.held.push(handle);
        else handle();
      });
      if (copies === 2) from.duplicatesSent++;
    }
    return targets.length;
  }
}

function lookup(headers: HeaderMap | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const lower = name.toLowerCase();
  // nats.js trims header values when it sets them.
  for (const k in headers) if (k.toLowerCase() === lower) return headers[k]!.trim();
  return undefined;
}

/** Reply headers as nats.ts sends them: names checked, every value sanitized. */
function replyHeaders(h: HeaderMap): HeaderMap {
  const out: Record<string, string> = {};
  for (const k in h) {
    if (!isHeaderName(k)) throw new GodDbError(ErrorCode.Internal, `invalid reply header name ${JSON.stringify(k)}`);
    out[k] = sanitizeHeaderValue(h[k]!);
  }
  return out;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * A delivered message. `respond` and `respondError` never throw, as in
 * nats.ts: a reply that cannot be sent becomes a 500, and a 500 that cannot
 * be sent is reported.
 */
class SimInbound implements InboundMessage {
  private answered = false;
  /** Set once a reply was attempted, so a failed handler is answered at most once. */
  replied = false;
  constructor(
    private readonly ep: SimTransport,
    readonly subject: string,
    readonly data: Uint8Array,
    private readonly headers: HeaderMap | undefined,
    private readonly reply: ((r: SimReply) => void) | undefined,
  ) {}
  get expectsReply(): boolean {
    return this.reply !== undefined;
  }
  header(name: string): string | undefined {
    return lookup(this.headers, name);
  }
  /** Never: like nats.js, the simulated clients trim header values before sending. */
  headerPadded(): boolean {
    return false;
  }
  respond(data: Uint8Array, headers?: HeaderMap): void {
    this.replied = true;
    try {
      this.send(data, headers && replyHeaders(headers));
    } catch (err) {
      this.ep.bus.report({ conn: this.ep.conn, subject: this.subject, what: 'reply failed', err });
      this.sendError(ErrorCode.Internal, `the reply could not be sent: ${messageOf(err)}`);
    }
  }
  respondError(code: number, description: string, headers?: HeaderMap): void {
    this.replied = true;
    this.sendError(code, description, headers);
  }
  private sendError(code: number, description: string, headers?: HeaderMap): void {
    try {
      this.send(new Uint8Array(0), replyHeaders({ ...headers, [ServiceErrorHeader.Code]: String(code), [ServiceErrorHeader.Message]: description }));
    } catch (err) {
      this.ep.bus.report({ conn: this.ep.conn, subject: this.subject, what: 'error reply failed', err });
    }
  }
  /** What nats.js does with a reply: refuses it (throws), or publishes it to the requester's inbox. */
  private send(data: Uint8Array, headers: HeaderMap | undefined): void {
    if (!this.reply) return;
    this.ep.bus.check(this.ep, data, headers);
    if (this.answered) return;
    this.answered = true;
    this.reply({ data: data.slice(), headers });
  }
}

/** Waits forever: what a dead process's calls resolve to. */
const never = <T>() => new Promise<T>(() => undefined);

export class SimTransport implements Transport {
  private closed = false;
  private readonly mine: SimSub[] = [];
  /** False once killed: nothing reaches it or leaves it again. */
  alive = true;
  /** Messages this connection sent that the bus delivered twice (a duplicated request may run twice). */
  duplicatesSent = 0;

  constructor(
    readonly bus: SimBus,
    readonly conn: string,
    private readonly clock: Clock,
  ) {}

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<Reply> {
    if (this.closed) return Promise.reject(new GodDbError(ErrorCode.Internal, 'transport closed'));
    // The NATS adapter publishes inside its promise, so a refused message rejects rather than throws.
    try {
      this.bus.check(this, data, opts.headers);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      const timer = this.clock.setTimer(opts.timeoutMs, () => {
        if (settled) return;
        settled = true;
        reject(new RequestTimeoutError(subject, opts.timeoutMs));
      });
      // Only the first reply counts, as with a NATS inbox: later copies are ignored.
      const n = this.bus.send(this, subject, data, opts.headers, (r) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve({ data: r.data, header: (name) => lookup(r.headers, name) });
      });
      if (n === 0) {
        // NATS answers "no responders" at once when no subscription matches.
        settled = true;
        timer.cancel();
        reject(new NoRespondersError(subject));
      }
    });
  }

  gather(subject: string, data: Uint8Array, opts: { waitMs: number; max?: number }): Promise<Reply[]> {
    try {
      this.bus.check(this, data, undefined);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.alive) return never();
    const replies: Reply[] = [];
    return new Promise<Reply[]>((resolve) => {
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve(replies);
      };
      const timer = this.clock.setTimer(opts.waitMs, done);
      this.bus.send(this, subject, data, undefined, (r) => {
        if (settled) return;
        replies.push({ data: r.data, header: (name) => lookup(r.headers, name) });
        if (opts.max !== undefined && replies.length >= opts.max) done();
      });
    });
  }

  publish(subject: string, data: Uint8Array, headers?: HeaderMap): void {
    if (this.closed) return;
    this.bus.check(this, data, headers);
    this.bus.send(this, subject, data, headers, undefined);
  }

  subscribe(subject: string, handler: MessageHandler, opts?: { queue?: string }): Subscription {
    const handling = new Handling();
    // As nats.ts dispatches: nothing a handler throws or rejects with escapes; a request it left unanswered gets 500.
    const tracked: MessageHandler = (m) =>
      handling.run(handler, m, (err) => {
        this.bus.report({ conn: this.conn, subject: m.subject, what: 'handler failed', err });
        if (m instanceof SimInbound && m.expectsReply && !m.replied) m.respondError(ErrorCode.Internal, `internal error: ${messageOf(err)}`);
      });
    const sub: SimSub = { ep: this, tokens: subject.split('.'), queue: opts?.queue, handler: tracked, active: this.alive };
    if (sub.active) this.bus.addSub(sub);
    this.mine.push(sub);
    const unsubscribe = () => {
      sub.active = false;
      this.bus.removeInactive();
    };
    return {
      unsubscribe,
      drain: async () => {
        sub.draining = true;
        // What was addressed to it before arrives within the longest delay; then its handlers finish.
        await new Promise<void>((r) => this.bus.opts.clock.setTimer(this.bus.deliveryDelayMsMax(), r));
        await handling.settled();
        unsubscribe();
      },
    };
  }

  async serve(spec: ServiceSpec): Promise<Subscription> {
    const subs = spec.endpoints.map((ep) => this.subscribe(ep.subject, ep.handler, { queue: spec.queue }));
    return { unsubscribe: () => subs.forEach((s) => s.unsubscribe()), drain: async () => void (await Promise.all(subs.map((s) => s.drain()))) };
  }

  maxPayloadBytes(): number | undefined {
    return this.bus.maxPayloadBytes;
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.mine) s.active = false;
    this.bus.removeInactive();
  }
}
