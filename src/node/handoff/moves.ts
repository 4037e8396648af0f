/**
 * Range moves, the shell (issue 9; Cassandra's bootstrap, decommission and
 * removenode streaming; core/moves.ts is the pure part).
 *
 * Each node pulls what it gains: when the future ring differs from its base
 * (the ring it holds every key of), it waits the ring delay (so every
 * coordinator already writes to the pending owners), then asks the sources
 * of each arc it gains for pages in key-hash order (RangeRequest on the
 * source's `range` subject) and merges them into its store through the
 * replica (versions merge with what arrived meanwhile). A page's cursor is
 * kept in the node's metadata, so a restart of either side resumes where
 * the last page ended. When every arc has arrived the base becomes the
 * future ring, and heartbeats say so (`synced`).
 *
 * The states move on from there, each decided from gossiped facts only:
 * - a joining node that is synced becomes up (its ranges are whole);
 * - a leaving node becomes left once every member of the future ring says
 *   it is synced to it, then it exits (`onLeft`);
 * - a removing member (dead, removed by an operator) becomes removed the
 *   same way, decided by any node (the decisions agree: same version);
 * - once every future member is synced and nothing moves, a node deletes
 *   the keys of arcs it no longer replicates (deleted only after the new
 *   owners confirmed them, by saying they are synced).
 *
 * Bounded: one page in flight per node, pages at most rangePageBytesMax and
 * rangeItemsMax, pulled at most at bytesPerSecond.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { ErrorCode } from '../../core/errors.js';
import { newTransfer, TransferKind, TransferState, type Transfer } from '../../core/handoff.js';
import { limits } from '../../core/limits.js';
import { inFutureRing, isGone, MemberState } from '../../core/membership.js';
import { foreignArcs, pullTasks, ringFingerprint, spansOf, type HashSpan, type PullTask } from '../../core/moves.js';
import { buildRing, keyHash, type Ring } from '../../core/ring.js';
import { versionsBytes, type Version } from '../../core/version.js';
import { decode, decodeRecord, encode, Kind, type RangeItem, type RangeReply, type WireCursor } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import type { HashCursor, StorageEngine } from '../../storage/engine.js';
import { compareHashOrder } from '../../storage/hash_order.js';
import type { MetaStore } from '../../storage/meta.js';
import type { InboundMessage, Subscription, Transport } from '../../transport/transport.js';
import type { Membership } from '../membership/membership.js';
import { LogLimiter } from '../log_limiter.js';
import { Pacer } from '../pacer.js';

export interface MovesOptions {
  self: string;
  cluster: string;
  replication: number;
  bytesPerSecond: number;
  /** Wait between seeing a new future ring and pulling for it (Cassandra's ring_delay). */
  ringDelayMs: number;
  requestTimeoutMs: number;
  /** Largest reply payload this node sends (NATS max_payload less headers). */
  replyBytesMax: number;
}

/** Where pulled versions go: the replica's merge (Replica.putMany, a page at a time); foreign keys leave through it too. */
export interface LocalStore {
  putMany(items: readonly { key: string; versions: readonly Version[] }[]): Promise<void>;
  remove(key: string, expected?: readonly Version[]): Promise<boolean>;
}

/** Kept in the node's metadata: the base ring, and how far each (arc, source) pull got. */
interface Saved {
  /** Tokens of the base ring by member, 16 hex digits each; null: no base (joining). */
  base: Record<string, string[]> | null;
  /** `from-to@source` -> 'done', or the cursor after which the next page starts. */
  progress: Record<string, 'done' | { hash: string; key: string }>;
  /** Hash intervals that have arrived, `from-to` in hex, for the future ring `doneFor` (fingerprint). */
  done?: string[];
  doneFor?: string;
}

export const movesMetaName = 'moves';

export class Moves {
  private base: Ring | undefined;
  private baseFp = '';
  private progress = new Map<string, 'done' | HashCursor>();
  /** Hash intervals that have arrived for the move under way (sorted, merged), for the future ring `doneFor`. */
  private done: HashSpan[] = [];
  private doneFor = '';
  private stopped = false;
  private running: Promise<void> | undefined;
  private again = false;
  private timer: TimerHandle | undefined;
  /** Monotonic time the current future ring was first seen (the ring delay counts from it). */
  private futureSeenAt = new Map<string, number>();
  /** Foreign-key sweeps done for the current future ring (two: see cleanup). */
  private sweeps = { fp: '', done: 0, lastAtMs: 0 };
  private readonly pacer: Pacer;
  private readonly logs: LogLimiter;
  private readonly transfersBySource = new Map<string, Transfer & { rangesDone: number; rangesTotal: number }>();
  private sub: Subscription | undefined;
  keysPulled = 0;
  bytesPulled = 0;
  keysDeleted = 0;
  /** Called once this node has left (its ranges are with their next owners). */
  onLeft: (() => void) | undefined;
  /** A wiped node pulling its ranges back (start({ wiped: true })) until they have arrived. */
  bootstrapping = false;
  /** Called once a wiped node holds its ranges again. */
  onBootstrapped: (() => void) | undefined;

  constructor(
    private readonly opts: MovesOptions,
    private readonly engine: StorageEngine,
    private readonly local: LocalStore,
    private readonly transport: Transport,
    private readonly membership: Membership,
    private readonly meta: MetaStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.logs = new LogLimiter(logger, () => clock.monotonicMs());
    this.pacer = new Pacer(clock);
  }

  /**
   * Starts serving pages and moving: the base is what the metadata says, or
   * (a node from before moves were kept) the future ring as it is now, or
   * nothing for a joining node.
   */
  start(opts: { wiped?: boolean } = {}): void {
    const saved = this.load();
    if (opts.wiped) {
      // Back on an empty disk while the cluster still places this node: it holds nothing the ring
      // gives it, so it pulls every arc it replicates from the other replicas (merged), as a
      // joiner does, and counts toward no quorum until then (Replica.bootstrapping).
      this.setBase(undefined);
      this.bootstrapping = true;
      this.save();
    } else if (saved) {
      this.setBase(saved.base === null ? undefined : ringOf(saved.base));
      for (const [k, v] of Object.entries(saved.progress)) this.progress.set(k, v === 'done' ? v : { hash: BigInt(`0x${v.hash}`), key: v.key });
      this.doneFor = saved.doneFor ?? '';
      this.done = (saved.done ?? []).map((d) => {
        const [from, to] = d.split('-');
        return { fromHash: BigInt(`0x${from}`), toHash: BigInt(`0x${to}`) };
      });
    } else {
      this.setBase(this.membership.ownState().state === MemberState.Joining ? undefined : this.membership.futureRing());
      this.save();
    }
    this.sub = this.transport.subscribe(replicaSubject(this.opts.cluster, this.opts.self, ReplicaOp.Range), (m) => void this.serve(m));
    this.membership.onChange(() => this.kick());
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.running;
    await this.sub?.drain();
  }

  /** The base and its fingerprint ('' for none), kept together: the fingerprint is read on every pass and status call. */
  private setBase(base: Ring | undefined): void {
    this.base = base;
    this.baseFp = base === undefined ? '' : ringFingerprint(base);
  }

  /** True when this node holds every key the future ring gives it and no member is moving. */
  get settled(): boolean {
    const fp = this.membership.futureFingerprint();
    return this.baseFp === fp && this.everyoneSynced(fp) && this.membership.moving() === 0;
  }

  /** Pulls under way, and the last finished one of each source, for `goddb status` (which reports those under way). */
  transfers(): (Transfer & { rangesDone: number; rangesTotal: number })[] {
    return [...this.transfersBySource.values()].map((t) => ({ ...t }));
  }

  get active(): number {
    return [...this.transfersBySource.values()].filter((t) => t.state === TransferState.Running).length;
  }

  /** Runs a pass now, or once more after the one under way. */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.timer?.cancel();
    this.timer = undefined;
    this.running = this.pass()
      .catch((err: Error) => this.logs.error('moves-pass', { err: err.message }, 'range move pass failed; it runs again'))
      .finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private later(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = this.clock.setTimer(ms, () => {
      this.timer = undefined;
      this.kick();
    });
  }

  /** One step towards the future ring; schedules the next when something is left to do. */
  private async pass(): Promise<void> {
    const own = this.membership.ownState().state;
    if (isGone(own)) return;
    const future = this.membership.futureRing();
    const fp = this.membership.futureFingerprint();
    if (this.baseFp !== fp) {
      if (this.doneFor !== fp) {
        // What arrived was pulled for another future ring, perhaps from members that no longer
        // held it (a view that had not heard every member yet): only a change of the serving
        // ring (a joiner turning up) keeps it.
        this.doneFor = fp;
        this.done = [];
        this.progress.clear();
      }
      // Pull only once every live member writes for this future ring (its heartbeats say it plans
      // it), and a ring delay after that, for the writes already on their way to the old owners.
      // A wiped node need not wait: the ring did not change, every write already reaches it.
      if (!this.bootstrapping && !this.everyonePlans(fp)) return this.later(limits.moveRetryMs);
      const seen = this.futureSeenAt.get(fp) ?? this.clock.monotonicMs() - (this.bootstrapping ? this.opts.ringDelayMs : 0);
      this.futureSeenAt.set(fp, seen);
      const tasks = pullTasks({
        base: this.base,
        serving: this.membership.ring(),
        future,
        interim: this.membership.interimRing(this.opts.self),
        crowded: this.membership.moving() > 1,
        n: this.opts.replication,
        self: this.opts.self,
        isUp: (id) => this.membership.isUp(id),
        dead: (id) => this.membership.stateOf(id) === MemberState.Removing,
      });
      const wait = tasks.length === 0 ? 0 : seen + this.opts.ringDelayMs - this.clock.monotonicMs();
      if (wait > 0) return this.later(wait);
      const complete = await this.pull(tasks, fp);
      if (!complete) return this.later(limits.moveRetryMs);
      if (this.membership.futureFingerprint() !== fp) return this.kick();
      this.setBase(future);
      this.progress.clear();
      this.done = [];
      // A pull left unfinished (its source went down, or the ring changed under it) is superseded.
      for (const t of this.transfersBySource.values()) {
        if (t.state !== TransferState.Running) continue;
        const state = t.rangesDone >= t.rangesTotal ? TransferState.Done : TransferState.Superseded;
        Object.assign(t, { state, finishedMs: this.clock.nowMs(), keysTotal: t.keysSent, bytesTotal: t.bytesSent });
      }
      this.futureSeenAt.clear();
      this.save();
      if (tasks.length > 0) this.logger.info({ ring: fp, arcs: tasks.length }, 'every range this node gains has arrived');
      if (this.bootstrapping) {
        this.bootstrapping = false;
        this.logger.info('back on an empty disk, this node holds its ranges again: it counts toward quorums');
        this.onBootstrapped?.();
      }
    }
    this.membership.setOwnSynced(fp);
    this.advanceStates(fp);
    if (isGone(this.membership.ownState().state)) return; // left: what it held stays on its disk, untouched
    if (this.membership.moving() > 0 || !this.everyoneSynced(fp)) return this.later(limits.moveRetryMs);
    await this.cleanup(fp);
  }

  /** Joining -> up, leaving -> left, removing -> removed, once the facts allow. */
  private advanceStates(fp: string): void {
    const own = this.membership.ownState().state;
    if (own === MemberState.Joining) {
      this.membership.setOwnState(MemberState.Up);
      return;
    }
    if (!this.everyoneSynced(fp)) return;
    if (own === MemberState.Leaving) {
      this.membership.setOwnState(MemberState.Left);
      this.logger.info('this node has left: its ranges are with their next owners');
      this.onLeft?.();
      return;
    }
    for (const m of this.membership.members()) {
      if (m.state === MemberState.Removing) this.membership.setMemberState(m.id, MemberState.Removed);
    }
  }

  /** Every member of the future ring says it holds every key of it. */
  private everyoneSynced(fp: string): boolean {
    return this.membership.members().every((m) => !inFutureRing(m.state) || (m.id === this.opts.self ? this.baseFp === fp : m.synced === fp));
  }

  /** Every live member writes for the future ring `fp` (a member of an earlier version says nothing: not waited for). */
  private everyonePlans(fp: string): boolean {
    return this.membership.members().every((m) => m.id === this.opts.self || isGone(m.state) || m.status !== 'up' || m.plans === '' || m.plans === fp);
  }

  /**
   * Pulls every span of the tasks that has not arrived yet, from each of its
   * sources; true when all arrived. What arrived is kept as hash intervals,
   * not per arc: a ring change that cuts the arcs differently (a joiner
   * turning up while others still join) keeps what was pulled (this node
   * has been a pending owner of it since, so later writes reached it).
   */
  private async pull(tasks: readonly PullTask[], fp: string): Promise<boolean> {
    let complete = true;
    const units: { span: HashSpan; sources: readonly string[] }[] = [];
    for (const t of tasks) {
      if (t.sources.length === 0) complete = false;
      for (const span of spansOf(t.arc)) for (const rest of subtractSpans(span, this.done)) units.push({ span: rest, sources: t.sources });
    }
    const bySource = new Map<string, { total: number; done: number }>();
    for (const u of units) {
      for (const s of u.sources) {
        const f = bySource.get(s) ?? { total: 0, done: 0 };
        f.total++;
        if (this.progress.get(unitKey(u.span, s)) === 'done') f.done++;
        bySource.set(s, f);
      }
    }
    for (const [source, f] of bySource) {
      const t = this.transfersBySource.get(source);
      if (!t || t.state !== TransferState.Running) this.transfersBySource.set(source, { ...newTransfer(TransferKind.Ownership, source, this.opts.self, this.clock.nowMs()), rangesDone: f.done, rangesTotal: f.total });
      else Object.assign(t, { rangesDone: f.done, rangesTotal: f.total });
    }
    if (tasks.some((t) => t.sources.length === 0)) this.logs.warn('moves-no-source', { arcs: tasks.filter((t) => t.sources.length === 0).length }, 'some ranges this node gains have no live member to come from; waiting');
    // A few spans at once: a lost page costs a request timeout, which must not hold up the rest.
    let next = 0;
    let superseded = false;
    const worker = async (): Promise<void> => {
      while (next < units.length) {
        const unit = units[next++]!;
        let arrived = unit.sources.length > 0;
        for (const source of unit.sources) {
          if (this.stopped || this.membership.futureFingerprint() !== fp) {
            superseded = true;
            return;
          }
          const key = unitKey(unit.span, source);
          if (this.progress.get(key) === 'done') continue;
          if (!(await this.pullSpan(unit.span, source, key))) {
            arrived = false;
            complete = false;
            continue;
          }
          const t = this.transfersBySource.get(source);
          if (t) t.rangesDone++;
        }
        if (!arrived) continue;
        this.done = addSpan(this.done, unit.span);
        for (const source of unit.sources) this.progress.delete(unitKey(unit.span, source));
        this.save();
      }
    };
    await Promise.all(Array.from({ length: Math.min(limits.movePullsInflightMax, units.length) }, worker));
    if (superseded) return false;
    for (const [source, t] of this.transfersBySource) {
      if (t.state !== TransferState.Running || !bySource.has(source)) continue;
      if (t.rangesDone >= t.rangesTotal) Object.assign(t, { state: TransferState.Done, finishedMs: this.clock.nowMs(), keysTotal: t.keysSent, bytesTotal: t.bytesSent });
    }
    return complete;
  }

  /** Pulls one span from one source, page by page; false when the source failed (the cursor is kept). */
  private async pullSpan(span: HashSpan, source: string, key: string): Promise<boolean> {
    const transfer = this.transfersBySource.get(source)!;
    const kept = this.progress.get(key);
    let after: HashCursor | undefined = kept === 'done' ? undefined : kept;
    for (;;) {
      if (this.stopped) return false;
      await this.pacer.ready();
      let reply: RangeReply;
      try {
        const req = { kind: Kind.RangeRequest, from: this.opts.self, fromHash: span.fromHash, toHash: span.toHash, bytesMax: this.pageBytes(), ...(after ? { after } : {}) } as const;
        const msg = await this.transport.request(replicaSubject(this.opts.cluster, source, ReplicaOp.Range), encode(req), { timeoutMs: this.opts.requestTimeoutMs });
        reply = decode(msg.data, Kind.RangeReply);
      } catch (err) {
        this.logs.warn('moves-pull', { source, err: (err as Error).message }, 'a range page could not be pulled; it is asked again later');
        return false;
      }
      if (!inSpan(reply, span, after)) {
        this.logs.warn('moves-bad-page', { source }, 'refused a range page with keys outside what was asked');
        return false;
      }
      await this.local.putMany(reply.items);
      const bytes = reply.items.reduce((n, i) => n + itemBytes(i), 0);
      transfer.keysSent += reply.items.length;
      transfer.bytesSent += bytes;
      this.keysPulled += reply.items.length;
      this.bytesPulled += bytes;
      this.pacer.spent((bytes * 1000) / this.opts.bytesPerSecond);
      if (!reply.next) break;
      after = reply.next;
      this.progress.set(key, after);
      this.save();
    }
    this.progress.set(key, 'done');
    return true;
  }

  private pageBytes(): number {
    return Math.max(1, Math.min(limits.rangePageBytesMax, Math.floor(this.opts.bytesPerSecond / 10)));
  }

  /**
   * Answers a page of what this node holds in a hash span, in hash order:
   * at most the asked bytes (one item at least) and rangeItemsMax items;
   * `next` says where the following page starts.
   */
  private async serve(msg: InboundMessage): Promise<void> {
    let req;
    try {
      req = decode(msg.data, Kind.RangeRequest);
    } catch (err) {
      this.logs.warn('moves-bad-request', { err: (err as Error).message }, 'refused a malformed range request');
      msg.respondError(ErrorCode.BadRequest, (err as Error).message);
      return;
    }
    const bytesMax = Math.min(req.bytesMax, Math.floor(this.opts.replyBytesMax / 2));
    const items: RangeItem[] = [];
    let bytes = 0;
    let next: WireCursor | undefined;
    let lastHash = 0n;
    try {
      const opts = req.after ? { after: req.after, batchSize: limits.rangeItemsMax } : { batchSize: limits.rangeItemsMax };
      for await (const entry of this.engine.scanRange({ fromHash: req.fromHash, toHash: req.toHash }, opts)) {
        let versions: Version[];
        try {
          versions = decodeRecord(entry.record);
        } catch (err) {
          this.logs.error('moves-undecodable', { key: entry.key, err: (err as Error).message }, 'a range page skipped a stored record it cannot decode');
          continue;
        }
        const item = { key: entry.key, versions };
        const size = itemBytes(item);
        if (items.length > 0 && (items.length >= limits.rangeItemsMax || bytes + size > bytesMax)) {
          const last = items[items.length - 1]!;
          next = { hash: lastHash, key: last.key };
          break;
        }
        items.push(item);
        bytes += size;
        lastHash = entry.hash;
      }
    } catch (err) {
      this.logs.warn('moves-serve', { err: (err as Error).message }, 'a range page failed to read storage');
      msg.respondError(ErrorCode.StorageUnavailable, `range page: ${(err as Error).message}`);
      return;
    }
    const reply: RangeReply = { kind: Kind.RangeReply, items };
    if (next) reply.next = next;
    msg.respond(encode(reply));
  }

  /**
   * Deletes the keys of arcs this node replicates in neither ring: once when
   * every future owner is synced, and once more a ring delay later (a write
   * from a coordinator that had not heard of the move yet may land after the
   * first sweep).
   */
  private async cleanup(fp: string): Promise<void> {
    const sweep = this.sweeps.fp === fp ? this.sweeps : (this.sweeps = { fp, done: 0, lastAtMs: 0 });
    if (sweep.done >= 2) return;
    const wait = sweep.done === 0 ? 0 : sweep.lastAtMs + this.opts.ringDelayMs - this.clock.monotonicMs();
    if (wait > 0) return this.later(wait);
    const arcs = foreignArcs(this.membership.ring(), this.membership.futureRing(), this.opts.replication, this.opts.self);
    let deleted = 0;
    for (const arc of arcs) {
      for (const span of spansOf(arc)) {
        for await (const entry of this.engine.scanRange(span, { batchSize: limits.rangeItemsMax })) {
          if (this.stopped || this.membership.futureFingerprint() !== fp) return;
          // Through the replica (its lock; its listeners hear of it), and only if unchanged since the scan.
          if (await this.local.remove(entry.key, decodeRecordOrEmpty(entry.record))) deleted++;
        }
      }
    }
    sweep.done++;
    sweep.lastAtMs = this.clock.monotonicMs();
    if (sweep.done < 2) this.later(this.opts.ringDelayMs);
    this.keysDeleted += deleted;
    if (deleted > 0) this.logger.info({ keys: deleted, ring: fp }, 'deleted keys this node no longer replicates (their owners are synced)');
  }

  private load(): Saved | undefined {
    const text = this.meta.readText(movesMetaName);
    if (text === undefined) return undefined;
    try {
      const saved = JSON.parse(text) as Saved;
      if (saved.base !== null) ringOf(saved.base);
      return saved;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'kept move progress is unreadable; starting from the current ring');
      return undefined;
    }
  }

  private save(): void {
    const progress: Saved['progress'] = {};
    for (const [k, v] of this.progress) progress[k] = v === 'done' ? v : { hash: v.hash.toString(16).padStart(16, '0'), key: v.key };
    const base: Saved['base'] = this.base === undefined ? null : {};
    if (base) for (const t of this.base!.tokens) (base[t.nodeId] ??= []).push(t.position.toString(16).padStart(16, '0'));
    const done = this.done.map((d) => `${hex(d.fromHash)}-${hex(d.toHash)}`);
    this.meta.writeText(movesMetaName, JSON.stringify({ base, progress, done, doneFor: this.doneFor }));
  }
}

/** Every key of a page hashes into the span, in order after the cursor, and `next` is the last one: anything else is a broken or forged reply. */
function inSpan(reply: RangeReply, span: HashSpan, after: HashCursor | undefined): boolean {
  let prev = after;
  for (const item of reply.items) {
    const at = { hash: keyHash(item.key), key: item.key };
    if (at.hash < span.fromHash || at.hash > span.toHash) return false;
    if (prev && compareHashOrder(at, prev) <= 0) return false;
    prev = at;
  }
  if (!reply.next) return true;
  return prev !== undefined && reply.items.length > 0 && compareHashOrder(reply.next, prev) === 0;
}

function unitKey(span: HashSpan, source: string): string {
  return `${hex(span.fromHash)}-${hex(span.toHash)}@${source}`;
}

function hex(x: bigint): string {
  return x.toString(16).padStart(16, '0');
}

/** The parts of `span` not covered by `done` (sorted, disjoint). */
export function subtractSpans(span: HashSpan, done: readonly HashSpan[]): HashSpan[] {
  const out: HashSpan[] = [];
  let from = span.fromHash;
  for (const d of done) {
    if (d.toHash < from || d.fromHash > span.toHash) continue;
    if (d.fromHash > from) out.push({ fromHash: from, toHash: d.fromHash - 1n });
    if (d.toHash >= span.toHash) return out;
    from = d.toHash + 1n;
  }
  out.push({ fromHash: from, toHash: span.toHash });
  return out;
}

/** `done` with `span` added, kept sorted and merged. */
export function addSpan(done: readonly HashSpan[], span: HashSpan): HashSpan[] {
  const all = [...done, span].sort((a, b) => (a.fromHash < b.fromHash ? -1 : a.fromHash > b.fromHash ? 1 : 0));
  const out: HashSpan[] = [];
  for (const s of all) {
    const last = out[out.length - 1];
    if (last && s.fromHash <= last.toHash + 1n) last.toHash = s.toHash > last.toHash ? s.toHash : last.toHash;
    else out.push({ ...s });
  }
  return out;
}

function decodeRecordOrEmpty(record: Uint8Array): Version[] | undefined {
  try {
    return decodeRecord(record);
  } catch {
    return undefined; // undecodable: deleted whatever it is
  }
}

function itemBytes(i: RangeItem): number {
  return i.key.length + versionsBytes(i.versions);
}

function ringOf(base: Record<string, string[]>): Ring {
  return buildRing(Object.entries(base).map(([id, tokens]) => ({ id, virtualNodes: tokens.length, tokens: tokens.map((t) => BigInt(`0x${t}`)) })));
}
