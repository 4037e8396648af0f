/**
 * An in-process, seeded, simulated bus with the Transport interface
 * (tigerbeetle packet_simulator, etcd raft's test network). Every delivery
 * goes through the given clock with a seeded delay; links can drop messages
 * at a seeded rate or be cut (partitions); a connection can be killed, which
 * removes its subscriptions at once, as the NATS server does when a process
 * dies. Same seed, same schedule, same run.
 */
import type { Clock } from '../core/clock.js';
import { ErrorCode, GodDbError } from '../core/errors.js';
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

export interface SimOptions {
  seed: number;
  clock: Clock;
  /** Delivery delay bounds in ms. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Probability that any one delivery is lost. */
  dropRate?: number;
}

interface SimSub {
  conn: string;
  tokens: string[];
  queue: string | undefined;
  handler: MessageHandler;
  active: boolean;
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

export class SimBus {
  private readonly random: () => number;
  private readonly subs: SimSub[] = [];
  private readonly cut = new Set<string>();
  private readonly dead = new Set<string>();
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  dropRate: number;
  delivered = 0;
  dropped = 0;

  constructor(readonly opts: SimOptions) {
    this.random = seededRandom(opts.seed);
    this.minDelayMs = opts.minDelayMs ?? 1;
    this.maxDelayMs = opts.maxDelayMs ?? 5;
    this.dropRate = opts.dropRate ?? 0;
  }

  connect(conn: string): SimTransport {
    this.dead.delete(conn);
    return new SimTransport(this, conn);
  }

  /** Like SIGKILL: the connection's subscriptions vanish and nothing more reaches it. */
  kill(conn: string): void {
    this.dead.add(conn);
    for (const s of this.subs) if (s.conn === conn) s.active = false;
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

  addSub(sub: SimSub): void {
    this.subs.push(sub);
  }

  removeInactive(): void {
    for (let i = this.subs.length - 1; i >= 0; i--) if (!this.subs[i]!.active) this.subs.splice(i, 1);
  }

  private linkUp(from: string, to: string): boolean {
    return !this.dead.has(from) && !this.dead.has(to) && !this.cut.has(`${from}|${to}`);
  }

  /** Subscribers a message to `subject` goes to: all plain ones, one per queue group. */
  private targets(subject: string): SimSub[] {
    const tokens = subject.split('.');
    const plain: SimSub[] = [];
    const groups = new Map<string, SimSub[]>();
    for (const s of this.subs) {
      if (!s.active || !subjectMatches(s.tokens, tokens)) continue;
      if (s.queue === undefined) plain.push(s);
      else groups.set(s.queue, [...(groups.get(s.queue) ?? []), s]);
    }
    for (const members of groups.values()) plain.push(members[Math.floor(this.random() * members.length)]!);
    return plain;
  }

  private delay(): number {
    return this.minDelayMs + Math.floor(this.random() * (this.maxDelayMs - this.minDelayMs + 1));
  }

  /** Sends; returns how many subscribers it was addressed to (before drops). */
  send(from: string, subject: string, data: Uint8Array, headers: HeaderMap | undefined, reply: ((r: SimReply) => void) | undefined): number {
    const targets = this.targets(subject);
    for (const t of targets) {
      if (!this.linkUp(from, t.conn) || this.random() < this.dropRate) {
        this.dropped++;
        continue;
      }
      const copy = data.slice();
      this.opts.clock.setTimer(this.delay(), () => {
        if (!t.active || !this.linkUp(from, t.conn)) return;
        this.delivered++;
        t.handler(new SimInbound(subject, copy, headers, reply && ((r) => this.deliverReply(t.conn, from, r, reply))));
      });
    }
    return targets.length;
  }

  private deliverReply(from: string, to: string, r: SimReply, reply: (r: SimReply) => void): void {
    if (!this.linkUp(from, to) || this.random() < this.dropRate) {
      this.dropped++;
      return;
    }
    this.opts.clock.setTimer(this.delay(), () => {
      if (this.linkUp(from, to)) reply(r);
    });
  }
}

interface SimReply {
  data: Uint8Array;
  headers: HeaderMap | undefined;
}

function lookup(headers: HeaderMap | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const lower = name.toLowerCase();
  for (const k in headers) if (k.toLowerCase() === lower) return headers[k];
  return undefined;
}

class SimInbound implements InboundMessage {
  private answered = false;
  constructor(
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
  respond(data: Uint8Array, headers?: HeaderMap): void {
    if (!this.reply || this.answered) return;
    this.answered = true;
    this.reply({ data: data.slice(), headers });
  }
  respondError(code: number, description: string, headers?: HeaderMap): void {
    this.respond(new Uint8Array(0), { ...headers, [ServiceErrorHeader.Code]: String(code), [ServiceErrorHeader.Message]: description });
  }
}

export class SimTransport implements Transport {
  private closed = false;
  private readonly mine: SimSub[] = [];

  constructor(
    private readonly bus: SimBus,
    readonly conn: string,
  ) {}

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<Reply> {
    if (this.closed) return Promise.reject(new GodDbError(ErrorCode.Internal, 'transport closed'));
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      const timer = this.bus.opts.clock.setTimer(opts.timeoutMs, () => {
        if (settled) return;
        settled = true;
        reject(new RequestTimeoutError(subject, opts.timeoutMs));
      });
      const n = this.bus.send(this.conn, subject, data, opts.headers, (r) => {
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
    const replies: Reply[] = [];
    return new Promise<Reply[]>((resolve) => {
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve(replies);
      };
      const timer = this.bus.opts.clock.setTimer(opts.waitMs, done);
      this.bus.send(this.conn, subject, data, undefined, (r) => {
        if (settled) return;
        replies.push({ data: r.data, header: (name) => lookup(r.headers, name) });
        if (opts.max !== undefined && replies.length >= opts.max) done();
      });
    });
  }

  publish(subject: string, data: Uint8Array, headers?: HeaderMap): void {
    if (!this.closed) this.bus.send(this.conn, subject, data, headers, undefined);
  }

  subscribe(subject: string, handler: MessageHandler, opts?: { queue?: string }): Subscription {
    const sub: SimSub = { conn: this.conn, tokens: subject.split('.'), queue: opts?.queue, handler, active: true };
    this.bus.addSub(sub);
    this.mine.push(sub);
    return {
      unsubscribe: () => {
        sub.active = false;
        this.bus.removeInactive();
      },
    };
  }

  async serve(spec: ServiceSpec): Promise<Subscription> {
    const subs = spec.endpoints.map((ep) => this.subscribe(ep.subject, ep.handler, { queue: spec.queue }));
    return { unsubscribe: () => subs.forEach((s) => s.unsubscribe()) };
  }

  maxPayloadBytes(): number | undefined {
    return undefined;
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.mine) s.active = false;
    this.bus.removeInactive();
  }
}
