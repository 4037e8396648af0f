/**
 * The coordinator: any node coordinates any key. It sends the operation to
 * the key's preference list (skipping members marked down) with one
 * deadline, answers once W writes or R reads succeed, and after a read
 * writes the versions the replicas returned to every one that lacks some of
 * them (read repair, Dynamo 4.7 and 5).
 *
 * A new version takes its counter and its timestamp from the node's hybrid
 * logical clock. Replicas refuse a new version that would not take effect
 * (they hold a later timestamp, or this node's counter went back); the
 * coordinator then moves its clock past the floor they name and writes
 * again, so an acknowledged write is never one that was already lost. With
 * W + W > N, two writes that do not overlap in time always meet on some
 * replica, so the later one is written with the later timestamp.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { ClockSkewError, ErrorCode, GodDbError, QuorumNotMetError, StaleWriteError, TimeoutError, UnavailableError } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { ownershipPercent, placement, type Placement } from '../../core/placement.js';
import { keyHash } from '../../core/ring.js';
import { counterOf, emptyClock, type VClock } from '../../core/vclock.js';
import { agreedSingle, ConflictPolicy, contextOf, isUpToDate, newVersion, reconcile, union, type Version } from '../../core/version.js';
import { transferReport, type AaeReport, type RingReport } from '../../protocol/placement_report.js';
import { TransferState, type Transfer } from '../../core/handoff.js';
import type { Transport } from '../../transport/transport.js';
import { fanOut, FanOutOutcome, type FanOutResult } from './fan_out.js';
import type { Membership } from '../membership/membership.js';
import type { HybridClock } from '../clock/hybrid_clock.js';
import type { Replica } from '../replica/replica.js';
import { ReplicaClient } from './replica_client.js';
import { Responsiveness } from './responsiveness.js';
import { LogLimiter } from '../log_limiter.js';
import type { Condition } from '../../core/paxos.js';
import type { PaxosProposer } from '../paxos/proposer.js';
import { RequestTimeoutError } from '../../transport/transport.js';

export interface CoordinatorOptions {
  self: string;
  cluster: string;
  replication: number;
  requestTimeoutMs: number;
  /**
   * Reads ask R replicas first and one more when a quorum is still pending
   * this long (or at once when one fails); stale replicas that are not asked
   * are left to later reads and anti-entropy.
   */
  readSpeculativeMs: number;
  conflictPolicy: ConflictPolicy;
  /** Under `siblings`: the most siblings a read answers; past it the oldest collapse by LWW (default limits.siblingsMax). */
  siblingsMax?: number;
  /** Largest encoded record of one key; read repair writes no more (siblings collapse by LWW). */
  recordBytesMax: number;
  /** Largest replica request payload (NATS max_payload less headers); undefined when unknown. */
  requestBytesMax?: number;
  /** The protocol version a node speaks (rolling upgrades); default the newest. */
  protocolOf?: (node: string) => number;
  /** False while a range is moving as this node sees it (node/handoff/moves.ts); default always settled. */
  settled?: () => boolean;
  /** This node's pulls, one per source (node/handoff/moves.ts), for `goddb status`. */
  transfers?: () => readonly Transfer[];
  /**
   * Sloppy quorum (Dynamo 4.6): a write whose replica is down also goes to
   * that replica's fallback as a hint, and the fallback's acknowledgement
   * counts toward W. Default false (strict: 503 when too few replicas are up).
   */
  sloppyQuorum?: boolean;
  /** No new hints for a replica down longer than this (the hint window); default limits.hintWindowMsDefault. */
  hintWindowMs?: number;
  /** This node's hints per owner, for `goddb status`. */
  hintsPending?: () => ReadonlyMap<string, number>;
  /** This node's anti-entropy progress (node/aae), for `goddb status`. */
  aae?: () => AaeReport;
  /** Override limits.inflightRequestsMax and limits.inflightBytesMax (tests). */
  inflightRequestsMax?: number;
  inflightBytesMax?: number;
}

/** Per-request write options (client headers). */
export interface WriteOptions {
  /** KV-Sloppy: overrides CoordinatorOptions.sloppyQuorum for this write. */
  sloppy?: boolean;
}

export interface WriteResult {
  acks: number;
  asked: number;
  /** The version written (the change feed announces it once the client has its answer). */
  version?: Version;
}

export interface ReadResult {
  versions: Version[];
  /**
   * This node's HLC when the read completed, past every version it read:
   * the time expiries are judged by (core/version.ts visibleValue).
   */
  nowHlc: number;
  acks: number;
  asked: number;
}

export class Coordinator {
  private inflight = 0;
  private inflightBytes = 0;
  /** Read repairs still running; awaited on shutdown so none is cut half-way. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly remote: ReplicaClient;
  readRepairs = 0;
  /** Reads whose repair was skipped because too many were under way (anti-entropy catches up). */
  repairsSkipped = 0;
  /** Writes sent again with a later clock after a replica refused them as stale. */
  staleRetries = 0;
  /** Hinted copies sent to fallbacks for replicas that were down. */
  hintsSent = 0;
  /** Under `siblings`: versions a read folded into others by LWW past siblingsMax (goddb_siblings_collapsed_total). */
  siblingsCollapsed = 0;
  /** Conditional writes and serial reads (node/paxos); set by the node, 503 without it. */
  paxos: PaxosProposer | undefined;
  /** Members whose replica requests time out are routed around for a while (gray failures). */
  readonly responsiveness: Responsiveness;
  private readonly hintLogs: LogLimiter;

  constructor(
    private readonly opts: CoordinatorOptions,
    transport: Transport,
    private readonly membership: Membership,
    private readonly local: Replica,
    private readonly clock: Clock,
    private readonly hlc: HybridClock,
    logger: Logger,
  ) {
    this.hintLogs = new LogLimiter(logger, () => clock.monotonicMs());
    this.responsiveness = new Responsiveness(clock, { timeoutsToShun: limits.replicaTimeoutsToShun, shunMs: 2 * opts.requestTimeoutMs, quietMs: opts.requestTimeoutMs, membersMax: limits.membersMax });
    this.remote = new ReplicaClient(transport, opts.cluster, opts.requestTimeoutMs, { requestBytesMax: opts.requestBytesMax, protocolOf: opts.protocolOf });
  }

  /**
   * Writes `value`, or a tombstone when it is null, superseding `context`.
   * A context with a counter too far ahead of this node's clock is refused
   * (ClockSkewError, 400): it would drag this node's counters into the future.
   * A value with `ttlSeconds` expires that long after its timestamp.
   */
  async write(key: string, value: Uint8Array | null, w: number, context: VClock = emptyClock, ttlSeconds?: number, options: WriteOptions = {}): Promise<WriteResult> {
    if (ttlSeconds !== undefined && (value === null || !Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1)) {
      throw new Error('assertion: a time to live is a positive number of seconds on a value');
    }
    if (value === null && this.opts.conflictPolicy === ConflictPolicy.Siblings && Object.keys(context).length === 0) {
      // Under siblings a delete without a context would only add a tombstone beside the values
      // (a sibling, hiding nothing): it reads first and deletes what it read, as Riak's client does.
      context = contextOf((await this.read(key, w)).versions);
    }
    return this.admit(value?.length ?? 0, async () => {
      this.observeContext(context);
      // While a range moves, its pending owners get every write too, and each one raises the
      // quorum (Cassandra's blockFor + pending): a write then reaches W of the owners after the move.
      const sloppy = options.sloppy ?? this.opts.sloppyQuorum ?? false;
      const { counted, uncounted, needed, hintFor } = this.writeTargets(key, w, sloppy);
      for (let attempt = 1; ; attempt++) {
        const version = this.newVersion(value, context, ttlSeconds);
        const send = (node: string): Promise<void> => {
          const owner = hintFor.get(node);
          return owner === undefined ? this.replicaPut(node, key, [version], true) : this.hintPut(node, owner, key, [version]);
        };
        // Without sloppy quorum the hints still go (every down replica gets the write once it is
        // back), but they count toward no quorum: only the key's own replicas do.
        for (const node of uncounted) this.track(send(node).catch((err: Error) => this.hintLogs.warn('hint-failed', { node, err: err.message }, 'a hint was not stored')));
        const { quorum } = fanOut(counted, { needed, timeoutMs: this.opts.requestTimeoutMs }, this.clock, (node) => this.blame(node, send(node)));
        const r = await quorum;
        const floor = r.outcome === FanOutOutcome.Won ? undefined : staleFloorOf(r);
        if (floor === undefined || attempt >= limits.staleWriteAttemptsMax) {
          this.check(r, needed, 'W');
          return { acks: r.tally.succeeded, asked: counted.length, version };
        }
        this.staleRetries++;
        this.passFloor(floor);
      }
    });
  }

  async read(key: string, r: number): Promise<ReadResult> {
    return this.admit(0, async () => {
      const targets = this.targets(key, r, 'R');
      const spec = { needed: r, timeoutMs: this.opts.requestTimeoutMs, initial: r, speculativeMs: this.opts.readSpeculativeMs };
      const { quorum, all } = fanOut(targets, spec, this.clock, (node) => this.blame(node, this.replicaGet(node, key)));
      const q = await quorum;
      this.check(q, r, 'R');
      // Replicas that agree on one version (the common case): nothing to union, and nothing to
      // repair unless a replica that answered after the quorum holds something else.
      const agreed = agreedSingle([...q.ok.values()]);
      // When every replica called has answered and they agree, no later answer can call for a repair.
      if (agreed === undefined || q.ok.size < q.called) {
        if (this.background.size < limits.readRepairsInflightMax) this.track(all.then((a) => (agreed !== undefined && a.ok.size === q.ok.size ? undefined : this.repair(key, a))));
        else this.repairsSkipped++;
      }
      const siblingsMax = Math.min(this.opts.siblingsMax ?? limits.siblingsMax, limits.siblingsMax);
      const versions = agreed ?? reconcile([...q.ok.values()], this.opts.conflictPolicy, siblingsMax, (n) => {
        this.siblingsCollapsed += n;
        this.hintLogs.warn('siblings-collapsed', { key, collapsed: n, siblingsMax }, 'a read found more siblings than siblingsMax: the oldest collapsed by LWW');
      }, this.opts.recordBytesMax); // the values of a siblings reply fit in one message, as a record does
      for (const v of versions) this.hlc.advanceTo(v.hlc);
      // now(), not the wall clock: at least the wall clock and past every heartbeat and version seen,
      // so a node whose wall clock is behind still agrees on expiry within maxClockSkewMs.
      return { versions, nowHlc: this.hlc.now(), acks: q.tally.succeeded, asked: targets.length };
    });
  }

  /**
   * A put (or delete, `value` null) that takes effect only if `condition`
   * holds, linearizable per key (node/paxos/proposer.ts): 409
   * (ConditionFailedError, with the current context) when it does not.
   */
  async conditionalWrite(key: string, condition: Condition, value: Uint8Array | null, ttlSeconds?: number): Promise<WriteResult> {
    const paxos = this.paxos;
    if (paxos === undefined) throw new UnavailableError('this node does not coordinate conditional writes');
    return this.admit(value?.length ?? 0, () => paxos.write(key, condition, value, ttlSeconds));
  }

  /** A read through Paxos: linearizable with conditional writes of the key. */
  async serialRead(key: string): Promise<ReadResult> {
    const paxos = this.paxos;
    if (paxos === undefined) throw new UnavailableError('this node does not coordinate serial reads');
    return this.admit(0, async () => {
      const r = await paxos.read(key);
      return { versions: r.versions, nowHlc: r.nowHlc, acks: r.acks, asked: r.asked };
    });
  }

  /** Waits for read repairs under way (bounded by the request timeout). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  get inflightRequests(): number {
    return this.inflight;
  }

  /** Refuses (503) past the in-flight request or value-byte maximum, so load cannot grow memory without bound. */
  private async admit<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
    const requestsMax = this.opts.inflightRequestsMax ?? limits.inflightRequestsMax;
    if (this.inflight >= requestsMax) {
      throw new QuorumNotMetError(`coordinator overloaded: ${requestsMax} requests in flight`, 0, 0);
    }
    const bytesMax = this.opts.inflightBytesMax ?? limits.inflightBytesMax;
    if (this.inflightBytes + bytes > bytesMax) {
      throw new QuorumNotMetError(`coordinator overloaded: ${this.inflightBytes} bytes of values in flight, at most ${bytesMax}`, 0, 0);
    }
    this.inflight++;
    this.inflightBytes += bytes;
    try {
      return await fn();
    } finally {
      this.inflight--;
      this.inflightBytes -= bytes;
    }
  }

  /** The counter and the timestamp of a new version are one HLC reading, past everything in `context`. */
  private newVersion(value: Uint8Array | null, context: VClock, ttlSeconds: number | undefined): Version {
    return newVersion(this.opts.self, this.hlc.now(), value, context, ttlSeconds, this.opts.conflictPolicy);
  }


  /** The key's replicas, fallbacks and pending owners as this node sees them now (`goddb owners` shows this). */
  placementOf(key: string): Placement {
    return placement(this.membership.ring(), keyHash(key), this.opts.replication, (id) => this.reachable(id), this.membership.pendingOwners);
  }

  /** Up for the failure detector; this node always. (A member routed around for timing out is still up: it is asked last.) */
  reachable(id: string): boolean {
    return id === this.opts.self || this.membership.isUp(id);
  }

  /**
   * Every member with its liveness, virtual nodes and replicated share of the
   * ring, as this node sees them, and the keys this node holds when known (`goddb status`).
   */
  ringReport(keys?: number): RingReport {
    const owns = ownershipPercent(this.membership.ring(), this.opts.replication);
    const members = this.membership.members().map((m) => ({ id: m.id, status: m.status, state: m.state, virtualNodes: m.virtualNodes, owns: owns.get(m.id) ?? 0 }));
    const transfers = (this.opts.transfers?.() ?? []).filter((t) => t.state === TransferState.Running).map(transferReport);
    const report: RingReport = { replication: this.opts.replication, settled: this.opts.settled?.() ?? true, members, transfers };
    if (keys !== undefined) report.keys = keys;
    const hints = this.opts.hintsPending?.();
    if (hints !== undefined) report.hints = Object.fromEntries(hints);
    const aae = this.opts.aae?.();
    if (aae !== undefined) report.aae = aae;
    return report;
  }

  /** The fraction of keys this node holds as one of their N replicas, 0..1; members sum to min(N, members) (/metrics goddb_ring_owned_ratio). */
  ownedRatio(): number {
    return (ownershipPercent(this.membership.ring(), this.opts.replication).get(this.opts.self) ?? 0) / 100;
  }

  /**
   * The key's preference list less the members marked down, this node first
   * when it is a replica (a local read costs no message); refuses when too
   * few are left. Reads never ask fallbacks: they hold hints, not the key.
   */
  private targets(key: string, needed: number, label: 'R' | 'W'): string[] {
    return this.upFirst(this.placementOf(key).replicas.filter((r) => r.up).map((r) => r.node), needed, label, 0);
  }

  /**
   * The replicas and the pending owners that are up, and the acknowledgements
   * needed: W plus one per pending owner; and the fallback of every down
   * replica (`hintFor`: fallback -> the replica it stands in for), always,
   * even when W is met without them, so that N copies exist (a replica down
   * longer than the hint window gets none). With sloppy quorum the fallbacks
   * count toward W (Dynamo, Riak); without it (the default) they do not
   * (Cassandra): see `write`.
   */
  private writeTargets(key: string, w: number, sloppy: boolean): { counted: string[]; uncounted: string[]; needed: number; hintFor: Map<string, string> } {
    const p = this.placementOf(key);
    const needed = w + p.pending.length;
    const up = [...p.replicas.filter((r) => r.up).map((r) => r.node), ...p.pending.filter((id) => this.reachable(id))];
    const hintFor = new Map<string, string>();
    for (const f of p.fallbacks) {
      if (up.includes(f.node) || hintFor.has(f.node) || !this.hintable(f.standsInFor)) continue;
      if (f.node !== this.opts.self && (this.opts.protocolOf?.(f.node) ?? 2) < 2) continue; // protocol 1 would store it as its own
      hintFor.set(f.node, f.standsInFor);
    }
    const counted = this.upFirst(sloppy ? [...up, ...hintFor.keys()] : up, needed, 'W', p.pending.length);
    return { counted, uncounted: sloppy ? [] : [...hintFor.keys()], needed, hintFor };
  }

  /** True while `owner` has been down no longer than the hint window (past it, its hints would only be dropped). */
  private hintable(owner: string): boolean {
    const since = this.membership.downSinceMs(owner);
    return since === undefined || this.clock.monotonicMs() - since <= (this.opts.hintWindowMs ?? limits.hintWindowMsDefault);
  }

  /** A hinted copy for `owner` on its fallback `node` (this node's hint store when it is the fallback). */
  private async hintPut(node: string, owner: string, key: string, versions: Version[]): Promise<void> {
    this.hintsSent++;
    if (node !== this.opts.self) return this.remote.put(node, key, versions, false, owner);
    if (this.local.hints === undefined) throw new UnavailableError(`this node keeps no hints: the write for ${owner} is refused`);
    await this.local.hints.store(owner, key, versions);
  }

  /** This node first when it is among them (a local call costs no message); refuses when too few are up. */
  private upFirst(up: string[], needed: number, label: 'R' | 'W', pending: number): string[] {
    // Members whose replica requests time out go last (responsiveness.ts): a read asks them only
    // when the others cannot make R, and a write does not wait for them when the others make W.
    // They are not left out: routing around a member behind a lossy link as if it were down made
    // R=3 reads fail in the elastic simulation (seeds 303, 306, 307, 316, 326, 336).
    const slow = up.filter((id) => id !== this.opts.self && !this.responsiveness.usable(id));
    if (slow.length > 0) up.splice(0, up.length, ...up.filter((id) => !slow.includes(id)), ...slow);
    const self = up.indexOf(this.opts.self);
    if (self > 0) up.unshift(...up.splice(self, 1));
    if (up.length < needed) {
      const moving = pending > 0 ? ` (${pending} pending owner${pending > 1 ? 's' : ''} of a range that is moving count too)` : '';
      throw new QuorumNotMetError(`quorum not reached: ${up.length} of ${this.opts.replication + pending} replicas up, ${label}=${needed} needed${moving}`, 0, needed);
    }
    return up;
  }

  private check<T>(r: FanOutResult<T>, needed: number, label: 'R' | 'W'): void {
    if (r.outcome === FanOutOutcome.Won) return;
    const answered = r.tally.succeeded;
    const detail = `${answered} of ${r.tally.asked} replicas answered ok, ${r.tally.failed} failed, ${label}=${needed} needed`;
    const cause = [...r.failed.values()][0];
    if (r.outcome === FanOutOutcome.Timeout) {
      throw new TimeoutError(`timeout after ${this.opts.requestTimeoutMs}ms: ${detail}`, { cause });
    }
    const why = cause ? ` (${cause.message})` : '';
    throw new QuorumNotMetError(`quorum not reached: ${detail}${why}`, answered, needed, { cause });
  }

  private replicaGet(node: string, key: string): Promise<Version[]> {
    return node === this.opts.self ? this.local.serveGet(key) : this.remote.get(node, key);
  }

  private replicaPut(node: string, key: string, versions: Version[], fresh = false): Promise<void> {
    return node === this.opts.self ? this.local.servePut(key, versions, fresh) : this.remote.put(node, key, versions, fresh);
  }

  /** Every counter of a client's context must be one this cluster could have issued (within the clock skew). */
  private observeContext(context: VClock): void {
    for (const id of Object.keys(context)) {
      this.hlc.observe(counterOf(context, id), `${id}'s counter in the context`);
    }
  }

  /** Moves this node's clock past a replica's stale-write floor; a floor beyond the skew is a replica's broken clock. */
  private passFloor(floor: number): void {
    try {
      this.hlc.observe(floor, 'a replica\'s stale-write floor');
    } catch (err) {
      if (!(err instanceof ClockSkewError)) throw err;
      throw new QuorumNotMetError(`write refused: a replica holds a newer version stamped by a clock too far ahead (${err.message})`, 0, 0, { cause: err });
    }
  }

  /** Names the replica in its failure, local or remote, keeping the code. (A `then`, not an async frame: one per replica per operation.) */
  private blame<T>(node: string, p: Promise<T>): Promise<T> {
    return p.then(
      (value) => {
        if (node !== this.opts.self) this.responsiveness.answered(node);
        return value;
      },
      (err: unknown) => {
        if (node !== this.opts.self) {
          if (err instanceof RequestTimeoutError) this.responsiveness.timedOut(node);
          else this.responsiveness.answered(node); // it answered, with an error
        }
        const code = err instanceof GodDbError ? err.code : ErrorCode.Internal;
        throw new GodDbError(code, `replica ${node}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      },
    );
  }

  /**
   * Read repair: every replica that answered without a version another one
   * returned gets the union of what they returned. Replicas that agree are
   * left alone even when they hold concurrent siblings: every read resolves
   * those the same way, while writing the collapsed version back would cost
   * a write on every replica for each read of such a key, and siblings are
   * common (blind puts through different coordinators).
   */
  private async repair(key: string, all: FanOutResult<Version[]>): Promise<void> {
    const siblingsMax = this.opts.conflictPolicy === ConflictPolicy.Siblings ? Math.min(this.opts.siblingsMax ?? limits.siblingsMax, limits.siblingsMax) : limits.siblingsMax;
    const versions = union([...all.ok.values()], siblingsMax, this.opts.recordBytesMax, { policy: this.opts.conflictPolicy });
    if (versions.length === 0) return;
    const stale = [...all.ok].filter(([, held]) => !isUpToDate(held, versions)).map(([node]) => node);
    await Promise.all(
      stale.map(async (node) => {
        try {
          await this.replicaPut(node, key, versions);
          this.readRepairs++;
        } catch (err) {
          // Rate limited: a replica that answers garbage would otherwise cost a line per read.
          this.hintLogs.warn('read-repair', { key, replica: node, err: (err as Error).message }, 'read repair failed');
        }
      }),
    );
  }

  private track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }
}

/** The largest floor among the replicas that refused the write as stale, if any did. */
function staleFloorOf(r: FanOutResult<unknown>): number | undefined {
  let floor: number | undefined;
  for (const err of r.failed.values()) {
    const stale = err instanceof StaleWriteError ? err : err.cause instanceof StaleWriteError ? err.cause : undefined;
    if (stale) floor = Math.max(floor ?? 0, stale.floor);
  }
  return floor;
}
