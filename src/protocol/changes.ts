/**
 * Change-feed events, both ways: what a coordinator publishes on
 * `kvchanges.<key>` after it acknowledged a put or a delete, and what a
 * watcher reads back (any NATS client can read them: everything is in the
 * subject, plain headers and the payload).
 *
 *   subject   kvchanges.<key>, or kvchanges with KV-Key / KV-Key-B64 (subjects.ts changeSubject)
 *   KV-Op     put | del
 *   KV-HLC    the version's hybrid logical clock, decimal (core/hlc.ts: ms x 1000 + logical)
 *   KV-Writer the coordinating node (HLC ties break on it, as last-writer-wins does)
 *   KV-Context  the context a read returns for this version (pass it as KV-If-Match or KV-Context)
 *   KV-Expires-HLC  when a put with a TTL expires (HLC), if it has one
 *   KV-Value-Omitted  the value's size when it was left out (the event would exceed max_payload)
 *   payload   the value; empty for a delete (and when omitted)
 */
import { Header, changeSubject, decodeKeyB64, keyOfChangeSubject } from './subjects.js';

export const ChangeOp = { Put: 'put', Del: 'del' } as const;
export type ChangeOp = (typeof ChangeOp)[keyof typeof ChangeOp];

export interface ChangeEvent {
  key: string;
  op: ChangeOp;
  /** The value; empty for a delete, and when it was left out (valueOmittedBytes says its size). */
  value: Uint8Array;
  /** The context a read of this version returns (opaque base64url). */
  context: string;
  /** The version's HLC timestamp: order a key's events by (hlc, writer). */
  hlc: number;
  /** The node that coordinated the write. */
  writer: string;
  /** When a put with a TTL expires (HLC). */
  expiresHlc?: number;
  /** Present when the value was too large to travel in the event: its size in bytes. */
  valueOmittedBytes?: number;
  /** The stream sequence, for events replayed from a JetStream stream (resume from seq + 1). */
  seq?: number;
}

export interface ChangeMessage {
  subject: string;
  headers: Record<string, string>;
  data: Uint8Array;
  /** True when the value was left out to fit `payloadBytesMax`. */
  omitted: boolean;
}

const empty = new Uint8Array(0);
/** `NATS/1.0\r\n` and the closing empty line, with room for what a client library adds. */
const headerBlockSlackBytes = 64;

/** The message announcing that `key` now holds this version, within `payloadBytesMax` (headers and payload). */
export function changeMessage(
  key: string,
  v: { tombstone: boolean; value: Uint8Array; hlc: number; writer: string; expiresHlc?: number },
  context: string,
  payloadBytesMax: number,
): ChangeMessage {
  const { subject, keyHeader, keyB64Header } = changeSubject(key);
  const headers: Record<string, string> = {
    [Header.Op]: v.tombstone ? ChangeOp.Del : ChangeOp.Put,
    [Header.Hlc]: String(v.hlc),
    [Header.Writer]: v.writer,
    [Header.Context]: context,
  };
  if (keyHeader !== undefined) headers[Header.Key] = keyHeader;
  if (keyB64Header !== undefined) headers[Header.KeyB64] = keyB64Header;
  if (v.expiresHlc !== undefined && !v.tombstone) headers[Header.ExpiresHlc] = String(v.expiresHlc);
  const data = v.tombstone ? empty : v.value;
  if (headerBytes(headers) + String(data.length).length + Header.ValueOmitted.length + data.length <= payloadBytesMax) {
    return { subject, headers, data, omitted: false };
  }
  headers[Header.ValueOmitted] = String(data.length);
  return { subject, headers, data: empty, omitted: true };
}

/** Bytes of a header block holding `headers` (ASCII names; values as UTF-8). */
function headerBytes(headers: Record<string, string>): number {
  let n = headerBlockSlackBytes;
  for (const [k, v] of Object.entries(headers)) n += k.length + 2 + Buffer.byteLength(v, 'utf8') + 2;
  return n;
}

/** A received change event, or why it is not one (a watcher skips those). */
export function parseChangeEvent(subject: string, header: (name: string) => string | undefined, data: Uint8Array): ChangeEvent | { error: string } {
  let key = keyOfChangeSubject(subject);
  if (key === undefined) {
    const b64 = header(Header.KeyB64);
    const plain = header(Header.Key);
    if (b64 !== undefined) {
      const decoded = decodeKeyB64(b64);
      if (typeof decoded !== 'string') return decoded;
      key = decoded;
    } else key = plain;
  }
  if (key === undefined || key.length === 0) return { error: 'no key: neither in the subject nor in a key header' };
  const op = header(Header.Op);
  if (op !== ChangeOp.Put && op !== ChangeOp.Del) return { error: `${Header.Op} is not put or del` };
  const hlc = decimal(header(Header.Hlc));
  if (hlc === undefined) return { error: `${Header.Hlc} is not a timestamp` };
  const writer = header(Header.Writer);
  if (writer === undefined || writer.length === 0) return { error: `${Header.Writer} is missing` };
  const event: ChangeEvent = { key, op, value: data, context: header(Header.Context) ?? '', hlc, writer };
  const expires = decimal(header(Header.ExpiresHlc));
  if (expires !== undefined) event.expiresHlc = expires;
  const omitted = decimal(header(Header.ValueOmitted));
  if (omitted !== undefined) event.valueOmittedBytes = omitted;
  return event;
}

function decimal(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d{1,16}$/.test(raw.trim())) return undefined;
  const n = Number(raw.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}
