/**
 * `keys(prefix)` in the SDK: the pages of `kv.keys` (node/api/keys_api.ts)
 * as one async iterator. Each page is asked for when the previous one has
 * been consumed, with the cursor it answered, so a slow consumer holds one
 * page at a time and the cluster sends nothing it has not asked for.
 */
import { BadRequestError } from '../core/errors.js';
import { limits } from '../core/limits.js';
import { decodeKeysPage } from '../protocol/keys_page.js';
import { Header, isHeaderSafeKey, unsendableKey } from '../protocol/subjects.js';
import { replyError, type Reply } from '../transport/transport.js';

export interface KeysOptions {
  /** Keys per page (KV-Keys-Limit), 1 to 1000; the cluster's maximum by default. */
  pageSize?: number;
  /** Replicas whose merged answers decide each key (KV-R); the cluster's read quorum by default. */
  r?: number;
}

/** Sends one page request with these headers on `kv.keys`. */
export type SendKeysPage = (headers: Record<string, string>) => Promise<Reply>;

/** Checks the arguments before any request, then yields every live key once, page by page. */
export function listKeys(send: SendKeysPage, prefix: string, opts: KeysOptions): AsyncGenerator<string, void, undefined> {
  if (prefix.length > 0) {
    const problem = unsendableKey(prefix, limits.keyBytesMax);
    if (problem !== undefined) throw new BadRequestError(`prefix: ${problem.replace(/\bkey\b/, 'prefix')}`);
    if (!isHeaderSafeKey(prefix)) throw new BadRequestError('a prefix cannot start or end with white space or hold control characters (it travels in the KV-Prefix header)');
  }
  const { pageSize, r } = opts;
  if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > limits.keysPageItemsMax)) {
    throw new BadRequestError(`pageSize must be an integer from 1 to ${limits.keysPageItemsMax}, got ${String(pageSize)}`);
  }
  if (r !== undefined && (!Number.isInteger(r) || r < 1)) throw new BadRequestError(`r must be a positive integer, got ${String(r)}`);
  return pages(send, prefix, opts);
}

async function* pages(send: SendKeysPage, prefix: string, opts: KeysOptions): AsyncGenerator<string, void, undefined> {
  let after: string | undefined;
  for (;;) {
    const headers: Record<string, string> = {};
    if (prefix.length > 0) headers[Header.Prefix] = prefix;
    if (after !== undefined) headers[Header.KeysAfter] = after;
    if (opts.pageSize !== undefined) headers[Header.KeysLimit] = String(opts.pageSize);
    if (opts.r !== undefined) headers[Header.R] = String(opts.r);
    const reply = await send(headers);
    const err = replyError(reply);
    if (err !== undefined) throw err;
    yield* decodeKeysPage(reply.data, reply.header(Header.KeysEncoding));
    after = reply.header(Header.KeysAfter);
    if (after === undefined) return;
  }
}
