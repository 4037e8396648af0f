/**
 * Active anti-entropy (issue 10; Riak's tictac AAE, riak_kv_tictacaae;
 * Dynamo section 4.7). Read repair and hinted handoff fix what reads and
 * short failures touch; this finds every other difference, including a
 * node back on an empty disk, without any client read.
 *
 * Every `intervalMs` a round visits each arc this node replicates (its
 * trees: node/aae/trees.ts), and compares it with one other up replica of
 * the arc, rotating: branch hashes first, then the segment hashes of the
 * differing branches, then the (key, digest) pairs of the differing
 * segments (the peer scans the arc in bounded pages and filters by
 * segment); each differing key then travels both ways: the peer's versions
 * are merged here (Replica.put, not fresh) and ours are sent to it
 * (ReplicaClient.put, not fresh), so both end with the merge. Repairs are
 * paced to `keysPerSecond` and `bytesPerSecond`, so anti-entropy does not
 * crowd out client requests. A tree still being built is not compared (the
 * peer answers `ready: false`), nor is anything while the ring moves (range
 * moves own that traffic).
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { ErrorCode } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { arcName, inArc, ringFingerprint, spansOf, type Arc } from '../../core/moves.js';
import { keyHash } from '../../core/ring.js';
import { branchCount, branchHashes, branchOf, differing, differingSegments, DigestVersion, digestVersionDefault, segmentHashes, segmentOf, segmentsPerBranch, versionsDigest } from '../../core/tictac.js';
import { versionsBytes, type Version } from '../../core/version.js';
import { decode, decodeKindOnly, encode, Kind, type AaeKeyDigest, type AaeKeysReply, type AaeKeysRequest, type AaeTreeReply, type AaeTreeRequest, type Message, type WireCursor } from '../../protocol/codec.js';
import type { AaeReport } from '../../protocol/placement_report.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import type { HashCursor, HashedEntry, StorageEngine } from '../../storage/engine.js';
import { NoRespondersError, replyError, type InboundMessage, type Subscription, type Transport } from '../../transport/transport.js';
import type { Membership } from '../membership/membership.js';
import type { StoreListener } from '../replica/replica.js';
import { LogLimiter } from '../log_limiter.js';
import { Pacer } from '../pacer.js';
import { ArcTrees, compareInArc, decodeOrEmpty, TreeState, type ArcTree, type KeyLocks } from './trees.js';

export interface AntiEntropyOptions {
  self: string;
  cluster: string;
  replication: number;
  enabled: boolean;
  intervalMs: number;
  keysPerSecond: number;
  bytesPerSecond: number;
  /** Keys each side lists in one exchange of one arc; the arc's next exchange goes on from where it stopped. */
  keysPerExchange: number;
  requestTimeoutMs: number;
  /** Largest reply payload this node sends (NATS max_payload less headers). */
  replyBytesMax: number;
  /** The digest format of this node's trees (default core/tictac.ts digestVersionDefault; tests run older nodes with Full). */
  digest?: DigestVersion;
}

/** This node's store, through the replica (its lock, its merge, its listeners). */
export interface AaeLocal extends KeyLocks {
  get(key: string): Promise<Version[]>;
  put(key: string, versions: readonly Version[]): Promise<void>;
  onStored(fn: StoreListener): void;
}

/** Another replica's store (node/coordinator/replica_client.ts). */
export interface AaeRemote {
  get(node: string, key: string): Promise<Version[]>;
  put(node: string, key: string, versions: Version[]): Promise<void>;
}

/** What `goddb status` (its AaeReport part) and /metrics show. */
export interface AaeProgress extends AaeReport {
  exchangesFailed: number;
  /** Tree segments recomputed from storage because they had drifted (a build racing a write). */
  segmentsCorrected: number;
  /** Segments that differed at a round's first look, summed over rounds. */
  segmentsSuspected: number;
  /** Segments that still differed at the second look, whose keys were listed and compared, summed over rounds. */
  segmentsListed: number;
  /** Exchanges not made because the peer keeps its trees in another digest format (a rolling upgrade under way). */
  exchangesSkipped: number;
  /** This node's digest format (core/tictac.ts). */
  digest: DigestVersion;
}

/** An arc whose segments differed from a peer's at the first look of a round. */
interface Suspect {
  t: ArcTree;
  peer: string;
  segments: number[];
}

interface KeyList {
  items: (AaeKeyDigest & { hash: bigint })[];
  /** Set when the list stopped early: only keys up to here were listed. */
  cut: HashCursor | undefined;
}

export class AntiEntropy {
  private readonly trees: ArcTrees;
  private readonly logs: LogLimiter;
  private sub: Subscription | undefined;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  /** Ends the round's pause at once (stop). */
  private endPause: (() => void) | undefined;
  private stopped = false;
  /** Rounds started: the peer of each arc rotates with it. */
  private rounds = 0;
  private readonly pacer: Pacer;
  /** Pause between a round's first look at the trees and its second: only segments that differ in both are listed and repaired. */
  private readonly confirmDelayMs: number;
  private readonly differingByArc = new Map<string, number>();
  /** Where the next exchange of an arc starts its key lists: the last one stopped there (keysPerExchange). */
  private readonly resumeByArc = new Map<string, HashCursor>();
  private ringSeen = '';
  private readonly digest: DigestVersion;
  treesCompared = 0;
  /** Exchanges not made because the peer's trees use another digest format (a rolling upgrade under way). */
  exchangesSkipped = 0;
  keysRepaired = 0;
  exchangesFailed = 0;
  segmentsCorrected = 0;
  segmentsSuspected = 0;
  segmentsListed = 0;

  constructor(
    private readonly opts: AntiEntropyOptions,
    private readonly engine: StorageEngine,
    private readonly local: AaeLocal,
    private readonly remote: AaeRemote,
    private readonly transport: Transport,
    private readonly membership: Membership,
    private readonly clock: Clock,
    logger: Logger,
  ) {
    this.pacer = new Pacer(clock);
    this.confirmDelayMs = Math.min(limits.aaeConfirmDelayMsMax, Math.floor(opts.intervalMs / 4));
    this.digest = opts.digest ?? digestVersionDefault;
    this.trees = new ArcTrees(opts.self, opts.replication, engine, clock, local, this.digest);
    this.logs = new LogLimiter(logger, () => clock.monotonicMs());
  }

  start(): void {
    this.sub = this.transport.subscribe(replicaSubject(this.opts.cluster, this.opts.self, ReplicaOp.Aae), (m) => this.serve(m).catch((err) => this.crashed(m, err)));
    if (!this.opts.enabled) return;
    this.local.onStored((key, before, after) => this.trees.stored(key, before, after));
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.endPause?.();
    await this.running;
    await this.sub?.drain();
  }

  progress(): AaeProgress {
    let segmentsDiffering = 0;
    for (const n of this.differingByArc.values()) segmentsDiffering += n;
    return {
      enabled: this.opts.enabled,
      treesReady: this.trees.readyCount,
      treesTotal: this.trees.list().length,
      treesCompared: this.treesCompared,
      keysRepaired: this.keysRepaired,
      segmentsDiffering,
      exchangesFailed: this.exchangesFailed,
      segmentsCorrected: this.segmentsCorrected,
      segmentsSuspected: this.segmentsSuspected,
      segmentsListed: this.segmentsListed,
      exchangesSkipped: this.exchangesSkipped,
      digest: this.digest,
    };
  }

  /** The root of this node's tree of the arc holding `hash` (tests compare replicas by it); undefined while building. */
  rootOf(hash: bigint): bigint | undefined {
    const t = this.trees.list().find((a) => inArc(hash, a.arc));
    return t && t.state === TreeState.Ready ? t.tree.root : undefined;
  }

  /** Segments of this node's ready trees that differ from its store (tests: 0 on a quiet node). */
  audit(): Promise<number> {
    return this.trees.audit();
  }

  /** The trees of this node by arc name, ready ones only (tests compare replicas by them). */
  roots(): Map<string, bigint> {
    return new Map(this.trees.list().filter((t) => t.state === TreeState.Ready).map((t) => [arcName(t.arc), t.tree.root]));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimer(ms, () => {
      this.timer = undefined;
      this.running = this.round()
        .catch((err: Error) => this.logs.error('aae-round', { err: err.message }, 'anti-entropy round failed; it runs again'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.opts.intervalMs);
        });
    });
  }

  /**
   * One round: every arc this node replicates built (when not yet) and
   * compared with one peer; then, after one pause for the whole round, the
   * segments that differed are compared again and only those that still
   * differ are listed and repaired (below).
   */
  private async round(): Promise<void> {
    const ring = this.membership.ring();
    const fp = ringFingerprint(ring);
    if (fp !== this.ringSeen) {
      // those arcs are gone
      this.differingByArc.clear();
      this.resumeByArc.clear();
    }
    this.ringSeen = fp;
    this.trees.follow(ring, fp);
    const moving = fp !== ringFingerprint(this.membership.futureRing());
    const suspects: Suspect[] = [];
    const round = this.rounds++;
    for (const [i, t] of this.trees.list().entries()) {
      if (this.stopped || ringFingerprint(this.membership.ring()) !== fp) return;
      // A ring change during the build drops the trees (ArcTrees.follow at the next round): it stops then.
      if (!(await this.trees.build(t, () => this.stopped))) return;
      if (moving) continue;
      // Members of protocol 1 know no anti-entropy.
      const peers = t.replicas.filter((id) => id !== this.opts.self && this.membership.isUp(id) && this.membership.protocolOf(id) >= 2);
      if (peers.length === 0) continue;
      const suspect = await this.firstLook(t, peers, round + i);
      if (suspect === undefined || suspect.segments.length === 0) continue;
      this.segmentsSuspected += suspect.segments.length;
      suspects.push(suspect);
    }
    if (suspects.length === 0) return;
    await this.pause(this.confirmDelayMs);
    for (const s of suspects) {
      if (this.stopped || ringFingerprint(this.membership.ring()) !== fp) return;
      await this.attempt(s.peer, () => this.confirmAndRepair(s));
    }
  }

  /**
   * A round's first look at arc `t`, with the peer at `turn` (mod their count)
   * or, when that one cannot compare (its tree still building, another digest
   * format, an exchange that failed), the next: the turn moves with the round
   * as well as the arc, so every pair of an arc's replicas meets (a counter
   * over arcs alone gave an arc the same peer every round when arcs and peers
   * were both even). Undefined when no peer could compare.
   */
  private async firstLook(t: ArcTree, peers: readonly string[], turn: number): Promise<Suspect | undefined> {
    for (let k = 0; k < peers.length; k++) {
      const peer = peers[(turn + k) % peers.length]!;
      const segments = await this.attempt(peer, () => this.compare(t, peer));
      if (segments !== undefined) return { t, peer, segments };
    }
    return undefined;
  }

  /** Runs one step of an exchange with `peer`; a failure is counted and logged, never thrown (the next round tries again). */
  private async attempt<T>(peer: string, step: () => Promise<T>): Promise<T | undefined> {
    try {
      return await step();
    } catch (err) {
      // A peer seen up whose subjects are not there yet (it is still starting): nothing to compare.
      if (err instanceof NoRespondersError) return undefined;
      this.exchangesFailed++;
      this.logs.warn('aae-exchange', { peer, err: (err as Error).message }, 'an anti-entropy exchange failed; it runs again next round');
      return undefined;
    }
  }

  /** Waits `ms` (stop() ends the wait at once). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimer(ms, () => {
        this.endPause = undefined;
        resolve();
      });
      this.endPause = () => {
        timer.cancel();
        resolve();
      };
    });
  }

  /**
   * Compares one arc's tree with `peer`'s: branch hashes, then the segment
   * hashes of the differing branches. The segments that differ, or
   * undefined when the peer's tree is not ready (not compared).
   */
  private async compare(t: ArcTree, peer: string): Promise<number[] | undefined> {
    const arc = { arcStart: t.arc.start, arcEnd: t.arc.end };
    const top = decode(await this.ask(peer, { kind: Kind.AaeTreeRequest, from: this.opts.self, ...arc, digest: this.digest }), Kind.AaeTreeReply);
    if (!this.sameDigest(peer, top)) return undefined;
    if (!top.ready) return undefined; // the peer builds, or serves another ring: unknown, not compared
    if (top.hashes.length !== branchCount) throw new Error(`the peer sent ${top.hashes.length} branch hashes, not ${branchCount}`);
    this.treesCompared++;
    const name = arcName(t.arc);
    const branches = differing(branchHashes(t.tree), top.hashes);
    if (branches.length === 0) {
      this.differingByArc.delete(name);
      this.resumeByArc.delete(name);
      return [];
    }
    return this.differingIn(t, peer, branches);
  }

  /**
   * True when `peer` answered with trees of this node's digest format. A node
   * of another format (an older one, during a rolling upgrade) has every
   * segment different: nothing is compared with it, and the log says so at
   * most once per 10 s (LogLimiter), not per arc.
   */
  private sameDigest(peer: string, reply: AaeTreeReply): boolean {
    const theirs = formatOf(reply);
    if (theirs === this.digest) return true;
    this.exchangesSkipped++;
    this.logs.warn('aae-digest-format', { peer, theirs, ours: this.digest }, 'a replica keeps its anti-entropy trees in another digest format: not compared until both run the same version');
    return false;
  }

  /** The segments of `branches` where this node's tree of the arc and `peer`'s differ (undefined: the peer's is not ready). */
  private async differingIn(t: ArcTree, peer: string, branches: number[]): Promise<number[] | undefined> {
    const mid = decode(await this.ask(peer, { kind: Kind.AaeTreeRequest, from: this.opts.self, arcStart: t.arc.start, arcEnd: t.arc.end, branches, digest: this.digest }), Kind.AaeTreeReply);
    if (!this.sameDigest(peer, mid) || !mid.ready) return undefined;
    if (mid.hashes.length !== branches.length * segmentsPerBranch) throw new Error(`the peer sent ${mid.hashes.length} segment hashes for ${branches.length} branches`);
    return differingSegments(branches, segmentHashes(t.tree, branches), mid.hashes);
  }

  /**
   * The second look (Riak's aae_exchange confirms its root and branch
   * comparisons the same way): a segment that differed a moment ago because
   * a write was on its way to one replica and not yet to the other agrees
   * again once the write landed. Under a steady load nearly every arc has
   * such segments at any instant, and listing and repairing them scanned
   * each arc and wrote its in-flight keys again every round (a third of a
   * put's CPU in the bench). A difference that stays is in both looks: only
   * those segments are listed and their keys repaired, both ways.
   */
  private async confirmAndRepair({ t, peer, segments: suspected }: Suspect): Promise<void> {
    const name = arcName(t.arc);
    const branches = [...new Set(suspected.map(branchOf))].sort((a, b) => a - b);
    const still = await this.differingIn(t, peer, branches);
    if (still === undefined) return;
    const now = new Set(still);
    const segments = suspected.filter((s) => now.has(s));
    this.differingByArc.set(name, segments.length);
    if (segments.length === 0) return;
    this.segmentsListed += segments.length;
    // An arc with more keys in the differing segments than one exchange lists goes on where the last stopped.
    const from = this.resumeByArc.get(name);
    const theirs = await this.peerKeys(peer, t.arc, segments, from);
    const changesBefore = t.changes;
    const ours = await this.localKeys(t.arc, segments, from, theirs.cut);
    // A segment's XOR is known only from a whole listing of it.
    if (from === undefined && theirs.cut === undefined && ours.cut === undefined) this.segmentsCorrected += this.trees.correct(t, ours.leaves, segments, changesBefore);
    const limit = ours.cut ?? theirs.cut;
    await this.repair(peer, differingKeys(t.arc, ours.items, theirs.items, limit));
    if (limit === undefined) this.resumeByArc.delete(name);
    else this.resumeByArc.set(name, limit);
  }

  /** The peer's (key, digest) pairs in `segments` of the arc after `from`, page by page, at most keysPerExchange. */
  private async peerKeys(peer: string, arc: Arc, segments: number[], from: HashCursor | undefined): Promise<KeyList> {
    const items: KeyList['items'] = [];
    const wanted = new Set(segments);
    let after: WireCursor | undefined = from;
    const bytesMax = Math.min(limits.rangePageBytesMax, Math.floor(this.opts.replyBytesMax / 2));
    for (;;) {
      if (this.stopped) throw new Error('stopping');
      const req: AaeKeysRequest = { kind: Kind.AaeKeysRequest, from: this.opts.self, arcStart: arc.start, arcEnd: arc.end, segments, bytesMax, digest: this.digest, ...(after ? { after } : {}) };
      const page = decode(await this.ask(peer, req), Kind.AaeKeysReply);
      let prev = after;
      for (const i of page.items) {
        const at = { hash: keyHash(i.key), key: i.key };
        if (!inArc(at.hash, arc) || !wanted.has(segmentOf(at.hash)) || (prev && compareInArc(arc, at, prev) <= 0)) throw new Error('the peer sent a key list out of the arc, the segments or order');
        items.push({ ...i, hash: at.hash });
        prev = at;
      }
      if (!page.next) return { items, cut: undefined };
      if (!inArc(page.next.hash, arc) || (prev && compareInArc(arc, page.next, prev) < 0) || (after && compareInArc(arc, page.next, after) <= 0)) throw new Error('the peer sent a key-list cursor that does not move on');
      after = page.next;
      if (items.length >= this.opts.keysPerExchange) return { items, cut: after };
    }
  }

  /** This node's (key, digest) pairs in `segments` of the arc after `from`, up to `until`; and each segment's XOR (whole only from the arc's start). */
  private async localKeys(arc: Arc, segments: number[], from: HashCursor | undefined, until: HashCursor | undefined): Promise<KeyList & { leaves: Map<number, bigint> }> {
    const wanted = new Set(segments);
    const items: KeyList['items'] = [];
    const leaves = new Map<number, bigint>();
    for await (const entry of scanArc(this.engine, arc, from)) {
      if (this.stopped) throw new Error('stopping');
      const at = { hash: entry.hash, key: entry.key };
      if (until && compareInArc(arc, at, until) > 0) return { items, cut: until, leaves };
      const seg = segmentOf(entry.hash);
      if (!wanted.has(seg)) continue;
      const digest = versionsDigest(entry.key, decodeOrEmpty(entry.record), this.digest);
      items.push({ key: entry.key, digest, hash: entry.hash });
      leaves.set(seg, (leaves.get(seg) ?? 0n) ^ digest);
      if (items.length >= this.opts.keysPerExchange) return { items, cut: at, leaves };
    }
    return { items, cut: until, leaves };
  }

  /** Each key's versions both ways, paced to the budget. */
  private async repair(peer: string, keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += limits.aaeRepairBatchKeys) {
      if (this.stopped) return;
      const batch = keys.slice(i, i + limits.aaeRepairBatchKeys);
      await this.pacer.ready();
      let bytes = 0;
      const results = await Promise.allSettled(
        batch.map(async (key) => {
          const [theirs, ours] = await Promise.all([this.remote.get(peer, key), this.local.get(key)]);
          if (theirs.length > 0) await this.local.put(key, theirs);
          if (ours.length > 0) await this.remote.put(peer, key, ours);
          bytes += key.length + versionsBytes(theirs) + versionsBytes(ours);
        }),
      );
      const done = results.filter((r) => r.status === 'fulfilled').length;
      this.keysRepaired += done;
      if (done < batch.length) {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        this.logs.warn('aae-repair', { peer, failed: batch.length - done, err: String((failed?.reason as Error | undefined)?.message) }, 'some keys could not be repaired; the next round tries again');
      }
      const costMs = Math.max((batch.length * 1000) / this.opts.keysPerSecond, (bytes * 1000) / this.opts.bytesPerSecond);
      this.pacer.spent(costMs);
    }
  }

  private async ask(peer: string, msg: Message): Promise<Uint8Array> {
    const reply = await this.transport.request(replicaSubject(this.opts.cluster, peer, ReplicaOp.Aae), encode(msg), { timeoutMs: this.opts.requestTimeoutMs });
    const refused = replyError(reply);
    if (refused) throw refused;
    return reply.data;
  }

  /** Answers a peer: tree hashes of an arc, or a page of (key, digest) pairs. */
  private async serve(msg: InboundMessage): Promise<void> {
    let req: AaeTreeRequest | AaeKeysRequest;
    try {
      const kind = decodeKindOnly(msg.data);
      req = kind === Kind.AaeKeysRequest ? decode(msg.data, Kind.AaeKeysRequest) : decode(msg.data, Kind.AaeTreeRequest);
    } catch (err) {
      this.logs.warn('aae-bad-request', { err: (err as Error).message }, 'refused a malformed anti-entropy request');
      msg.respondError(ErrorCode.BadRequest, (err as Error).message);
      return;
    }
    const arc = { start: req.arcStart, end: req.arcEnd };
    // A tree of another digest format compares with nothing here: "not ready" to an older
    // asker (which knows no format field), and this node's format to a newer one.
    const comparable = formatOf(req) === this.digest;
    if (req.kind === Kind.AaeTreeRequest) {
      const t = this.trees.find(arc);
      const ready = comparable && t !== undefined && t.state === TreeState.Ready;
      const hashes = !ready ? [] : req.branches === undefined ? branchHashes(t.tree) : segmentHashes(t.tree, req.branches);
      msg.respond(encode({ kind: Kind.AaeTreeReply, ready, hashes, digest: this.digest }));
      return;
    }
    if (!comparable) {
      msg.respondError(ErrorCode.BadRequest, `anti-entropy key digests in format ${formatOf(req)} asked of a node that keeps format ${this.digest}`);
      return;
    }
    let reply: AaeKeysReply;
    try {
      reply = await this.keysPage(arc, req);
    } catch (err) {
      this.logs.warn('aae-serve', { err: (err as Error).message }, 'an anti-entropy key page failed to read storage');
      msg.respondError(ErrorCode.StorageUnavailable, `anti-entropy key page: ${(err as Error).message}`);
      return;
    }
    msg.respond(encode(reply));
  }

  /**
   * A page of the (key, digest) pairs in the asked segments of the arc,
   * after the cursor: at most aaeKeysPageItemsMax pairs and the asked bytes,
   * scanning at most aaeScanEntriesPerPageMax entries.
   */
  private async keysPage(arc: Arc, req: AaeKeysRequest): Promise<AaeKeysReply> {
    const wanted = new Set(req.segments);
    const bytesMax = Math.max(1, Math.min(req.bytesMax, Math.floor(this.opts.replyBytesMax / 2)));
    const items: AaeKeyDigest[] = [];
    let bytes = 0;
    let scanned = 0;
    const after = req.after && inArc(req.after.hash, arc) ? req.after : undefined;
    let lastScanned: HashCursor | undefined;
    for await (const entry of scanArc(this.engine, arc, after)) {
      if (lastScanned && (items.length >= limits.aaeKeysPageItemsMax || bytes >= bytesMax || scanned >= limits.aaeScanEntriesPerPageMax)) {
        return { kind: Kind.AaeKeysReply, items, next: lastScanned };
      }
      scanned++;
      lastScanned = { hash: entry.hash, key: entry.key };
      if (!wanted.has(segmentOf(entry.hash))) continue;
      const item = { key: entry.key, digest: versionsDigest(entry.key, decodeOrEmpty(entry.record), this.digest) };
      items.push(item);
      bytes += Buffer.byteLength(entry.key, 'utf8') + 32;
    }
    return { kind: Kind.AaeKeysReply, items };
  }

  /** Last resort: a bug reached the subscription. Logged, answered 500, never thrown. */
  private crashed(msg: InboundMessage, err: unknown): void {
    this.logs.error('aae-bug', { err }, 'anti-entropy request failed');
    try {
      msg.respondError(ErrorCode.Internal, 'anti-entropy failed');
    } catch {
      // the requester times out
    }
  }
}

/** The digest format an exchange message says it uses: absent, 1 (nodes that knew only that one send none). */
function formatOf(msg: { digest?: number }): number {
  return msg.digest ?? DigestVersion.Full;
}

/** The stored entries of the arc in its order (a wrapping arc's high part first), after `after` when given. */
async function* scanArc(engine: StorageEngine, arc: Arc, after: HashCursor | undefined): AsyncIterable<HashedEntry> {
  const spans = spansOf(arc);
  // The span the cursor is in.
  const first = after ? Math.max(0, spans.findIndex((s) => after.hash >= s.fromHash && after.hash <= s.toHash)) : 0;
  for (let i = first; i < spans.length; i++) {
    yield* engine.scanRange(spans[i]!, { batchSize: limits.rangeItemsMax, ...(after && i === first ? { after } : {}) });
  }
}

/** Keys whose digests differ between the two sorted lists (or that one side lacks), up to `limit`. */
export function differingKeys(arc: Arc, ours: readonly (AaeKeyDigest & { hash: bigint })[], theirs: readonly (AaeKeyDigest & { hash: bigint })[], limit: HashCursor | undefined): string[] {
  const mine = new Map(ours.map((i) => [i.key, i.digest]));
  const out: string[] = [];
  const seen = new Set<string>();
  const within = (i: AaeKeyDigest & { hash: bigint }) => limit === undefined || compareInArc(arc, { hash: i.hash, key: i.key }, limit) <= 0;
  for (const i of theirs) {
    if (!within(i)) continue;
    seen.add(i.key);
    if (mine.get(i.key) !== i.digest) out.push(i.key);
  }
  for (const i of ours) if (within(i) && !seen.has(i.key)) out.push(i.key);
  return out;
}
