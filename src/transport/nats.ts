/**
 * The NATS adapter: the only file that imports the NATS client.
 *
 * Requests do not use nats.js `request()`, which builds a timer and an error
 * per call. One inbox subscription per connection receives every reply; a
 * map of pending requests resolves them; one sweep timer expires the late
 * ones, running only while requests are pending (an idle process, a node or
 * an SDK client, is not woken 100 times a second). Measured on this
 * project's 2-core machine, that is 2x to 4x the throughput of `request()`
 * for replica fan-out.
 *
 * Nothing a peer sends may stop the node. nats.js runs subscription
 * callbacks inside its socket reader: an exception thrown there ends the
 * reader for good (it logs "reader closed" and the connection stays up but
 * deaf). So every callback here catches everything, reports it (rate
 * limited) and, when a request is left unanswered, still answers it with
 * 500. Header blocks of received messages are parsed by
 * protocol/headers.ts, strictly, never by nats.js's throwing getter, and
 * every header value a reply carries is sanitized first.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import {
  createInbox,
  credsAuthenticator,
  headers as natsHeaders,
  nkeyAuthenticator,
  type Authenticator,
  type ConnectionOptions,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/nats-core';
import type { MsgImpl } from '@nats-io/nats-core/internal';
import { Svcm, type ServiceMsg } from '@nats-io/services';
import { stallMsMin } from '../core/clock.js';
import { BadRequestError, ErrorCode, GodDbError } from '../core/errors.js';
import { limits } from '../core/limits.js';
import { isHeaderName, parseHeaderBlock, sanitizeHeaderValue, type HeaderBlock } from '../protocol/headers.js';
import { Handling } from './handling.js';
import {
  NoRespondersError,
  RequestTimeoutError,
  ServiceErrorHeader,
  type HeaderMap,
  type InboundMessage,
  type MessageHandler,
  type Reply,
  type ReplayStart,
  type RequestOptions,
  type ServiceSpec,
  type StreamMessage,
  type Subscription,
  type Transport,
} from './transport.js';

const sweepIntervalMs = 10;
/** How long close() waits for subscriptions to drain before closing outright. */
const drainTimeoutMs = 2000;
/**
 * Client pings: a connection whose server has not answered `pingsOutstandingMax`
 * pings is stale and reconnects. nats.js's default (2 minutes) is far too slow
 * for one failure that answers no ping: a subject holding a CR byte, which
 * nats-server delivers but the nats.js parser throws on, ends the connection's
 * reader, and only this check notices (within about 3 x the interval).
 */
const pingIntervalMs = 1_000;
const pingsOutstandingMax = 2;
/**
 * A worker's first connection (waitOnFirstConnect): each failed attempt waits
 * before the next, from the first delay doubling up to the last, so a server
 * that comes up is found within seconds without hammering one that does not.
 */
const connectRetryFirstMs = 250;
const connectRetryMaxMs = 5_000;
/**
 * One attempt's limit when the caller gave none: nats.js's own (20 s) would
 * leave a silent network unreported that long. A worker may give up this much
 * after its connectWaitMs.
 */
const connectAttemptTimeoutMs = 5_000;
/** Transport errors reported per second at most; the rest are counted and summarized. */
const errorReportsPerSecondMax = 10;
const empty = new Uint8Array(0);
const noHeaders: HeaderBlock = { status: 0, description: '', values: new Map() };

/** Receives errors that the transport caught and did not pass to a caller (a failed handler or reply). */
export type TransportErrorListener = (err: unknown, context: { subject: string; what: string }) => void;

/** What a connection went through, for the caller's log. */
export const ConnectEventType = {
  /** A first-connect attempt failed; another follows after `retryInMs`. */
  AttemptFailed: 'attempt-failed',
  /** An established connection was lost; nats.js reconnects (forever). */
  Disconnected: 'disconnected',
  Reconnected: 'reconnected',
} as const;
export type ConnectEvent =
  | { type: typeof ConnectEventType.AttemptFailed; servers: string[]; attempt: number; elapsedMs: number; retryInMs: number; error: string }
  | { type: typeof ConnectEventType.Disconnected; server: string }
  | { type: typeof ConnectEventType.Reconnected; server: string };

/** A worker's first connection did not succeed within its `giveUpAfterMs`. */
export class NatsUnreachableError extends Error {
  constructor(
    readonly servers: readonly string[],
    readonly attempts: number,
    readonly waitedMs: number,
    readonly lastError: string,
  ) {
    super(`could not reach NATS at ${servers.join(', ')}: ${attempts} attempts in ${(waitedMs / 1000).toFixed(1)} s failed (last: ${lastError})`);
    this.name = 'NatsUnreachableError';
  }
}

/**
 * Where NATS is and how to authenticate: the transport's own type, so the
 * transport needs nothing from config (config/types.ts builds on it). Empty
 * strings mean unset.
 */
export interface NatsOptions {
  /** Server URLs (the seed's -discovery). */
  servers: string[];
  user: string;
  pass: string;
  token: string;
  /** Path to a file holding an nkey seed. */
  nkeySeedFile: string;
  /** Path to a .creds file (JWT + nkey). */
  credsFile: string;
  tls: { caFile: string; certFile: string; keyFile: string; enabled: boolean };
}

export interface ConnectBehaviour {
  /** Workers keep trying until NATS is up (or `giveUpAfterMs` passes); clients fail after `connectTimeoutMs`. */
  waitOnFirstConnect: boolean;
  /** One attempt's limit (and, without waitOnFirstConnect, the whole connect's). */
  connectTimeoutMs?: number;
  /** With waitOnFirstConnect: reject with NatsUnreachableError after this long; 0 or absent: never. */
  giveUpAfterMs?: number;
  /** Hears each failed first attempt and, once connected, each disconnect and reconnect. */
  onConnectEvent?: (event: ConnectEvent) => void;
  /** Where caught errors go (rate limited); default: stderr. */
  onError?: TransportErrorListener;
  /** Reply subjects this process may answer on (a request naming another gets no reply); default: any. */
  replyAllowed?: (subject: string) => boolean;
  /**
   * The first tokens of every reply subject this connection asks for; default `_INBOX`. Nodes
   * use a private one (protocol/subjects.ts nodeInboxPrefix) that the NATS client role may not
   * subscribe to, so no client reads replies between nodes.
   */
  inboxPrefix?: string;
}

export function connectionOptions(cfg: NatsOptions, name: string, behaviour: ConnectBehaviour = { waitOnFirstConnect: true }): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: cfg.servers,
    name,
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: pingIntervalMs,
    maxPingOut: pingsOutstandingMax,
    waitOnFirstConnect: behaviour.waitOnFirstConnect,
  };
  if (behaviour.connectTimeoutMs !== undefined) opts.timeout = behaviour.connectTimeoutMs;
  if (behaviour.inboxPrefix) opts.inboxPrefix = behaviour.inboxPrefix;
  if (cfg.user) opts.user = cfg.user;
  if (cfg.pass) opts.pass = cfg.pass;
  if (cfg.token) opts.token = cfg.token;
  const authenticators: Authenticator[] = [];
  if (cfg.credsFile) authenticators.push(credsAuthenticator(readFileSync(cfg.credsFile)));
  if (cfg.nkeySeedFile) authenticators.push(nkeyAuthenticator(new TextEncoder().encode(readFileSync(cfg.nkeySeedFile, 'utf8').trim())));
  if (authenticators.length > 0) opts.authenticator = authenticators;
  if (cfg.tls.enabled || cfg.tls.caFile || cfg.tls.certFile) {
    opts.tls = {};
    if (cfg.tls.caFile) opts.tls.caFile = cfg.tls.caFile;
    if (cfg.tls.certFile) opts.tls.certFile = cfg.tls.certFile;
    if (cfg.tls.keyFile) opts.tls.keyFile = cfg.tls.keyFile;
  }
  return opts;
}

export async function connectNats(cfg: NatsOptions, name: string, behaviour: ConnectBehaviour = { waitOnFirstConnect: true }): Promise<Transport> {
  const opts = connectionOptions(cfg, name, behaviour);
  const nc = behaviour.waitOnFirstConnect ? await connectRetrying(opts, cfg.servers, behaviour) : await connect(opts);
  return new NatsTransport(nc, behaviour.onError, behaviour.replyAllowed, behaviour.onConnectEvent, behaviour.inboxPrefix);
}

/**
 * nats.js's own waitOnFirstConnect retries in silence and cannot be stopped:
 * its connect() settles only once a server answers. So each attempt here is a
 * connect() that fails fast (every server once), and this loop reports the
 * reason, waits and tries again until `giveUpAfterMs`. Once connected, nats.js
 * reconnects by itself (maxReconnectAttempts -1). A server that failed within
 * the attempt that succeeded leaves nats.js's pool; a NATS cluster advertises
 * its servers again (INFO connect_urls), and only a cluster makes sense here.
 */
async function connectRetrying(opts: ConnectionOptions, servers: readonly string[], behaviour: ConnectBehaviour): Promise<NatsConnection> {
  const giveUpAfterMs = behaviour.giveUpAfterMs ?? 0;
  const startMs = performance.now();
  const elapsedMs = () => performance.now() - startMs;
  const leftMs = () => (giveUpAfterMs > 0 ? giveUpAfterMs - elapsedMs() : Number.POSITIVE_INFINITY);
  const shown = servers.map(redactUrl);
  // Not shortened near the deadline: the connection keeps it for its reconnects (a TLS handshake needs time).
  const timeout = opts.timeout ?? connectAttemptTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect({ ...opts, waitOnFirstConnect: false, timeout });
    } catch (err) {
      const error = connectErrorText(err);
      if (leftMs() <= 0) throw new NatsUnreachableError(shown, attempt, elapsedMs(), error);
      const retryInMs = Math.min(connectRetryDelayMs(attempt), leftMs());
      tell(behaviour.onConnectEvent, { type: ConnectEventType.AttemptFailed, servers: shown, attempt, elapsedMs: Math.round(elapsedMs()), retryInMs: Math.round(retryInMs), error });
      await delay(retryInMs);
    }
  }
}

/** The wait after failed attempt `attempt` (1-based): doubling from connectRetryFirstMs to connectRetryMaxMs. */
export function connectRetryDelayMs(attempt: number): number {
  return Math.min(connectRetryMaxMs, connectRetryFirstMs * 2 ** Math.min(attempt - 1, 16));
}

/** A server URL fit for a log: credentials in it are masked. */
export function redactUrl(url: string): string {
  return url.replace(/^((?:[a-z]+:\/\/)?)[^@/]*@/i, '$1***@');
}

/** A listener that throws must not end the connect loop or the status watch. */
function tell(listener: ((event: ConnectEvent) => void) | undefined, event: ConnectEvent): void {
  try {
    listener?.(event);
  } catch {
    // the caller's log failed; nothing better to do with it here
  }
}

/** Why a connect failed, in one line: nats.js's error and the system's reason beneath it. */
function connectErrorText(err: unknown): string {
  const message = messageOf(err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : '';
  return (cause && !message.includes(cause) ? `${message} (${cause})` : message).replace(/\s+/g, ' ');
}

/** Headers for an outgoing request or publish: the caller's own, sent as given (nats.js refuses CR and LF). */
function toNatsHeaders(h: HeaderMap | undefined): MsgHdrs | undefined {
  if (!h) return undefined;
  const out = natsHeaders();
  for (const k in h) out.set(k, h[k]!);
  return out;
}

/** Headers for a reply: every value sanitized, so that no text quoted into a reply can make it unsendable. */
function replyHeaders(h: HeaderMap): MsgHdrs {
  const out = natsHeaders();
  for (const k in h) {
    if (!isHeaderName(k)) throw new GodDbError(ErrorCode.Internal, `invalid reply header name ${JSON.stringify(k)}`);
    out.set(k, sanitizeHeaderValue(h[k]!));
  }
  return out;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The raw header block of a received message: nats.js keeps the message
 * bytes on MsgImpl as `_rdata`, headers first, `_msg.hdr` bytes long (-1:
 * none); a service message wraps the Msg as `msg`. Null when nats.js no
 * longer has that shape.
 */
function rawHeaderBlock(msg: Msg | ServiceMsg): Uint8Array | undefined | null {
  const inner = ((msg as { msg?: unknown }).msg ?? msg) as Partial<MsgImpl>;
  const hdr = inner._msg?.hdr;
  const bytes = inner._rdata;
  if (typeof hdr !== 'number' || !(bytes instanceof Uint8Array)) return null;
  return hdr >= 0 ? bytes.subarray(0, hdr) : undefined;
}

/** The header block of a received message, parsed strictly; never throws. */
function readHeaders(msg: Msg | ServiceMsg): HeaderBlock | { error: string } {
  const raw = rawHeaderBlock(msg);
  if (raw === undefined) return noHeaders;
  if (raw !== null) return parseHeaderBlock(raw);
  // Fallback: nats.js's own lenient parser, whose getter throws on some blocks.
  try {
    const h = msg.headers;
    if (!h) return noHeaders;
    const values = new Map<string, string[]>();
    for (const k of h.keys()) values.set(k.toLowerCase(), [...(values.get(k.toLowerCase()) ?? []), ...h.values(k)]);
    return { status: h.code, description: h.description, values };
  } catch (err) {
    return { error: messageOf(err) };
  }
}

/** At most `perSecondMax` reports a second reach the listener; it hears how many were dropped. */
class ErrorReports {
  private windowStartMs = 0;
  private inWindow = 0;
  private dropped = 0;

  constructor(
    private readonly listener: TransportErrorListener,
    private readonly perSecondMax: number,
  ) {}

  report(err: unknown, subject: string, what: string): void {
    const now = performance.now();
    if (now - this.windowStartMs >= 1000) {
      if (this.dropped > 0) this.emit(new Error(`${this.dropped} more transport errors were not reported`), '', 'rate limit');
      this.windowStartMs = now;
      this.inWindow = 0;
      this.dropped = 0;
    }
    if (this.inWindow >= this.perSecondMax) {
      this.dropped++;
      return;
    }
    this.inWindow++;
    this.emit(err, subject, what);
  }

  private emit(err: unknown, subject: string, what: string): void {
    try {
      this.listener(err, { subject, what });
    } catch {
      // a failing listener must not become the next failure
    }
  }
}

const stderrListener: TransportErrorListener = (err, { subject, what }) => {
  process.stderr.write(`goddb transport: ${what} on ${JSON.stringify(subject)}: ${messageOf(err)}\n`);
};

interface Pending {
  resolve(r: Reply): void;
  reject(e: Error): void;
  deadlineMs: number;
  subject: string;
  timeoutMs: number;
  /** Its deadline has been moved by a stall once; a later one counts (a loop that stays late). */
  forgiven: boolean;
}

/** A reply: a malformed header block reads as no headers (the payload then fails to decode). */
class NatsReply implements Reply {
  constructor(
    private readonly msg: Msg,
    private readonly block: HeaderBlock | { error: string },
  ) {}
  get data(): Uint8Array {
    return this.msg.data;
  }
  header(name: string): string | undefined {
    return 'error' in this.block ? undefined : this.block.values.get(name.toLowerCase())?.[0];
  }
}

/**
 * A received message. `header()` throws BadRequestError when the block is
 * malformed, carries a status line (only replies have one), or repeats the
 * header asked for. `respond` and `respondError` never throw: a reply that
 * cannot be sent becomes a 500 reply, and a failed 500 is reported.
 */
class NatsInbound implements InboundMessage {
  private block: HeaderBlock | { error: string } | undefined;
  /** Set once a reply was attempted, so a failed handler is answered at most once. */
  replied = false;

  constructor(
    private readonly msg: Msg | ServiceMsg,
    private readonly reports: ErrorReports,
    private readonly replyAllowed: (subject: string) => boolean,
    private readonly holdWrites: () => void,
  ) {}
  get subject(): string {
    return this.msg.subject;
  }
  get data(): Uint8Array {
    return this.msg.data;
  }
  get expectsReply(): boolean {
    return this.msg.reply !== '' && this.msg.reply !== undefined && this.replyAllowed(this.msg.reply);
  }
  /** False (and reported) when the reply subject is one this process must not publish on. */
  private mayReply(): boolean {
    if (this.expectsReply || !this.msg.reply) return this.expectsReply;
    this.reports.report(new Error(`refused to reply on ${JSON.stringify(this.msg.reply.slice(0, 100))}`), this.subject, 'reply subject refused');
    return false;
  }
  header(name: string): string | undefined {
    this.block ??= readHeaders(this.msg);
    const block = this.block;
    if ('error' in block) throw new BadRequestError(`malformed header block: ${block.error}`);
    if (block.status !== 0 || block.description !== '') throw new BadRequestError(`malformed header block: a request carries no status (NATS/1.0 ${block.status} ${block.description})`);
    const values = block.values.get(name.toLowerCase());
    if (values === undefined) return undefined;
    if (values.length > 1) throw new BadRequestError(`the ${name} header is given ${values.length} times`);
    return values[0];
  }
  headerPadded(name: string): boolean {
    const block = this.block ?? readHeaders(this.msg);
    return !('error' in block) && block.padded?.has(name.toLowerCase()) === true;
  }
  respond(data: Uint8Array, headers?: HeaderMap): void {
    this.replied = true;
    if (!this.mayReply()) return;
    this.holdWrites();
    try {
      this.msg.respond(data, headers ? { headers: replyHeaders(headers) } : undefined);
    } catch (err) {
      this.reports.report(err, this.subject, 'reply failed');
      this.sendError(ErrorCode.Internal, `the reply could not be sent: ${messageOf(err)}`);
    }
  }
  respondError(code: number, description: string, headers?: HeaderMap): void {
    this.replied = true;
    if (this.mayReply()) this.sendError(code, description, headers);
  }
  private sendError(code: number, description: string, headers?: HeaderMap): void {
    this.holdWrites();
    try {
      this.msg.respond(empty, { headers: replyHeaders({ ...headers, [ServiceErrorHeader.Code]: String(code), [ServiceErrorHeader.Message]: description }) });
    } catch (err) {
      this.reports.report(err, this.subject, 'error reply failed');
    }
  }
}

/**
 * The library's statsHandler, fed by the caller's counts: their `data` goes in
 * each endpoint's stats, and their `errors` replaces its `num_errors` (the
 * library counts only handlers that throw; ours answer every error), so
 * `nats micro stats` and the caller's own counts agree. The endpoint's stats
 * object is the library's; it is written only when it has that field.
 */
function serviceStats(read: NonNullable<ServiceSpec['stats']>): (endpoint: unknown) => Promise<unknown> {
  return async (endpoint) => {
    const { data, errors } = await read();
    const stats = (endpoint as { stats?: { num_errors?: unknown } }).stats;
    if (stats && typeof stats.num_errors === 'number') stats.num_errors = errors;
    return data;
  };
}

interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * nats.js internals this adapter reads: the protocol's unsent buffer and the
 * connection's socket. Any of it may be missing when nats.js no longer has
 * that shape; the callers then do without.
 */
interface NatsInternals {
  protocol?: { outbound?: { size?: () => number }; transport?: { socket?: Partial<Corkable> & { writableLength?: number } } };
}

function internalsOf(nc: NatsConnection): NatsInternals {
  return nc as unknown as NatsInternals;
}

/** The connection's socket, when it can be corked. */
function socketOf(nc: NatsConnection): Corkable | undefined {
  const socket = internalsOf(nc).protocol?.transport?.socket;
  return typeof socket?.cork === 'function' && typeof socket.uncork === 'function' ? (socket as Corkable) : undefined;
}

/** A drain waits for the server, which never answers while it is gone: give up after drainTimeoutMs. Says whether it finished. */
async function bounded(drain: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), drainTimeoutMs);
  });
  try {
    return await Promise.race([drain.then(() => true, () => false), gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

export class NatsTransport implements Transport {
  private readonly inboxPrefix: string;
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  /** Runs while requests are pending (startSweeping); stopped by the sweep that finds none. */
  private sweeper: NodeJS.Timeout | undefined;
  private lastSweepMs = performance.now();
  private closed = false;
  private readonly reports: ErrorReports;
  /** The socket held corked until this turn's check phase (holdWrites). */
  private corked: Corkable | undefined;

  constructor(
    readonly nc: NatsConnection,
    onError: TransportErrorListener = stderrListener,
    private readonly replyAllowed: (subject: string) => boolean = () => true,
    private readonly onConnectEvent?: (event: ConnectEvent) => void,
    private readonly inboxBase: string = '_INBOX',
  ) {
    this.reports = new ErrorReports(onError, errorReportsPerSecondMax);
    // Unguessable: whoever may publish where a node replies must not be able to aim at a pending request.
    this.inboxPrefix = `${inboxBase}.${nc.info?.client_id ?? 'c'}${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
    nc.subscribe(`${this.inboxPrefix}.*`, {
      callback: (err, msg) => {
        try {
          if (err) this.reports.report(err, this.inboxPrefix, 'inbox subscription failed');
          else this.onReply(msg);
        } catch (caught) {
          this.reports.report(caught, this.inboxPrefix, 'reply handling failed');
        }
      },
    });
    void this.watchStatus();
  }

  /**
   * A stale connection is the only trace of a reader that nats.js stopped (see
   * pingIntervalMs): report it. Disconnects and reconnects go to the caller's log.
   */
  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (s.type === 'staleConnection') this.reports.report(new Error('NATS answered no ping: the connection is stale, reconnecting'), '', 'connection');
        else if (s.type === 'disconnect') tell(this.onConnectEvent, { type: ConnectEventType.Disconnected, server: redactUrl(s.server) });
        else if (s.type === 'reconnect') tell(this.onConnectEvent, { type: ConnectEventType.Reconnected, server: redactUrl(s.server) });
        // A permissions violation (a role that lacks a subject it needs) is otherwise silent.
        else if (s.type === 'error') this.reports.report(s.error, '', 'server error');
      }
    } catch (err) {
      this.reports.report(err, '', 'connection status');
    }
  }

  /**
   * Everything this process sends in one turn of the event loop leaves in one
   * socket write: the first send of a turn corks the connection's socket and
   * the turn's check phase (setImmediate) uncorks it. nats.js flushes its
   * buffer on a microtask, and a coordinator's replies come out over many
   * microtasks of one turn (each await is one), so without this a turn that
   * answers a batch of replica replies wrote to the socket once per wave.
   */
  private readonly holdWrites = (): void => {
    if (this.corked !== undefined) return;
    const socket = socketOf(this.nc);
    if (socket === undefined) return;
    socket.cork();
    this.corked = socket;
    setImmediate(() => {
      this.corked = undefined;
      socket.uncork();
    });
  };

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.inboxPrefix.length + 1);
    const p = this.pending.get(token);
    if (!p) return; // late reply after a timeout
    this.pending.delete(token);
    const block = readHeaders(msg);
    if (msg.data.length === 0 && !('error' in block) && block.status === 503) p.reject(new NoRespondersError(p.subject));
    else p.resolve(new NatsReply(msg, block));
  }

  /** Runs a handler through `handling`, so that nothing it throws escapes; a request it left unanswered gets 500. */
  private dispatch(handling: Handling, handler: MessageHandler, msg: Msg | ServiceMsg): void {
    const inbound = new NatsInbound(msg, this.reports, this.replyAllowed, this.holdWrites);
    handling.run(handler, inbound, (err) => {
      this.reports.report(err, inbound.subject, 'handler failed');
      if (inbound.expectsReply && !inbound.replied) inbound.respondError(ErrorCode.Internal, `internal error: ${messageOf(err)}`);
    });
  }

  /** True while the sweep timer runs (tests: an idle transport keeps none). */
  get sweeping(): boolean {
    return this.sweeper !== undefined;
  }

  private startSweeping(): void {
    // The time since the last sweep was idle, not a stall: no deadline may move by it.
    this.lastSweepMs = performance.now();
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  private sweep(): void {
    // Deadlines are on the monotonic clock: a wall clock stepped forward must not time out every request.
    const now = performance.now();
    // A sweep far later than its interval means this process did not run meanwhile (SIGSTOP, a
    // stuck event loop): the replies that came in the meantime wait in the socket, read only after
    // the timers. That time does not count against the requests: their deadlines move by it.
    // (A resumed coordinator answered 503 to requests whose replicas had all answered.)
    const stalledMs = now - this.lastSweepMs - sweepIntervalMs;
    this.lastSweepMs = now;
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    // Once per request, as the coordinator's fan-out deadline (core/clock.ts setDeadline): an
    // event loop that stays late is overload, and would otherwise put every deadline off for as
    // long as it lags.
    if (stalledMs > stallMsMin) {
      for (const p of this.pending.values()) {
        if (p.forgiven) continue;
        p.deadlineMs += stalledMs;
        p.forgiven = true;
      }
    }
    for (const [token, p] of this.pending) {
      if (p.deadlineMs <= now) {
        this.pending.delete(token);
        p.reject(new RequestTimeoutError(p.subject, p.timeoutMs));
      }
    }
  }

  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<Reply> {
    if (this.closed) return Promise.reject(new GodDbError(ErrorCode.Internal, 'transport closed'));
    if (this.pending.size >= limits.pendingRepliesMax) {
      return Promise.reject(new GodDbError(ErrorCode.QuorumNotMet, `too many requests in flight (${limits.pendingRepliesMax})`));
    }
    const token = (this.seq++).toString(36);
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadlineMs: performance.now() + opts.timeoutMs, subject, timeoutMs: opts.timeoutMs, forgiven: false });
      if (this.sweeper === undefined) this.startSweeping();
      try {
        const h = toNatsHeaders(opts.headers);
        this.holdWrites();
        this.nc.publish(subject, data, h ? { reply: `${this.inboxPrefix}.${token}`, headers: h } : { reply: `${this.inboxPrefix}.${token}` });
      } catch (err) {
        this.pending.delete(token);
        reject(err);
      }
    });
  }

  gather(subject: string, data: Uint8Array, opts: { waitMs: number; max?: number }): Promise<Reply[]> {
    const inbox = createInbox(this.inboxBase);
    const replies: Reply[] = [];
    return new Promise<Reply[]>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(replies);
      };
      const sub = this.nc.subscribe(inbox, {
        callback: (err, msg) => {
          try {
            if (err) return;
            const block = readHeaders(msg);
            if (msg.data.length === 0 && !('error' in block) && block.status === 503) return;
            replies.push(new NatsReply(msg, block));
            if (opts.max !== undefined && replies.length >= opts.max) done();
          } catch (caught) {
            this.reports.report(caught, inbox, 'gather reply failed');
          }
        },
      });
      const timer = setTimeout(done, opts.waitMs);
      this.nc.publish(subject, data, { reply: inbox });
    });
  }

  publish(subject: string, data: Uint8Array, headers?: HeaderMap): void {
    const h = toNatsHeaders(headers);
    this.holdWrites();
    this.nc.publish(subject, data, h ? { headers: h } : undefined);
  }

  subscribe(subject: string, handler: MessageHandler, opts?: { queue?: string }): Subscription {
    const handling = new Handling();
    const sub = this.nc.subscribe(subject, {
      ...(opts?.queue ? { queue: opts.queue } : {}),
      callback: (err, msg) => {
        if (err) this.reports.report(err, subject, 'subscription failed');
        else this.dispatch(handling, handler, msg);
      },
    });
    return {
      unsubscribe: () => sub.unsubscribe(),
      drain: async () => {
        if (!sub.isClosed() && !(await bounded(sub.drain()))) sub.unsubscribe();
        await handling.settled();
      },
    };
  }

  async serve(spec: ServiceSpec): Promise<Subscription> {
    const handling = new Handling();
    const svc = await new Svcm(this.nc).add({
      name: spec.name,
      version: spec.version,
      description: spec.description,
      metadata: spec.metadata,
      queue: spec.queue,
      ...(spec.stats ? { statsHandler: serviceStats(spec.stats) } : {}),
    });
    for (const ep of spec.endpoints) {
      svc.addEndpoint(ep.name, {
        subject: ep.subject,
        queue: spec.queue,
        handler: (err, msg) => {
          if (err) this.reports.report(err, ep.subject, 'service endpoint failed');
          else this.dispatch(handling, ep.handler, msg);
        },
      });
    }
    return {
      unsubscribe: () => void svc.stop().catch(() => undefined),
      // stop() drains every endpoint's subscription (and $SRV's), so requests already delivered are still handled.
      drain: async () => {
        await bounded(svc.stop());
        await handling.settled();
      },
    };
  }

  maxPayloadBytes(): number | undefined {
    return this.nc.info?.max_payload;
  }

  flush(): Promise<void> {
    return this.nc.flush();
  }

  /**
   * nats.js keeps what it has not written yet in `protocol.outbound` (all of
   * it while disconnected) and hands the rest to the socket, whose
   * `writableLength` is what the kernel has not taken. Both are internals:
   * undefined when nats.js no longer has that shape.
   */
  outboundBytes(): number | undefined {
    const protocol = internalsOf(this.nc).protocol;
    const queued = protocol?.outbound?.size?.();
    if (typeof queued !== 'number') return undefined;
    const socket = protocol?.transport?.socket?.writableLength;
    return queued + (typeof socket === 'number' ? socket : 0);
  }

  async replay(stream: string, start: ReplayStart, handler: (msg: StreamMessage) => void): Promise<Subscription> {
    // Loaded here: only watchers that resume from a stream need JetStream.
    const { jetstream, DeliverPolicy } = await import('@nats-io/jetstream');
    const opts = 'seq' in start
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.seq }
      : 'time' in start
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.time.toISOString() }
        : { deliver_policy: DeliverPolicy.LastPerSubject };
    const consumer = await jetstream(this.nc).consumers.get(stream, opts);
    const messages = await consumer.consume({
      callback: (m) => {
        const get = (name: string) => (m.headers?.has(name) ? m.headers.get(name) : undefined);
        try {
          handler({ subject: m.subject, data: m.data, seq: m.seq, header: get });
        } catch (err) {
          this.reports.report(err, stream, 'stream handler failed');
        }
      },
    });
    return {
      unsubscribe: () => void messages.close().catch(() => undefined),
      drain: async () => {
        await bounded(messages.close().then(() => undefined));
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const [token, p] of this.pending) {
      this.pending.delete(token);
      p.reject(new GodDbError(ErrorCode.Internal, 'transport closed'));
    }
    // drain() never settles when the server is gone (it waits to reconnect): bound it, then close.
    const drained = await Promise.race([
      this.nc.drain().then(() => true, () => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), drainTimeoutMs).unref()),
    ]);
    if (!drained) await this.nc.close().catch(() => undefined);
  }
}
