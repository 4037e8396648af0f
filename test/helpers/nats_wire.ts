/**
 * A raw NATS protocol client for tests that must send what no NATS library
 * will: header blocks with a lone LF, bad names or no colon, subjects with
 * invalid UTF-8, status lines with garbage. It speaks the client protocol
 * (https://docs.nats.io/reference/reference-protocols/nats-protocol) over
 * one TCP socket: CONNECT, SUB, PUB, HPUB, PING/PONG, and parses MSG/HMSG.
 *
 * Replies to `request()` come to one wildcard inbox subscription; each
 * request gets its own reply subject under it. Nothing here interprets the
 * header block beyond finding the status line and the service-error headers.
 */
import { connect as tcpConnect, type Socket } from 'node:net';

const crlf = Buffer.from('\r\n');

export interface WireMessage {
  subject: string;
  sid: string;
  reply: string | undefined;
  /** The raw header block (HMSG), or undefined (MSG). */
  headerBlock: Buffer | undefined;
  payload: Buffer;
}

export interface WireReply {
  /** Nats-Service-Error-Code when present, else the status code of the header block, else 200. */
  code: number;
  /** Nats-Service-Error, or the status description. */
  message: string;
  headers: Map<string, string[]>;
  payload: Buffer;
}

type Bytes = string | Uint8Array;

function bytes(b: Bytes): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** A lenient parse of a reply's header block: the status line, then `Name: value` lines. */
export function parseReplyHeaders(block: Buffer): { status: number; description: string; headers: Map<string, string[]> } {
  const lines = block.toString('utf8').split('\r\n');
  const first = (lines[0] ?? '').replace(/^NATS\/1\.0/, '').trim();
  const match = /^(\d{3})\s*(.*)$/.exec(first);
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return { status: match ? Number(match[1]) : 0, description: match ? match[2]! : '', headers };
}

function toReply(m: WireMessage): WireReply {
  if (m.headerBlock === undefined) return { code: 200, message: '', headers: new Map(), payload: m.payload };
  const { status, description, headers } = parseReplyHeaders(m.headerBlock);
  const serviceCode = headers.get('nats-service-error-code')?.[0];
  const code = serviceCode !== undefined ? Number(serviceCode) : status !== 0 ? status : 200;
  return { code, message: headers.get('nats-service-error')?.[0] ?? description, headers, payload: m.payload };
}

interface Waiter {
  resolve(r: WireReply | undefined): void;
  timer: NodeJS.Timeout;
}

export class WireClient {
  /** Server INFO, as sent on connect. */
  info: Record<string, unknown> = {};
  /** -ERR lines from the server (the server closes the connection after most of them). */
  readonly errors: string[] = [];
  /** Messages on subscriptions other than the reply inbox. */
  readonly messages: WireMessage[] = [];
  /** Replies that came for a request already answered or timed out (duplicates, late ones). */
  extraReplies = 0;
  closed = false;

  private buffer: Buffer = Buffer.alloc(0);
  private readonly inbox = `_WIRE.${Math.random().toString(36).slice(2, 10)}`;
  private readonly waiters = new Map<string, Waiter>();
  private readonly collectors = new Map<string, (m: WireMessage) => void>();
  private readonly pongs: (() => void)[] = [];
  private nextSid = 2;
  private nextRequest = 0;
  private onInfo: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.onClose());
    socket.on('error', () => undefined);
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<WireClient> {
    const socket = tcpConnect(port, host);
    const client = new WireClient(socket);
    await new Promise<void>((resolve, reject) => {
      client.onInfo = resolve;
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('connection closed before INFO')));
    });
    client.send(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, headers: true, no_responders: true, protocol: 1, name: 'wire' })}\r\n`);
    client.send(`SUB ${client.inbox}.> 1\r\n`);
    await client.ping();
    return client;
  }

  /** Writes bytes as they are: anything at all, valid protocol or not. */
  send(data: Bytes): void {
    if (!this.closed) this.socket.write(bytes(data));
  }

  subscribe(subject: string): string {
    const sid = String(this.nextSid++);
    this.send(`SUB ${subject} ${sid}\r\n`);
    return sid;
  }

  unsubscribe(sid: string): void {
    this.send(`UNSUB ${sid}\r\n`);
  }

  /** A fresh reply subject under this client's inbox. */
  replySubject(): string {
    return `${this.inbox}.${(this.nextRequest++).toString(36)}`;
  }

  /** PUB, or HPUB when a header block is given (sizes computed from the bytes). */
  publish(subject: Bytes, reply: string | undefined, payload: Bytes, headerBlock?: Bytes): void {
    const p = bytes(payload);
    const subj = bytes(subject);
    const replyPart = reply !== undefined ? ` ${reply}` : '';
    if (headerBlock === undefined) {
      this.send(Buffer.concat([Buffer.from('PUB '), subj, Buffer.from(`${replyPart} ${p.length}\r\n`), p, crlf]));
      return;
    }
    const h = bytes(headerBlock);
    this.send(Buffer.concat([Buffer.from('HPUB '), subj, Buffer.from(`${replyPart} ${h.length} ${h.length + p.length}\r\n`), h, p, crlf]));
  }

  /**
   * Publishes with a fresh reply subject and resolves with the first reply,
   * or undefined when none comes within `timeoutMs`. `copies` > 1 sends the
   * same request again with the same reply subject (later replies count as extra).
   */
  request(subject: Bytes, payload: Bytes, headerBlock?: Bytes, timeoutMs = 5000, copies = 1): Promise<WireReply | undefined> {
    const reply = this.replySubject();
    const answered = new Promise<WireReply | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(reply);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(reply, { resolve, timer });
    });
    for (let i = 0; i < copies; i++) this.publish(subject, reply, payload, headerBlock);
    return answered;
  }

  /** Every reply to one request within `waitMs` (for $SRV.PING, which every node answers). */
  async collect(subject: Bytes, payload: Bytes = '', waitMs = 500): Promise<WireReply[]> {
    const reply = this.replySubject();
    const replies: WireReply[] = [];
    this.collectors.set(reply, (m) => replies.push(toReply(m)));
    this.publish(subject, reply, payload);
    await new Promise((r) => setTimeout(r, waitMs));
    this.collectors.delete(reply);
    return replies;
  }

  /** Resolves when the server has answered a PING: everything sent before it was processed. */
  ping(timeoutMs = 5000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no PONG within ${timeoutMs}ms`)), timeoutMs);
      this.pongs.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.send('PING\r\n');
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
    this.onClose();
  }

  private onClose(): void {
    this.closed = true;
    for (const [reply, w] of this.waiters) {
      clearTimeout(w.timer);
      this.waiters.delete(reply);
      w.resolve(undefined);
    }
  }

  private onData(d: Buffer): void {
    this.buffer = this.buffer.length === 0 ? d : Buffer.concat([this.buffer, d]);
    for (;;) {
      const used = this.parseOne();
      if (used === 0) return;
      this.buffer = this.buffer.subarray(used);
    }
  }

  /** Parses one protocol operation from the buffer; returns the bytes it used, 0 when incomplete. */
  private parseOne(): number {
    const eol = this.buffer.indexOf(crlf);
    if (eol === -1) return 0;
    const line = this.buffer.subarray(0, eol).toString('latin1');
    const [op, ...args] = line.split(' ').filter((s) => s.length > 0);
    switch (op?.toUpperCase()) {
      case 'INFO':
        this.info = JSON.parse(line.slice(5)) as Record<string, unknown>;
        this.onInfo?.();
        this.onInfo = undefined;
        return eol + 2;
      case 'PING':
        this.send('PONG\r\n');
        return eol + 2;
      case 'PONG':
        this.pongs.shift()?.();
        return eol + 2;
      case '-ERR':
        this.errors.push(line.slice(5));
        return eol + 2;
      case 'MSG':
      case 'HMSG':
        return this.parseMessage(op.toUpperCase() === 'HMSG', args, eol);
      default:
        return eol + 2; // +OK and anything unknown
    }
  }

  private parseMessage(hasHeaders: boolean, args: string[], eol: number): number {
    const sizes = hasHeaders ? 2 : 1;
    const total = Number(args[args.length - 1]);
    const hdrLen = hasHeaders ? Number(args[args.length - 2]) : 0;
    const end = eol + 2 + total + 2;
    if (this.buffer.length < end) return 0;
    const body = this.buffer.subarray(eol + 2, eol + 2 + total);
    const msg: WireMessage = {
      subject: args[0]!,
      sid: args[1]!,
      reply: args.length === 3 + sizes ? args[2] : undefined,
      headerBlock: hasHeaders ? Buffer.from(body.subarray(0, hdrLen)) : undefined,
      payload: Buffer.from(body.subarray(hdrLen)),
    };
    this.deliver(msg);
    return end;
  }

  private deliver(msg: WireMessage): void {
    if (!msg.subject.startsWith(`${this.inbox}.`)) {
      this.messages.push(msg);
      return;
    }
    const collector = this.collectors.get(msg.subject);
    if (collector) {
      collector(msg);
      return;
    }
    const w = this.waiters.get(msg.subject);
    if (!w) {
      this.extraReplies++;
      return;
    }
    this.waiters.delete(msg.subject);
    clearTimeout(w.timer);
    w.resolve(toReply(msg));
  }
}

/** Builds a well-formed header block: `NATS/1.0`, one line per header, a blank line. */
export function headerBlock(headers: Record<string, string> = {}): string {
  return `NATS/1.0\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}
