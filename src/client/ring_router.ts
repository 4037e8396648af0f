/**
 * The SDK's 'direct' routing (issue 12 item 6, a partition-aware client as
 * Cassandra's token-aware policy and Riak's ring-aware clients): it holds
 * the serving ring the nodes publish on `kv.ring` (protocol/ring_map.ts),
 * computes a key's preference list with the nodes' own function
 * (core/ring.ts), and sends the request to the first of its replicas that is
 * live, on that node's own subject (`kvn.<id>.<op>.<key>`). The coordinator
 * is then a replica: it reads or writes its own copy and asks N-1 others,
 * where a node that is not a replica asks N (one message hop, each way, fewer).
 *
 * Live means: up in the ring's liveness (the answering node's failure
 * detector) and, once any node answered, in the NodeRouter's last
 * $SRV.PING round (a paused node stops getting requests within a second).
 * Without a ring (the first moments, a ring too large to be sent, garbled
 * answers), without a key (listings), or when every replica is excluded,
 * it routes as 'any' does (NodeRouter: any live node, else the queue group).
 *
 * The ring is polled every `ringPollMs` naming the fingerprint held, so an
 * unchanged ring costs a few bytes a member; it is fetched again at once
 * when a reply says the node's ring differs (KV-Ring) or a request to a node
 * failed. Memory: one ring (at most limits.ringMapTokensMax tokens).
 */
import { keyHash, preferenceList, type Ring } from '../core/ring.js';
import { decodeRingMap, ringOfMap } from '../protocol/ring_map.js';
import { Header, nodeAddressedSubject, ringSubject } from '../protocol/subjects.js';
import { replyError, type Reply, type Transport } from '../transport/transport.js';
import { NodeRouter, type NodeRouterOptions } from './node_router.js';

export interface RingRouterOptions extends NodeRouterOptions {
  /** How often the ring's fingerprint is checked (default 1000 ms). */
  ringPollMs?: number;
  /** How long a ring request waits (default 1000 ms). */
  ringTimeoutMs?: number;
}

export interface Route {
  subject: string;
  node: string | undefined;
  /** The fingerprint of the ring the route came from (sent as KV-Ring), when routed to a replica. */
  ring?: string;
}

/** Forced refreshes (stale replies, failed nodes) at most this often. */
const refreshGapMs = 200;

export class RingRouter {
  private readonly any: NodeRouter;
  private ring: Ring | undefined;
  private fingerprint = '';
  private replication = 0;
  private members = new Set<string>();
  private up = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private lastPollMs = -Infinity;
  private closed = false;
  /** Ring answers refused as malformed (for tests and diagnosis). */
  refused = 0;
  /** Requests sent to a replica, and the rest (no ring, no key, or no live replica left). */
  routedDirect = 0;
  routedAny = 0;

  constructor(
    private readonly transport: Transport,
    private readonly opts: RingRouterOptions = {},
  ) {
    this.any = new NodeRouter(transport, opts);
  }

  start(): void {
    this.any.start();
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.opts.ringPollMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    this.closed = true;
    this.any.stop();
    if (this.timer) clearInterval(this.timer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
  }

  nodes(): string[] {
    return this.any.nodes();
  }

  /** The fingerprint of the ring held ('' before the first). */
  ringFingerprint(): string {
    return this.fingerprint;
  }

  /** The key's replicas in preference order by the ring held ([] without one). */
  replicasOf(key: string): string[] {
    return this.ring === undefined ? [] : preferenceList(this.ring, keyHash(key), this.replication);
  }

  /**
   * The first live replica of `key` not in `avoid`; else as 'any' routes
   * (undefined when every live node is in `avoid`).
   */
  route(subject: string, avoid: ReadonlySet<string> = new Set(), key?: string): Route | undefined {
    if (key !== undefined && this.ring !== undefined) {
      for (const id of preferenceList(this.ring, keyHash(key), this.replication)) {
        if (avoid.has(id) || !this.up.has(id) || this.any.isLive(id) === false) continue;
        this.routedDirect++;
        return { subject: nodeAddressedSubject(id, subject), node: id, ring: this.fingerprint };
      }
    }
    this.routedAny++;
    return avoid.size === 0 ? this.any.route(subject) : this.any.route(subject, avoid);
  }

  /** A request to `node` timed out or found no responder: skip it until it answers a ping, and check the ring. */
  timedOut(node: string): void {
    this.any.timedOut(node);
    this.refresh();
  }

  onGone(node: string, fn: () => void): () => void {
    return this.any.onGone(node, fn);
  }

  /** A reply to a request routed by the ring: a node whose ring differs says so (KV-Ring), and the ring is fetched again. */
  observe(reply: Reply): void {
    const theirs = reply.header(Header.Ring);
    if (theirs !== undefined && theirs !== this.fingerprint) this.refresh();
  }

  /** A fetch soon: at once, or when refreshGapMs has passed since the last (one pending at most). */
  private refresh(): void {
    if (this.refreshTimer !== undefined || this.closed) return;
    const waitMs = Math.max(0, refreshGapMs - (performance.now() - this.lastPollMs));
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.poll();
    }, waitMs);
    this.refreshTimer.unref();
  }

  /** One ring request (one at a time). */
  poll(): Promise<void> {
    this.polling ??= this.fetch().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async fetch(): Promise<void> {
    if (this.closed) return;
    this.lastPollMs = performance.now();
    const headers: Record<string, string> = this.fingerprint === '' ? {} : { [Header.Ring]: this.fingerprint };
    let reply: Reply;
    try {
      reply = await this.transport.request(ringSubject, new Uint8Array(0), { timeoutMs: this.opts.ringTimeoutMs ?? 1_000, headers });
    } catch {
      return; // no node answers now: keep the ring held; requests fail over on their own
    }
    if (replyError(reply) !== undefined) return; // e.g. 503, a ring too large to send: route as 'any' until it is not
    this.accept(reply.data);
  }

  /** Takes a `kv.ring` answer; a malformed one is counted and ignored. Exposed for tests. */
  accept(data: Uint8Array): boolean {
    const map = decodeRingMap(data);
    if ('error' in map) {
      this.refused++;
      return false;
    }
    const ids = map.members.map((m) => m.id);
    const up = new Set(map.members.filter((m) => m.up).map((m) => m.id));
    if (!map.withTokens) {
      // Liveness for the ring held; members that differ mean the answer is not about it: fetch it whole.
      if (map.fingerprint !== this.fingerprint || ids.length !== this.members.size || !ids.every((id) => this.members.has(id))) {
        this.fingerprint = '';
        this.refresh();
        return false;
      }
      this.up = up;
      return true;
    }
    this.ring = ringOfMap(map);
    this.fingerprint = map.fingerprint;
    this.replication = map.replication;
    this.members = new Set(ids);
    this.up = up;
    return true;
  }
}
