/**
 * Which node the SDK sends a request to (issue 10, gray failures). Through
 * the `kv.>` queue group the NATS server picks a node, and it keeps handing
 * requests to a worker that is paused (SIGSTOP) or stuck as long as its
 * connection lives, which under traffic can be half a minute: each of those
 * requests waits the client's whole timeout. So the SDK asks, every
 * `probeMs`, which nodes answer `$SRV.PING.goddb` within `waitMs` (a paused
 * node does not), and sends each request to one of those on its own
 * subject, `kvn.<node-id>.<op>.<key>` (round robin). A node whose request
 * timed out is skipped until it answers a ping again. With no answer yet
 * (the first moments), or nodes of more than one cluster on the bus, it
 * falls back to the queue group. Pure but for the transport and a timer.
 */
import { isValidToken, nodeAddressedSubject, servicePingSubject } from '../protocol/subjects.js';
import type { Transport } from '../transport/transport.js';

export interface NodeRouterOptions {
  /** How often the live nodes are asked for (default 1000 ms). */
  probeMs?: number;
  /** How long a round waits for their answers (default 250 ms). */
  waitMs?: number;
}

export class NodeRouter {
  private live: string[] = [];
  private readonly suspects = new Set<string>();
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;
  private closed = false;
  /** Per node, callbacks of requests waiting on it, told when it stops answering (see onGone). */
  private readonly goneWatchers = new Map<string, Set<() => void>>();

  constructor(
    private readonly transport: Transport,
    private readonly opts: NodeRouterOptions = {},
  ) {}

  /** Starts probing (the first round at once). */
  start(): void {
    void this.probe();
    this.timer = setInterval(() => void this.probe(), this.opts.probeMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** The nodes requests go to now (they answered the last round, and none of their requests timed out since). */
  nodes(): string[] {
    return this.live.filter((id) => !this.suspects.has(id));
  }

  /** Whether `id` answered the last round (and none of its requests timed out since); undefined before any node answered. */
  isLive(id: string): boolean | undefined {
    if (this.live.length === 0) return undefined;
    return this.live.includes(id) && !this.suspects.has(id);
  }

  /**
   * The subject for a client request: a live node's own (none of `avoid`),
   * or the queue group's when none is known; undefined when every live node
   * is in `avoid`.
   */
  route(subject: string): { subject: string; node: string | undefined };
  route(subject: string, avoid: ReadonlySet<string>): { subject: string; node: string | undefined } | undefined;
  route(subject: string, avoid: ReadonlySet<string> = new Set()): { subject: string; node: string | undefined } | undefined {
    const live = this.nodes();
    if (live.length === 0) return avoid.size === 0 ? { subject, node: undefined } : undefined;
    const nodes = live.filter((id) => !avoid.has(id));
    if (nodes.length === 0) return undefined;
    const node = nodes[this.next++ % nodes.length]!;
    return { subject: nodeAddressedSubject(node, subject), node };
  }

  /** A request to `node` timed out (or found no responder): skip it until it answers a ping again. */
  timedOut(node: string): void {
    this.suspects.add(node);
    this.gone(node);
  }

  /**
   * Calls `fn` (once) when `node` stops answering: a probe round ends
   * without its answer, or one of its requests timed out. The SDK sends a
   * read waiting on a node that went away to another one. Returns a
   * function that cancels the watch.
   */
  onGone(node: string, fn: () => void): () => void {
    let set = this.goneWatchers.get(node);
    if (!set) this.goneWatchers.set(node, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.goneWatchers.get(node) === set) this.goneWatchers.delete(node);
    };
  }

  private gone(node: string): void {
    const set = this.goneWatchers.get(node);
    if (!set) return;
    this.goneWatchers.delete(node);
    for (const fn of set) fn();
  }

  /** One round: the nodes that answer the ping within waitMs. */
  probe(): Promise<void> {
    this.probing ??= this.round().finally(() => (this.probing = undefined));
    return this.probing;
  }

  private async round(): Promise<void> {
    if (this.closed) return;
    let replies;
    try {
      replies = await this.transport.gather(servicePingSubject(), new Uint8Array(0), { waitMs: this.opts.waitMs ?? 250 });
    } catch {
      return; // the connection is down: keep what was known; requests fail on their own
    }
    const answered = new Map<string, string>();
    for (const r of replies) {
      const who = pingAnswer(r.data);
      if (who) answered.set(who.nodeId, who.cluster);
    }
    // Nodes of several clusters on one bus: the queue group of each answers for its own; do not pick.
    const clusters = new Set(answered.values());
    this.live = clusters.size === 1 ? [...answered.keys()].sort() : [];
    for (const id of [...this.suspects]) if (answered.has(id)) this.suspects.delete(id);
    for (const id of [...this.goneWatchers.keys()]) if (!answered.has(id)) this.gone(id);
  }
}

/** The node id and cluster of a $SRV.PING answer, or undefined when it is not a GoD-DB node's. */
export function pingAnswer(data: Uint8Array): { nodeId: string; cluster: string } | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  const metadata = (raw as { metadata?: Record<string, unknown> } | null)?.metadata;
  const nodeId = metadata?.['node_id'];
  const cluster = metadata?.['cluster'];
  if (typeof nodeId !== 'string' || !isValidToken(nodeId) || typeof cluster !== 'string') return undefined;
  return { nodeId, cluster };
}
