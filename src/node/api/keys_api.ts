/**
 * `kv.keys` on the client API (issue 12 item 4): one page of live keys per
 * request, the client asking for the next one with the cursor the page
 * answered (KV-Keys-After). A plain NATS client reads it with `nats req`;
 * the pull keeps a slow client from being flooded and lets any node serve
 * any page, since the cursor holds the whole state (protocol/keys_page.ts).
 * Validates every header (400) before any replica is asked.
 */
import { BadRequestError, UnavailableError } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { decodeKeysCursor, encodeKeysCursor, encodeKeysPage, pageBytesOf, prefixTag } from '../../protocol/keys_page.js';
import { Header, keysSubject, unsendableKey } from '../../protocol/subjects.js';
import type { HeaderMap, InboundMessage } from '../../transport/transport.js';
import type { KeysPageRequest, KeysPageResult } from '../keys/key_listing.js';

export type ListKeys = (req: KeysPageRequest) => Promise<KeysPageResult>;

export interface KeysApiOptions {
  replication: number;
  readQuorum: number;
  keyBytesMax: number;
  /** Largest payload a page should carry (valueBytesMax: max_payload less headers, or less when configured so). */
  payloadBytesMax: number;
}

/** True for `kv.keys` and anything under it (the latter answered 400). */
export function isKeysSubject(subject: string): boolean {
  return subject === keysSubject || subject.startsWith(`${keysSubject}.`);
}

const quotedCharsMax = 64;
function quoted(raw: string): string {
  return JSON.stringify(raw.length > quotedCharsMax ? `${raw.slice(0, quotedCharsMax)}...` : raw);
}

/** The page a `kv.keys` request asks for, answered as data and headers; throws GodDbError (400, 503, ...). */
export async function answerKeys(msg: InboundMessage, subject: string, opts: KeysApiOptions, listKeys: ListKeys | undefined): Promise<{ data: Uint8Array; headers: HeaderMap }> {
  if (subject !== keysSubject) throw new BadRequestError(`${keysSubject} takes no key in the subject: send the prefix in ${Header.Prefix}`);
  if (msg.data.length > 0) throw new BadRequestError(`${keysSubject} takes an empty payload`);
  const prefix = msg.header(Header.Prefix) ?? '';
  if (prefix.length > 0 && msg.headerPadded(Header.Prefix)) throw new BadRequestError(`${Header.Prefix} starts or ends with white space, which header parsing drops`);
  if (prefix.length > 0) {
    const problem = unsendableKey(prefix, opts.keyBytesMax);
    if (problem !== undefined) throw new BadRequestError(`${Header.Prefix}: ${problem.replace(/\bkey\b/, 'prefix')}`);
  }
  const tag = prefixTag(prefix);
  const rawCursor = msg.header(Header.KeysAfter);
  let listed = 0;
  let position: KeysPageRequest['position'] = { hash: 0n };
  if (rawCursor !== undefined) {
    const cursor = decodeKeysCursor(rawCursor.trim());
    if ('error' in cursor) throw new BadRequestError(`${Header.KeysAfter} ${cursor.error}, got ${quoted(rawCursor)}`);
    if (cursor.prefixTag !== tag) throw new BadRequestError(`${Header.KeysAfter} belongs to a listing with another ${Header.Prefix}: send the same prefix with every page`);
    listed = cursor.listed;
    position = cursor.position;
  }
  const keysMax = intHeader(msg, Header.KeysLimit, 1, limits.keysPageItemsMax) ?? limits.keysPageItemsMax;
  const r = intHeader(msg, Header.R, 1, opts.replication) ?? opts.readQuorum;
  if (listKeys === undefined) throw new UnavailableError('this node does not list keys');
  // Room for one key of the largest size at least, even with a small configured valueBytesMax.
  const bytesMax = Math.max(Math.min(limits.keysPageBytesMax, opts.payloadBytesMax), pageBytesOf('x'.repeat(limits.keyBytesMax)));
  const page = await listKeys({ prefix, position, r, keysMax, bytesMax });
  const body = encodeKeysPage(page.keys);
  const total = listed + page.keys.length;
  const headers: Record<string, string> = { [Header.KeysCount]: String(page.keys.length) };
  if (body.encoding !== undefined) headers[Header.KeysEncoding] = body.encoding;
  if (page.next === undefined) headers[Header.KeysDone] = String(total);
  else headers[Header.KeysAfter] = encodeKeysCursor({ listed: total, position: page.next, prefixTag: tag });
  return { data: body.data, headers };
}

function intHeader(msg: InboundMessage, name: string, min: number, max: number): number | undefined {
  const raw = msg.header(name);
  if (raw === undefined) return undefined;
  const n = Number(raw.trim());
  if (!/^\s*\d+\s*$/.test(raw) || n < min || n > max) throw new BadRequestError(`${name} must be an integer from ${min} to ${max}, got ${quoted(raw)}`);
  return n;
}
