/**
 * The client side of a key listing page (`kv.keys`, node/keys): the
 * KV-Keys-After cursor and the payload's form. The cursor holds all the
 * state of a listing (where it goes on, how many keys it listed, which
 * prefix it is for), so any node of the queue group serves the next page
 * and none keeps anything between pages.
 *
 * Cursor: `k1.<listed>.<hash: 16 hex>.<prefix tag: 8 hex>.<base64url of the last key, or empty>`.
 * An empty last key means "from this hash on, every key" (the start of a span).
 */
import { hash64 } from '../core/hash.js';
import type { ListingPosition } from '../core/key_listing.js';
import { limits } from '../core/limits.js';

export interface KeysCursor {
  /** Keys the earlier pages listed. */
  listed: number;
  position: ListingPosition;
  /** prefixTag of the prefix the listing is for: a cursor sent with another prefix is refused. */
  prefixTag: string;
}

const cursorPattern = /^k1\.(\d{1,15})\.([0-9a-f]{16})\.([0-9a-f]{8})\.([A-Za-z0-9_-]*)$/;
/** A cursor's characters at most: its fields and the base64 of the largest key. */
export const keysCursorCharsMax = 64 + 4 * Math.ceil(limits.keyBytesMax / 3);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** 8 hex digits that name a prefix (a cursor is valid only with the prefix it was made for). */
export function prefixTag(prefix: string): string {
  return (hash64(`keys-prefix:${prefix}`) & 0xffffffffn).toString(16).padStart(8, '0');
}

export function encodeKeysCursor(c: KeysCursor): string {
  const after = c.position.afterKey === undefined ? '' : Buffer.from(c.position.afterKey, 'utf8').toString('base64url');
  return `k1.${c.listed}.${c.position.hash.toString(16).padStart(16, '0')}.${c.prefixTag}.${after}`;
}

/** The cursor a KV-Keys-After value carries, or why it carries none. */
export function decodeKeysCursor(text: string): KeysCursor | { error: string } {
  const bad = { error: 'is not a cursor a key listing page answered (k1.<listed>.<hash>.<tag>.<key>)' };
  if (text.length > keysCursorCharsMax) return bad;
  const m = cursorPattern.exec(text);
  if (m === null || m[4]!.length % 4 === 1) return bad;
  const position: ListingPosition = { hash: BigInt(`0x${m[2]!}`) };
  if (m[4]!.length > 0) {
    try {
      const key = utf8.decode(Buffer.from(m[4]!, 'base64url'));
      if (key.length === 0) return bad;
      position.afterKey = key;
    } catch {
      return bad;
    }
  }
  return { listed: Number(m[1]!), position, prefixTag: m[3]! };
}

export const KeysEncoding = { Base64url: 'base64url' } as const;

/** Bytes a key takes in a page at most: base64url (4/3) when the page needs it, and its line break. */
export function pageBytesOf(key: string): number {
  return 4 * Math.ceil(Buffer.byteLength(key, 'utf8') / 3) + 1;
}

/** A page's payload: one key a line; every key base64url when any holds CR or LF (a line break could not tell them apart). */
export function encodeKeysPage(keys: readonly string[]): { data: Uint8Array; encoding?: typeof KeysEncoding.Base64url } {
  if (keys.some((k) => /[\r\n]/.test(k))) {
    return { data: Buffer.from(keys.map((k) => Buffer.from(k, 'utf8').toString('base64url')).join('\n'), 'utf8'), encoding: KeysEncoding.Base64url };
  }
  return { data: Buffer.from(keys.join('\n'), 'utf8') };
}

/** The keys of a page's payload, as encodeKeysPage wrote them (`encoding` from KV-Keys-Encoding). */
export function decodeKeysPage(data: Uint8Array, encoding: string | undefined): string[] {
  if (data.length === 0) return [];
  const lines = Buffer.from(data).toString('utf8').split('\n');
  if (encoding === KeysEncoding.Base64url) return lines.map((l) => Buffer.from(l, 'base64url').toString('utf8'));
  if (encoding !== undefined) throw new Error(`unknown key page encoding: ${encoding}`);
  return lines;
}
