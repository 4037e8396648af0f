/**
 * Tombstone and TTL purge, the shell (issue 10 part 3, issue 12; Cassandra's
 * gc_grace_seconds and its repair-before-purge rule). core/gc.ts says which
 * keys are candidates; this finds them and purges only what every replica
 * holds alike.
 *
 * Every `intervalMs` a sweep scans this node's store in key-hash order from
 * where the last one stopped (the cursor is in memory: a restart starts
 * over), at most `keysPerSecond` x interval keys. For each candidate:
 * - skipped while the ring moves (the preference list is about to change)
 *   or when this node is not one of the key's replicas (the move's cleanup
 *   deletes foreign keys);
 * - skipped when any replica of the key's current preference list is down,
 *   speaks an older protocol, does not answer, or holds other versions: the
 *   next sweep tries again, once read repair or anti-entropy has brought it
 *   the same versions;
 * - otherwise every replica is sent a purge of the key with the versions
 *   expected, and deletes it only if it still holds exactly those and judges
 *   them purgeable by its own clock (a rewrite meanwhile wins).
 * A replica that answers holding nothing counts as holding the same: it has
 * nothing that could come back, and it is how a purge that reached some
 * replicas only (a timeout) gets finished by the others' next sweeps.
 *
 * Bounded: one candidate in flight, one sweep at a time, a page of the scan
 * in memory; purge requests carry at most replicaBatchItemsMax items. The
 * event loop is given way after each page of keys scanned.
 */
import type { Logger } from 'pino';
import { nextTurn, type Clock, type TimerHandle } from '../../core/clock.js';
import { ErrorCode, GodDbError, StorageError } from '../../core/errors.js';
import { purgeCandidate, PurgeKind, SkipReason } from '../../core/gc.js';
import { sameRing } from '../../core/handoff.js';
import { limits } from '../../core/limits.js';
import { placement } from '../../core/placement.js';
import type { Ring } from '../../core/ring.js';
import { isUpToDate, type Version } from '../../core/version.js';
import { decode, decodeRecord, decodeVersioned, encode, Kind, type ItemResult } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import type { HashCursor, StorageEngine } from '../../storage/engine.js';
import { replyError, type InboundMessage, type Subscription, type Transport } from '../../transport/transport.js';
import type { HybridClock } from '../clock/hybrid_clock.js';
import { LogLimiter } from '../log_limiter.js';

export interface GcOptions {
  self: string;
  cluster: string;
  replication: number;
  /** A dead version stays this long before it may be purged (config gc.graceSeconds). */
  graceSeconds: number;
  /** Time between sweeps. */
  intervalMs: number;
  /** Keys scanned per second of interval: each sweep scans at most keysPerSecond x intervalMs / 1000. */
  keysPerSecond: number;
  requestTimeoutMs: number;
  /** The newest protocol version this node reads. */
  protocolMax: number;
}

/** What the sweep needs of membership (node/membership/membership.ts). */
export interface GcMembership {
  ring(): Ring;
  futureRing(): Ring;
  isUp(id: string): boolean;
  protocolOf(id: string): number;
}

/** What the sweep needs of the replica: reads, and deletes only if unchanged (node/replica/replica.ts). */
export interface GcStore {
  get(key: string): Promise<Version[]>;
  remove(key: string, expected?: readonly Version[]): Promise<boolean>;
}

/** Reads a replica's versions of a key (node/coordinator/replica_client.ts). */
export interface GcReader {
  get(node: string, key: string): Promise<Version[]>;
}

/** The first protocol version that knows purges (and TTLs on versions). */
const purgeProtocolMin = 2;
const hashMax = (1n << 64n) - 1n;

export class Gc {
  /** Keys removed from this node's store, by kind (on its own sweep or a peer's purge). */
  readonly purged: Record<PurgeKind, number> = { tombstone: 0, expired: 0 };
  /** Candidates a sweep of this node left in place, by reason. */
  readonly skipped: Record<SkipReason, number> = { moving: 0, not_replica: 0, down: 0, unreachable: 0, differs: 0, old_protocol: 0 };
  /** Sweeps finished (a test waits for them). */
  sweeps = 0;
  private cursor: HashCursor | undefined;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private sub: Subscription | undefined;
  private readonly logs: LogLimiter;

  constructor(
    private readonly opts: GcOptions,
    private readonly engine: StorageEngine,
    private readonly store: GcStore,
    private readonly reader: GcReader,
    private readonly transport: Transport,
    private readonly membership: GcMembership,
    /** True when no range is moving (node/handoff/moves.ts settled). */
    private readonly settled: () => boolean,
    private readonly clock: Clock,
    private readonly hlc: HybridClock,
    private readonly logger: Logger,
  ) {
    this.logs = new LogLimiter(logger, () => clock.monotonicMs());
  }

  /** Serves purges from peers and starts sweeping. */
  start(): void {
    this.sub = this.transport.subscribe(replicaSubject(this.opts.cluster, this.opts.self, ReplicaOp.Purge), (m) => void this.onPurge(m).catch((err) => this.crashed(m, err)));
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.running;
    await this.sub?.drain();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimer(this.opts.intervalMs, () => {
      this.running = this.sweep()
        .catch((err) => this.logs.error('gc-sweep', { err: (err as Error).message }, 'a gc sweep failed; the next one tries again'))
        .finally(() => this.schedule());
    });
  }

  /** Keys one sweep scans at most. */
  get budget(): number {
    return Math.max(1, Math.floor((this.opts.keysPerSecond * this.opts.intervalMs) / 1000));
  }

  /** One budgeted pass, resuming after the last key the previous one scanned. */
  async sweep(): Promise<void> {
    if (!this.settled() || !sameRing(this.membership.ring(), this.membership.futureRing())) {
      this.skipped.moving++;
      return;
    }
    const nowHlc = this.hlc.now();
    const before = this.purged.tombstone + this.purged.expired;
    const budget = this.budget;
    let scanned = 0;
    let whole = true;
    const opts = { batchSize: Math.min(budget, limits.rangeItemsMax), ...(this.cursor ? { after: this.cursor } : {}) };
    for await (const entry of this.engine.scanRange({ fromHash: 0n, toHash: hashMax }, opts)) {
      if (this.stopped) return;
      this.cursor = { hash: entry.hash, key: entry.key };
      const versions = decodeOrUndefined(entry.record);
      const kind = versions && purgeCandidate(versions, nowHlc, this.opts.graceSeconds);
      if (versions && kind) await this.tryPurge(entry.key, entry.hash, versions);
      if (++scanned >= budget) {
        whole = false;
        break;
      }
      // The scan and its decoding run on the event loop: a whole budget at once held it for 0.4 s
      // (60,000 keys, the default's); a page at a time, requests are served in between.
      if (scanned % limits.rangeItemsMax === 0) await nextTurn(this.clock);
    }
    if (whole) this.cursor = undefined; // the store's end: the next sweep starts over
    this.sweeps++;
    const purged = this.purged.tombstone + this.purged.expired - before;
    if (purged > 0) this.logger.debug({ purged, scanned }, 'gc sweep purged dead keys');
  }

  /** Purges `key` on every replica if each holds `versions` (or nothing); else counts why not. */
  private async tryPurge(key: string, hash: bigint, versions: Version[]): Promise<void> {
    const placed = placement(this.membership.ring(), hash, this.opts.replication, (id) => this.membership.isUp(id));
    const replicas = placed.replicas.map((r) => r.node);
    if (!replicas.includes(this.opts.self)) return this.skip(SkipReason.NotReplica);
    if (placed.replicas.some((r) => !r.up)) return this.skip(SkipReason.Down);
    if (replicas.some((id) => id !== this.opts.self && this.membership.protocolOf(id) < purgeProtocolMin)) return this.skip(SkipReason.OldProtocol);
    let answers: Version[][];
    try {
      answers = await Promise.all(replicas.map((id) => (id === this.opts.self ? this.store.get(key) : this.reader.get(id, key))));
    } catch {
      return this.skip(SkipReason.Unreachable);
    }
    if (!answers.every((a) => a.length === 0 || sameSet(a, versions))) return this.skip(SkipReason.Differs);
    const outcomes = await Promise.allSettled(replicas.map((id) => (id === this.opts.self ? this.purgeLocal(key, versions) : this.purgeOn(id, key, versions))));
    const failed = outcomes.filter((o) => o.status === 'rejected');
    if (failed.length > 0) this.logs.warn('gc-purge', { key, failed: failed.length, err: String((failed[0] as PromiseRejectedResult).reason) }, 'a purge did not reach every replica; their next sweeps finish it');
  }

  private skip(reason: SkipReason): void {
    this.skipped[reason]++;
  }

  /** Deletes `key` here if it still holds exactly `versions` and they are purgeable by this node's clock. */
  async purgeLocal(key: string, versions: readonly Version[]): Promise<boolean> {
    const kind = purgeCandidate(versions, this.hlc.now(), this.opts.graceSeconds);
    if (kind === undefined) return false; // not dead long enough by this node's clock or grace: a later sweep asks again
    const removed = await this.store.remove(key, versions);
    if (removed) this.purged[kind]++;
    return removed;
  }

  private async purgeOn(node: string, key: string, versions: Version[]): Promise<boolean> {
    const reply = await this.transport.request(replicaSubject(this.opts.cluster, node, ReplicaOp.Purge), encode({ kind: Kind.ReplicaPurge, items: [{ key, versions }] }), { timeoutMs: this.opts.requestTimeoutMs });
    const refused = replyError(reply);
    if (refused) throw refused;
    const [result] = decode(reply.data, Kind.ReplicaPurgeReply).results;
    if (!result) throw new Error(`${node} answered a purge with no result`);
    if (!result.ok) throw new Error(`${node} refused a purge: ${result.code} ${result.error}`);
    return result.removed;
  }

  /** A peer's purge: each item checked and deleted here only if unchanged; never throws past here. */
  private async onPurge(msg: InboundMessage): Promise<void> {
    let items: { key: string; versions: Version[] }[];
    let v: number;
    try {
      ({ v, msg: { items } } = decodeVersioned(msg.data, Kind.ReplicaPurge, this.opts.protocolMax));
    } catch (err) {
      this.logs.warn('gc-malformed', { err: (err as Error).message }, 'refused a malformed purge');
      msg.respondError(ErrorCode.BadRequest, (err as Error).message);
      return;
    }
    const results = await Promise.all(
      items.map((i) => this.purgeLocal(i.key, i.versions).then((removed): ItemResult<{ removed: boolean }> => ({ ok: true, removed }), (err) => failure(err))),
    );
    msg.respond(encode({ kind: Kind.ReplicaPurgeReply, results }, v));
  }

  private crashed(msg: InboundMessage, err: unknown): void {
    this.logs.error('gc-bug', { err }, 'purge request failed');
    try {
      msg.respondError(ErrorCode.Internal, 'purge failed');
    } catch {
      // nothing more to do: the requester times out
    }
  }
}

function failure(err: unknown): ItemResult<{ removed: boolean }> {
  const code = err instanceof GodDbError ? err.code : err instanceof StorageError ? ErrorCode.StorageUnavailable : ErrorCode.Internal;
  return { ok: false, code, error: err instanceof Error ? err.message : String(err) };
}

/** The same versions on both sides (core/version.ts isUpToDate, both ways). */
function sameSet(a: readonly Version[], b: readonly Version[]): boolean {
  return isUpToDate(a, b) && isUpToDate(b, a);
}

function decodeOrUndefined(record: Uint8Array): Version[] | undefined {
  try {
    return decodeRecord(record);
  } catch {
    return undefined; // undecodable: not this sweep's to judge
  }
}
