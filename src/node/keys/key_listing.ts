/**
 * Key listing (issue 12 item 4: `kv.keys`; NATS KV `keys()`, Riak
 * list-keys), the impure shell over core/key_listing.ts.
 *
 * As a coordinator: a page walks the hash space from the client's cursor,
 * span by span (core/key_listing.ts spanAt). For each span it asks R of the
 * span's replicas (up ones first, the next one in the preference list when
 * one does not answer, so a down node hides nothing) for a page of the
 * entries they hold there, versions without values, and lists the keys
 * whose merged versions are live, as a read with R would. It stops when the
 * page is full, the span or time budget is spent, or the hash space ends, and
 * answers where to go on; it holds one page at a time, nothing between pages.
 *
 * As a replica: it serves `god.<cluster>.node.<id>.keys`, a bounded scan of
 * one span after a cursor (KeysRequest), filtered by prefix.
 */
import type { Logger } from 'pino';
import { ErrorCode, QuorumNotMetError, UnavailableError } from '../../core/errors.js';
import { compareHashed, mergeKeyPages, pastSpan, spanAt, takeWithin, type HashedKey, type ListingPosition, type ReplicaKeysPage } from '../../core/key_listing.js';
import { limits } from '../../core/limits.js';
import { placement } from '../../core/placement.js';
import { keyHash, type Ring } from '../../core/ring.js';
import { versionsBytes, type ConflictPolicy } from '../../core/version.js';
import { decode, encode, Kind, type KeysReply, type KeysRequest } from '../../protocol/codec.js';
import { pageBytesOf } from '../../protocol/keys_page.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import type { StorageEngine } from '../../storage/engine.js';
import { replyError, type InboundMessage, type Subscription, type Transport } from '../../transport/transport.js';
import { decodeOrEmpty } from '../aae/trees.js';
import type { HybridClock } from '../clock/hybrid_clock.js';
import { LogLimiter } from '../log_limiter.js';

export interface KeyListingOptions {
  self: string;
  cluster: string;
  replication: number;
  requestTimeoutMs: number;
  /** Largest reply payload this node sends (NATS max_payload less headers). */
  replyBytesMax: number;
  /** Which keys count as live (core/version.ts hasLiveValue); default lww. */
  conflictPolicy?: ConflictPolicy;
}

/** What the cluster looks like now, and whether this node's own data is whole. */
export interface KeyListingView {
  ring(): Ring;
  reachable(id: string): boolean;
  /** False while this node pulls its ranges back (a wiped disk): it answers no listing then. */
  whole(): boolean;
}

export interface KeysPageRequest {
  prefix: string;
  position: ListingPosition;
  /** Replicas whose merged answers decide each span (KV-R). */
  r: number;
  keysMax: number;
  /** Payload bytes of the page at most, counted as protocol/keys_page.ts pageBytesOf. */
  bytesMax: number;
}

export interface KeysPageResult {
  keys: string[];
  /** Where the next page starts; undefined when the listing is over. */
  next: ListingPosition | undefined;
}

const emptyValue = new Uint8Array(0);

export class KeyListing {
  private sub: Subscription | undefined;
  private readonly logs: LogLimiter;

  constructor(
    private readonly opts: KeyListingOptions,
    private readonly engine: StorageEngine,
    private readonly transport: Transport,
    private readonly view: KeyListingView,
    private readonly hlc: HybridClock,
    private readonly monotonicMs: () => number,
    logger: Logger,
  ) {
    this.logs = new LogLimiter(logger, monotonicMs);
  }

  start(): Subscription {
    this.sub = this.transport.subscribe(replicaSubject(this.opts.cluster, this.opts.self, ReplicaOp.Keys), (m) => this.serve(m));
    return this.sub;
  }

  /** One page of live keys from `req.position` on (see the file comment). */
  async page(req: KeysPageRequest): Promise<KeysPageResult> {
    if (req.keysMax < 1 || req.bytesMax < pageBytesOf('x'.repeat(limits.keyBytesMax))) throw new Error('assertion: a key listing page holds at least one key of any size');
    const keys: string[] = [];
    let bytes = 0;
    let pos = req.position;
    // A page answers within about a request timeout or two even when replicas are slow: after
    // half of one it visits no new span (it may then hold few keys, or none, and a cursor).
    const startedMs = this.monotonicMs();
    for (let spans = 0; spans < limits.keysSpansPerPageMax && keys.length < req.keysMax; spans++) {
      if (spans > 0 && this.monotonicMs() - startedMs >= this.opts.requestTimeoutMs / 2) break;
      const span = spanAt(this.view.ring(), pos.hash);
      const ask: KeysRequest = {
        kind: Kind.KeysRequest,
        from: this.opts.self,
        fromHash: pos.hash,
        toHash: span.toHash,
        prefix: req.prefix,
        itemsMax: Math.min(limits.keysPageItemsMax, req.keysMax - keys.length),
        bytesMax: limits.keysPageBytesMax,
        ...(pos.afterKey === undefined ? {} : { after: { hash: pos.hash, key: pos.afterKey } }),
      };
      let pages: ReplicaKeysPage[];
      try {
        pages = await this.askReplicas(span.toHash, req.r, ask);
      } catch (err) {
        // What this page holds so far is good: send it, and let the next page meet the failure.
        if (keys.length > 0) return { keys, next: pos };
        throw err;
      }
      for (const p of pages) for (const item of p.items) for (const v of item.versions) this.hlc.advanceTo(v.hlc);
      const merged = mergeKeyPages(pages, this.hlc.now(), limits.siblingsMax, this.opts.conflictPolicy);
      const { taken, complete } = takeWithin(merged.live, req.keysMax - keys.length, req.bytesMax - bytes, pageBytesOf);
      for (const k of taken) {
        keys.push(k.key);
        bytes += pageBytesOf(k.key);
      }
      if (!complete) {
        const last = taken[taken.length - 1];
        return { keys, next: last === undefined ? pos : { hash: last.hash, afterKey: last.key } };
      }
      const next = merged.stop === undefined ? pastSpan(span) : { hash: merged.stop.hash, afterKey: merged.stop.key };
      if (next === undefined) return { keys, next: undefined };
      pos = next;
    }
    return { keys, next: pos };
  }

  /**
   * The pages of `needed` replicas of the span ending at `spanEnd`: up ones
   * first, each one that fails replaced by the next in the preference list.
   */
  private async askReplicas(spanEnd: bigint, needed: number, ask: KeysRequest): Promise<ReplicaKeysPage[]> {
    const replicas = placement(this.view.ring(), spanEnd, this.opts.replication, (id) => this.view.reachable(id)).replicas;
    const candidates = [...replicas.filter((r) => r.up), ...replicas.filter((r) => !r.up)].map((r) => r.node);
    if (candidates.length === 0) throw new UnavailableError('no member holds any range: the ring is empty');
    const want = Math.min(needed, candidates.length);
    const failures: string[] = [];
    let next = 0;
    const one = async (): Promise<ReplicaKeysPage | undefined> => {
      while (next < candidates.length) {
        const node = candidates[next++]!;
        try {
          return await this.askOne(node, ask);
        } catch (err) {
          failures.push(`${node}: ${(err as Error).message}`);
        }
      }
      return undefined;
    };
    const answers = (await Promise.all(Array.from({ length: want }, one))).filter((p): p is ReplicaKeysPage => p !== undefined);
    if (answers.length < want) {
      throw new QuorumNotMetError(`key listing: ${answers.length} of the ${want} replicas needed answered for a span (${failures.join('; ')})`, answers.length, want);
    }
    return answers;
  }

  private async askOne(node: string, ask: KeysRequest): Promise<ReplicaKeysPage> {
    let reply: KeysReply;
    if (node === this.opts.self) {
      if (!this.view.whole()) throw new UnavailableError('this node is pulling its ranges back');
      reply = await this.scan(ask);
    } else {
      const raw = await this.transport.request(replicaSubject(this.opts.cluster, node, ReplicaOp.Keys), encode(ask), { timeoutMs: this.opts.requestTimeoutMs });
      const refused = replyError(raw);
      if (refused) throw refused;
      reply = decode(raw.data, Kind.KeysReply);
    }
    return checkedPage(ask, reply);
  }

  /** Answers a peer's KeysRequest: 400 when malformed, 503 while this node's data is not whole, 507 when storage fails. */
  private async serve(msg: InboundMessage): Promise<void> {
    try {
      let req: KeysRequest;
      try {
        req = decode(msg.data, Kind.KeysRequest);
      } catch (err) {
        this.logs.warn('keys-bad-request', { err: (err as Error).message }, 'refused a malformed key listing request');
        msg.respondError(ErrorCode.BadRequest, (err as Error).message);
        return;
      }
      if (!this.view.whole()) {
        msg.respondError(ErrorCode.QuorumNotMet, `${this.opts.self} is pulling its ranges back: ask another replica`);
        return;
      }
      let reply: KeysReply;
      try {
        reply = await this.scan(req);
      } catch (err) {
        this.logs.warn('keys-scan', { err: (err as Error).message }, 'a key listing page failed to read storage');
        msg.respondError(ErrorCode.StorageUnavailable, `key listing: ${(err as Error).message}`);
        return;
      }
      msg.respond(encode(reply));
    } catch (err) {
      this.logs.error('keys-bug', { err }, 'key listing request failed');
      msg.respondError(ErrorCode.Internal, 'key listing failed');
    }
  }

  /**
   * A page of this node's entries in the asked hashes after the cursor that
   * start with the prefix, versions without values: at most `itemsMax`
   * entries and the asked bytes, scanning at most keysScanEntriesPerPageMax.
   */
  private async scan(req: KeysRequest): Promise<KeysReply> {
    const bytesMax = Math.max(1, Math.min(req.bytesMax, Math.floor(this.opts.replyBytesMax / 2)));
    const items: KeysReply['items'] = [];
    let bytes = 0;
    let scanned = 0;
    let last: HashedKey | undefined;
    const range = { fromHash: req.fromHash, toHash: req.toHash };
    for await (const entry of this.engine.scanRange(range, { batchSize: limits.rangeItemsMax, ...(req.after ? { after: req.after } : {}) })) {
      if (last && (items.length >= req.itemsMax || bytes >= bytesMax || scanned >= limits.keysScanEntriesPerPageMax)) {
        return { kind: Kind.KeysReply, items, next: last };
      }
      scanned++;
      last = { hash: entry.hash, key: entry.key };
      if (!entry.key.startsWith(req.prefix)) continue;
      const versions = decodeOrEmpty(entry.record).map((v) => ({ ...v, value: emptyValue }));
      if (versions.length === 0) continue;
      items.push({ key: entry.key, versions });
      bytes += Buffer.byteLength(entry.key, 'utf8') + versionsBytes(versions);
    }
    return { kind: Kind.KeysReply, items };
  }
}

/** A replica's reply as a page, refusing one that strays outside what was asked (a forged or buggy peer). */
function checkedPage(ask: KeysRequest, reply: KeysReply): ReplicaKeysPage {
  const start: HashedKey | undefined = ask.after;
  const inside = (h: HashedKey) => h.hash >= ask.fromHash && h.hash <= ask.toHash && (start === undefined || compareHashed(h, start) > 0);
  const items = reply.items.map((i) => ({ key: i.key, hash: keyHash(i.key), versions: i.versions }));
  if (!items.every(inside)) throw new UnavailableError('a replica answered keys outside the span asked');
  const page: ReplicaKeysPage = { items };
  if (reply.next !== undefined) {
    if (!inside(reply.next)) throw new UnavailableError('a replica stopped outside the span asked');
    page.next = reply.next;
  }
  return page;
}
