/**
 * The one transport interface (memberlist transport.go, nats.js transport.ts).
 * `nats.ts` is the only file that imports the NATS client; `sim.ts` is an
 * in-process bus with the same interface for deterministic cluster tests.
 */
import { ErrorCode, GodDbError, errorFromCode } from '../core/errors.js';

export type HeaderMap = Readonly<Record<string, string>>;

export interface InboundMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /**
   * Case-insensitive header lookup. Throws BadRequestError when the header
   * block is malformed or gives this header more than once (a 400, never a crash).
   */
  header(name: string): string | undefined;
  /**
   * True when the value header() gives for `name` lost white space to
   * trimming (more than the one blank after the colon, or any at the end):
   * a reader that needs the value exactly refuses it.
   */
  headerPadded(name: string): boolean;
  /** True when the sender waits for a reply. */
  readonly expectsReply: boolean;
  /** Never throws; header values are sanitized (protocol/headers.ts), and a reply that cannot be sent becomes a 500. */
  respond(data: Uint8Array, headers?: HeaderMap): void;
  /** Replies with `Nats-Service-Error-Code` / `Nats-Service-Error` headers and an empty body; never throws. */
  respondError(code: number, description: string, headers?: HeaderMap): void;
}

export interface Reply {
  readonly data: Uint8Array;
  header(name: string): string | undefined;
}

export interface RequestOptions {
  timeoutMs: number;
  headers?: HeaderMap;
}

/** A handler that returns a promise is in flight until it settles (see Subscription.drain). */
export type MessageHandler = (msg: InboundMessage) => void | Promise<void>;

export interface Subscription {
  /** Stops at once; messages on their way to this process are dropped. */
  unsubscribe(): void;
  /**
   * Stops taking messages, handles every one already delivered to this
   * process (the server may still be sending some when it is called), and
   * resolves once every handler started for this subscription has settled.
   */
  drain(): Promise<void>;
}

export interface Endpoint {
  name: string;
  subject: string;
  handler: MessageHandler;
}

/** A NATS micro service: endpoints in one queue group, visible to $SRV.PING/INFO/STATS. */
export interface ServiceSpec {
  name: string;
  version: string;
  description: string;
  queue: string;
  metadata: Record<string, string>;
  endpoints: Endpoint[];
  /**
   * What $SRV.STATS reports beside the library's own counts: `data` goes in
   * every endpoint's `data`, and `errors` is reported as its `num_errors`
   * (the library counts only handlers that throw, and ours never do).
   */
  stats?: () => Promise<{ data: unknown; errors: number }>;
}

export interface Transport {
  request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<Reply>;
  /** Every reply to one request that arrives within `waitMs` (or until `max` replies): for $SRV.PING and the like. */
  gather(subject: string, data: Uint8Array, opts: { waitMs: number; max?: number }): Promise<Reply[]>;
  publish(subject: string, data: Uint8Array, headers?: HeaderMap): void;
  subscribe(subject: string, handler: MessageHandler, opts?: { queue?: string }): Subscription;
  serve(spec: ServiceSpec): Promise<Subscription>;
  /** The largest message the server accepts, when it says. */
  maxPayloadBytes(): number | undefined;
  /** Resolves when everything published so far has reached the server. */
  flush(): Promise<void>;
  /** Bytes queued on the connection and not yet written to the server, when the adapter can tell (the change feed drops past a bound). */
  outboundBytes?(): number | undefined;
  /**
   * JetStream: the messages of `stream` from `start` on, then new ones as
   * they come (an ordered consumer), to `handler` in stream order. Only the
   * NATS adapter has it.
   */
  replay?(stream: string, start: ReplayStart, handler: (msg: StreamMessage) => void): Promise<Subscription>;
  close(): Promise<void>;
}

/** Where a replay starts: a stream sequence, a time, or the last message of each subject. */
export type ReplayStart = { seq: number } | { time: Date } | { lastPerSubject: true };

export interface StreamMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The message's sequence in the stream. */
  readonly seq: number;
  header(name: string): string | undefined;
}

export const ServiceErrorHeader = {
  Code: 'Nats-Service-Error-Code',
  Message: 'Nats-Service-Error',
} as const;

/** Nobody subscribes to the subject (NATS 503 status): the node is gone. */
export class NoRespondersError extends GodDbError {
  constructor(subject: string) {
    super(ErrorCode.QuorumNotMet, `no responders on ${subject}`);
    this.name = 'NoRespondersError';
  }
}

export class RequestTimeoutError extends GodDbError {
  constructor(subject: string, timeoutMs: number) {
    super(ErrorCode.Timeout, `no reply on ${subject} within ${timeoutMs}ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** The error a reply carries in service-error headers, if any. */
export function replyError(reply: Reply): GodDbError | undefined {
  const code = reply.header(ServiceErrorHeader.Code);
  if (code === undefined) return undefined;
  return errorFromCode(Number(code), reply.header(ServiceErrorHeader.Message) ?? '');
}
