/**
 * The proposer's side of conditional writes and serial reads (core/paxos.ts
 * has the rules; the acceptors are the key's replicas, node/paxos/acceptor.ts).
 *
 * A conditional write costs three round trips to the replicas when nothing
 * competes (prepare with the read folded in, propose, commit) and three
 * synced writes on each (promise, acceptance, commit); a serial read one
 * round trip and one synced write (the promise). Competing proposers are
 * refused by a later ballot and try again after a random pause, within
 * twice the request timeout.
 *
 * What the client hears is exact: 200 when the version was committed on a
 * majority; 409 when the condition did not hold (nothing was written); 503
 * when no round could be won and nothing of this write was accepted anywhere
 * (it can never take effect); 504 when it was accepted somewhere but not
 * known to be committed on a majority (it may yet take effect: a later
 * round that finds it finishes it).
 */
import type { Clock } from '../../core/clock.js';
import { ClockSkewError, ConditionFailedError, ErrorCode, GodDbError, QuorumNotMetError, TimeoutError, UnavailableError } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { commit, compareBallot, committedIn, conditionHolds, PlantedBug, recentCommitsMax, unfinished, type Ballot, type Condition, type PaxosPromise } from '../../core/paxos.js';
import type { Placement } from '../../core/placement.js';
import { compare, Order, type VClock } from '../../core/vclock.js';
import { contextOf, newVersion, reconcile, union, visibleValue, type ConflictPolicy, type Version } from '../../core/version.js';
import { decode, encode, encodeContext, Kind, type Message } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import { replyError, type Transport } from '../../transport/transport.js';
import type { HybridClock } from '../clock/hybrid_clock.js';
import { fanOut, FanOutOutcome, type FanOutResult } from '../coordinator/fan_out.js';
import type { PaxosAcceptor } from './acceptor.js';
import { KeyLock } from '../replica/key_lock.js';

export interface ProposerOptions {
  self: string;
  cluster: string;
  requestTimeoutMs: number;
  conflictPolicy: ConflictPolicy;
  /** The protocol version a node speaks; conditional writes need 2 on every replica. */
  protocolOf: (node: string) => number;
  /** Pauses between contended rounds (default Math.random; simulations pass a seeded one). */
  random?: () => number;
  /** Tests only (core/paxos.ts PlantedBug). */
  plantedBug?: PlantedBug;
}

/** An acceptor refused a ballot: it promised `ballot` (a later one). */
class RefusedError extends GodDbError {
  constructor(readonly ballot: Ballot | undefined) {
    super(ErrorCode.ConditionFailed, 'refused: a later ballot was promised');
  }
}

export interface ConditionalResult {
  acks: number;
  asked: number;
  /** The version committed (the change feed announces it). */
  version: Version;
}

export interface SerialRead {
  versions: Version[];
  nowHlc: number;
  /** Promises received, of the replicas asked. */
  acks: number;
  asked: number;
}

/** A round of prepares that a majority promised: their answers, and the replicas asked. */
interface Promised {
  ballot: Ballot;
  promises: PaxosPromise[];
  targets: string[];
  majority: number;
}

export class PaxosProposer {
  /** Rounds lost to a competing ballot (each followed by a pause and a new round). */
  contended = 0;
  /** Proposals found unfinished and completed before this proposer's own. */
  finished = 0;
  /**
   * Conditional operations on one key coordinated here take turns: two
   * rounds of this node would only refuse each other's ballots. (With the
   * SDK's direct routing every client's operations on a key come to its
   * first replica, so contention on a key is then mostly gone.)
   */
  private readonly turns = new KeyLock(limits.keyLocksMax);

  constructor(
    private readonly opts: ProposerOptions,
    private readonly transport: Transport,
    private readonly local: PaxosAcceptor,
    private readonly placementOf: (key: string) => Placement,
    private readonly clock: Clock,
    private readonly hlc: HybridClock,
  ) {}

  /**
   * Writes `value` (a tombstone when null, with `ttlSeconds` when given)
   * if `condition` holds for the key's current versions, linearizably with
   * every other conditional write and serial read of the key.
   *
   * A proposal that some replicas accepted and others refused (a competing
   * ballot came between) may still be chosen later; it stays in `mine`,
   * and the next rounds learn its fate: found unfinished, it is finished
   * (the write succeeds); found committed on a replica under the ballot it
   * was accepted with, it succeeded; a later proposal of this write chosen
   * on a majority supersedes it. While one is pending, a condition that no
   * longer holds is not a 409 (it may fail because of that very proposal)
   * but a 504, outcome unknown.
   */
  async write(key: string, condition: Condition, value: Uint8Array | null, ttlSeconds?: number): Promise<ConditionalResult> {
    return this.turns.run(key, () => this.writeNow(key, condition, value, ttlSeconds));
  }

  private async writeNow(key: string, condition: Condition, value: Uint8Array | null, ttlSeconds?: number): Promise<ConditionalResult> {
    const deadline = this.clock.monotonicMs() + 2 * this.opts.requestTimeoutMs;
    const mine: Version[] = [];
    /** The latest ballot a proposal of `mine` went out under. */
    let mineBallot: Ballot | undefined;
    const unknown = (why: string) => new TimeoutError(`conditional write of ${key}: ${why}; it may yet take effect`);
    try {
      for (let attempt = 1; ; attempt++) {
        const round = await this.promised(key, deadline, attempt, mine);
        if (round === undefined) continue;
        if ('tookEffect' in round) return round.tookEffect;
        if (mineBallot !== undefined && noneChosen(round.promises, mineBallot)) mine.length = 0;
        const current = this.current(round.promises);
        const nowHlc = this.hlc.now();
        const context = contextOf(current);
        if (!conditionHolds(condition, current, context, nowHlc)) {
          if (mine.length > 0) throw unknown('an earlier proposal of it was accepted by some replicas, and the condition no longer holds');
          const live = visibleValue(current, nowHlc) !== undefined;
          const why = 'ifAbsent' in condition ? `${key} has a value` : live ? `the current version of ${key} is not the one given` : `${key} has no value`;
          throw new ConditionFailedError(`condition failed: ${why}`, live ? encodeContext(context) : undefined);
        }
        // A create that holds again over a deleted or expired version cannot tell whether a pending
        // proposal of its own was chosen and then deleted: it would take effect twice. (A match that
        // holds again can tell: any commit since the read would have changed the context.)
        if (mine.length > 0 && 'ifAbsent' in condition && current.length > 0) throw unknown('an earlier proposal of it was accepted by some replicas');
        const version = this.newVersion(value, context, ttlSeconds);
        const proposed = await this.propose(key, round, version, deadline);
        if (proposed !== Proposed.Accepted) {
          // Refused by all: it can never be chosen. Accepted by some: it may; the next rounds find out.
          if (proposed === Proposed.Unknown) {
            mine.push(version);
            mineBallot = round.ballot;
          }
          await this.pause(attempt, deadline, key);
          continue;
        }
        // Chosen: no earlier proposal of this write can be chosen after it.
        mine.length = 0;
        const acks = await this.commit(key, round, version, deadline);
        if (acks < round.majority) throw new TimeoutError(`conditional write of ${key}: chosen, but committed on ${acks} of ${round.targets.length} replicas before the deadline (a majority is ${round.majority}); it takes effect`);
        return { acks, asked: round.targets.length, version };
      }
    } catch (err) {
      // Out of time with a proposal pending: not "nothing was written".
      if (mine.length > 0 && err instanceof UnavailableError) throw unknown('out of time while a proposal of it was accepted by some replicas');
      throw err;
    }
  }

  /** The key's versions as a majority holds them, after finishing any proposal that may have been chosen. */
  async read(key: string): Promise<SerialRead> {
    return this.turns.run(key, () => this.readNow(key));
  }

  private async readNow(key: string): Promise<SerialRead> {
    const deadline = this.clock.monotonicMs() + 2 * this.opts.requestTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const round = await this.promised(key, deadline, attempt, []);
      if (round === undefined || 'tookEffect' in round) continue;
      const versions = reconcile([this.current(round.promises)], this.opts.conflictPolicy, limits.siblingsMax);
      return { versions, nowHlc: this.hlc.now(), acks: round.promises.length, asked: round.targets.length };
    }
  }

  /**
   * One prepare round: a majority's promises with nothing unfinished; or
   * `tookEffect` when it shows that one of `mine` was chosen (it is
   * finished here if need be); or undefined when the round must start over
   * (refused, or an unfinished proposal was just finished or failed to be).
   */
  private async promised(key: string, deadline: number, attempt: number, mine: readonly Version[]): Promise<Promised | { tookEffect: ConditionalResult } | undefined> {
    const { targets, majority } = this.acceptors(key);
    const ballot: Ballot = { hlc: this.hlc.now(), node: this.opts.self };
    const r = await this.fan(key, targets, majority, deadline, (node) => this.prepareOn(node, key, ballot));
    if (r.outcome !== FanOutOutcome.Won) {
      this.passRefusals(r);
      await this.pause(attempt, deadline, key);
      return undefined;
    }
    const promises = [...r.ok.values()];
    const round = { ballot, promises, targets, majority };
    // Finished by another proposer and committed (perhaps replaced since): the write took effect.
    const done = mine.find((v) => committedIn(promises, v));
    if (done !== undefined) return { tookEffect: { acks: promises.filter((p) => committedIn([p], done)).length, asked: targets.length, version: done } };
    const open = this.opts.plantedBug === PlantedBug.IgnoreUnfinished ? undefined : unfinished(promises);
    if (open === undefined) {
      // The latest commit among them goes to every one of them that lacks it before anything new is
      // proposed (Cassandra's commit repair): a commit that reached only some replicas is then on a
      // majority, so a proposer whose proposal it was finds it in their recent commits.
      const latest = latestCommitted(promises);
      const behind = latest === undefined ? [] : [...r.ok].filter(([, p]) => p.committed === undefined || compareBallot(p.committed, latest.ballot) < 0);
      if (latest !== undefined && behind.length > 0) {
        const repaired = await Promise.allSettled(behind.map(([node]) => this.commitOn(node, key, latest.ballot, latest.version)));
        if (repaired.some((x) => x.status === 'rejected')) {
          await this.pause(attempt, deadline, key);
          return undefined;
        }
        for (const [, p] of behind) {
          const after = commit({ ...(p.committed ? { committed: p.committed } : {}), ...(p.recent ? { recent: p.recent } : {}) }, latest.ballot, latest.version);
          p.committed = after.committed;
          if (after.recent) p.recent = after.recent;
        }
      }
      return round;
    }
    // A proposal accepted after the latest commit may have been chosen: finish it under this ballot first.
    this.finished++;
    const proposed = await this.propose(key, round, open.version, deadline);
    if (proposed === Proposed.Accepted) {
      const acks = await this.commit(key, round, open.version, deadline);
      if (isOneOf(open.version, mine)) {
        if (acks < majority) throw new TimeoutError(`conditional write of ${key}: chosen, but committed on ${acks} of ${targets.length} replicas before the deadline (a majority is ${majority}); it takes effect`);
        return { tookEffect: { acks, asked: targets.length, version: open.version } };
      }
    } else await this.pause(attempt, deadline, key);
    return undefined;
  }

  /** Union of the versions a majority returned (every committed version is among them). */
  private current(promises: readonly PaxosPromise[]): Version[] {
    const versions = union(promises.map((p) => p.versions), Number.MAX_SAFE_INTEGER);
    for (const v of versions) this.hlc.advanceTo(v.hlc);
    return versions;
  }

  private async propose(key: string, round: Promised, version: Version, deadline: number): Promise<Proposed> {
    const { quorum, all } = fanOut(round.targets, { needed: round.majority, timeoutMs: this.remaining(deadline, key) }, this.clock, (node) => this.proposeOn(node, key, round.ballot, version));
    const r = await quorum;
    if (r.outcome === FanOutOutcome.Won) return Proposed.Accepted;
    // Only a proposal every replica refused can never be chosen later.
    const every = await all;
    const refusedByAll = every.ok.size === 0 && every.failed.size === round.targets.length && [...every.failed.values()].every((e) => e instanceof RefusedError);
    if (refusedByAll) {
      this.passRefusals(every);
      return Proposed.Refused;
    }
    return Proposed.Unknown;
  }

  /** Commits on every replica asked; resolves how many acknowledged within the deadline. */
  private async commit(key: string, round: Promised, version: Version, deadline: number): Promise<number> {
    const r = await this.fan(key, round.targets, round.majority, deadline, (node) => this.commitOn(node, key, round.ballot, version));
    return r.tally.succeeded;
  }

  /** The key's replicas that are up, all of which must speak Paxos, and how many make a majority of its replicas. */
  private acceptors(key: string): { targets: string[]; majority: number } {
    const p = this.placementOf(key);
    if (p.pending.length > 0) throw new UnavailableError(`the range of ${key} is moving: conditional writes and serial reads wait until it has moved`);
    const majority = Math.floor(p.replicas.length / 2) + 1;
    const targets = p.replicas.filter((r) => r.up).map((r) => r.node);
    if (targets.length < majority) throw new QuorumNotMetError(`quorum not reached: ${targets.length} of ${p.replicas.length} replicas of ${key} up, a majority (${majority}) needed`, 0, majority);
    const old = targets.find((n) => n !== this.opts.self && this.opts.protocolOf(n) < 2);
    if (old !== undefined) throw new UnavailableError(`replica ${old} speaks an older protocol without conditional writes`);
    const self = targets.indexOf(this.opts.self);
    if (self > 0) targets.unshift(...targets.splice(self, 1));
    return { targets, majority };
  }

  private async fan<T>(key: string, targets: string[], needed: number, deadline: number, call: (node: string) => Promise<T>): Promise<FanOutResult<T>> {
    const { quorum } = fanOut(targets, { needed, timeoutMs: this.remaining(deadline, key) }, this.clock, call);
    return quorum;
  }

  /** Moves this node's clock past the ballots that refused it, so its next ballot is later. */
  private passRefusals(r: FanOutResult<unknown>): void {
    for (const err of r.failed.values()) {
      if (!(err instanceof RefusedError) || err.ballot === undefined) continue;
      try {
        this.hlc.observe(err.ballot.hlc, 'a competing ballot');
      } catch (e) {
        if (!(e instanceof ClockSkewError)) throw e;
      }
    }
  }

  /** A random pause before the next round (longer as attempts go on); 503 once the deadline has passed. */
  private async pause(attempt: number, deadline: number, key: string): Promise<void> {
    this.contended++;
    const ms = Math.floor((this.opts.random ?? Math.random)() * Math.min(limits.paxosBackoffMsMax, 5 * attempt));
    if (this.clock.monotonicMs() + ms >= deadline) throw this.outOfTime(key);
    await new Promise<void>((resolve) => this.clock.setTimer(ms, resolve));
  }

  /** Ms left before the deadline; 503 once none (nothing of this write was accepted, or it would be 504 already). */
  private remaining(deadline: number, key: string): number {
    const left = deadline - this.clock.monotonicMs();
    if (left <= 0) throw this.outOfTime(key);
    return Math.min(left, this.opts.requestTimeoutMs);
  }

  private outOfTime(key: string): UnavailableError {
    return new UnavailableError(`conditional operation on ${key} contended: no round won within ${2 * this.opts.requestTimeoutMs} ms; nothing was written`);
  }

  private newVersion(value: Uint8Array | null, context: VClock, ttlSeconds: number | undefined): Version {
    return newVersion(this.opts.self, this.hlc.now(), value, context, ttlSeconds, this.opts.conflictPolicy);
  }

  private async prepareOn(node: string, key: string, ballot: Ballot): Promise<PaxosPromise> {
    const p = node === this.opts.self ? await this.local.prepare(key, ballot) : await this.ask(node, { kind: Kind.PaxosPrepare, key, ballot }, Kind.PaxosPrepareReply);
    if (!p.promised) throw new RefusedError(p.refusedFor);
    return p;
  }

  private async proposeOn(node: string, key: string, ballot: Ballot, version: Version): Promise<void> {
    const a = node === this.opts.self ? await this.local.propose(key, ballot, version) : await this.ask(node, { kind: Kind.PaxosPropose, key, ballot, version }, Kind.PaxosProposeReply);
    if (!a.accepted) throw new RefusedError(a.refusedFor);
  }

  private async commitOn(node: string, key: string, ballot: Ballot, version: Version): Promise<void> {
    if (node === this.opts.self) return this.local.commit(key, ballot, version);
    await this.ask(node, { kind: Kind.PaxosCommit, key, ballot, version }, Kind.PaxosCommitReply);
  }

  private async ask<K extends typeof Kind.PaxosPrepareReply | typeof Kind.PaxosProposeReply | typeof Kind.PaxosCommitReply>(node: string, msg: Message, expected: K): Promise<Extract<Message, { kind: K }>> {
    const reply = await this.transport.request(replicaSubject(this.opts.cluster, node, ReplicaOp.Paxos), encode(msg), { timeoutMs: this.opts.requestTimeoutMs });
    const refused = replyError(reply);
    if (refused) throw refused;
    return decode(reply.data, expected);
  }
}

/**
 * The latest commit the promises know and its version: from a promise that
 * accepted under the very ballot it committed last (one value per ballot).
 */
function latestCommitted(promises: readonly PaxosPromise[]): { ballot: Ballot; version: Version } | undefined {
  let latest: Ballot | undefined;
  for (const p of promises) if (p.committed && (!latest || compareBallot(p.committed, latest) > 0)) latest = p.committed;
  if (latest === undefined) return undefined;
  const holder = promises.find((p) => p.accepted && compareBallot(p.accepted.ballot, latest) === 0);
  return holder?.accepted;
}

/**
 * True when no proposal this proposer made under `ballot` or before can
 * have been chosen or be chosen later: a later commit is known to this
 * majority (whatever a later round does, a proposal accepted before it is
 * no longer unfinished), and none of them remembers committing one of them
 * (checked by the caller), while every recent list reaches back past
 * `ballot` (a commit of one of them would be there, under `ballot` or a
 * later one: commit repair puts every commit on a majority before the next
 * proposal, and majorities meet).
 */
function noneChosen(promises: readonly PaxosPromise[], ballot: Ballot): boolean {
  const later = promises.some((p) => p.committed !== undefined && compareBallot(p.committed, ballot) > 0);
  const reachesBack = (p: PaxosPromise) => p.recent === undefined || p.recent.length < recentCommitsMax || compareBallot(p.recent[0]!.ballot, ballot) < 0;
  return later && promises.every(reachesBack);
}

/** The same version: same writer, timestamp and clock (a proposal of this write, not a later one). */
function isOneOf(v: Version, mine: readonly Version[]): boolean {
  return mine.some((m) => m.writer === v.writer && m.hlc === v.hlc && compare(m.clock, v.clock) === Order.Equal);
}

const Proposed = { Accepted: 'accepted', Refused: 'refused', Unknown: 'unknown' } as const;
type Proposed = (typeof Proposed)[keyof typeof Proposed];
