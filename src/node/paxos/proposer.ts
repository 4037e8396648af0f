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
import { afterSeconds } from '../../core/hlc.js';
import { limits } from '../../core/limits.js';
import { conditionHolds, unfinished, type Ballot, type Condition, type PaxosPromise } from '../../core/paxos.js';
import type { Placement } from '../../core/placement.js';
import { advance, counterOf, type VClock } from '../../core/vclock.js';
import { contextOf, reconcile, union, visibleValue, type ConflictPolicy, type Version } from '../../core/version.js';
import { decode, encode, Kind, type Message } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import { replyError, type Transport } from '../../transport/transport.js';
import type { HybridClock } from '../clock/hybrid_clock.js';
import { fanOut, FanOutOutcome, type FanOutResult } from '../coordinator/fan_out.js';
import type { PaxosAcceptor } from './acceptor.js';

export interface ProposerOptions {
  self: string;
  cluster: string;
  requestTimeoutMs: number;
  conflictPolicy: ConflictPolicy;
  /** The protocol version a node speaks; conditional writes need 2 on every replica. */
  protocolOf: (node: string) => number;
  /** Pauses between contended rounds (default Math.random; simulations pass a seeded one). */
  random?: () => number;
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
   */
  async write(key: string, condition: Condition, value: Uint8Array | null, ttlSeconds?: number): Promise<ConditionalResult> {
    const deadline = this.clock.monotonicMs() + 2 * this.opts.requestTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const round = await this.promised(key, deadline, attempt);
      if (round === undefined) continue;
      const current = this.current(round.promises);
      const nowHlc = this.hlc.now();
      const context = contextOf(current);
      if (!conditionHolds(condition, current, context, nowHlc)) {
        const live = visibleValue(current, nowHlc) !== undefined;
        const why = 'ifAbsent' in condition ? `${key} has a value` : live ? `the current version of ${key} is not the one given` : `${key} has no value`;
        throw new ConditionFailedError(`condition failed: ${why}`, live ? context : undefined);
      }
      const version = this.newVersion(value, context, ttlSeconds);
      const proposed = await this.propose(key, round, version, deadline);
      if (proposed === Proposed.Refused) {
        await this.pause(attempt, deadline, key);
        continue;
      }
      if (proposed === Proposed.Unknown) throw new TimeoutError(`conditional write of ${key}: accepted by fewer than a majority of its replicas before the deadline; it may yet take effect`);
      const acks = await this.commit(key, round, version, deadline);
      if (acks < round.majority) throw new TimeoutError(`conditional write of ${key}: chosen, but committed on ${acks} of ${round.targets.length} replicas before the deadline (a majority is ${round.majority}); it takes effect`);
      return { acks, asked: round.targets.length };
    }
  }

  /** The key's versions as a majority holds them, after finishing any proposal that may have been chosen. */
  async read(key: string): Promise<SerialRead> {
    const deadline = this.clock.monotonicMs() + 2 * this.opts.requestTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const round = await this.promised(key, deadline, attempt);
      if (round === undefined) continue;
      const versions = reconcile([this.current(round.promises)], this.opts.conflictPolicy, limits.siblingsMax);
      return { versions, nowHlc: this.hlc.now(), acks: round.promises.length, asked: round.targets.length };
    }
  }

  /**
   * One prepare round: a majority's promises with nothing unfinished, or
   * undefined when the round must start over (refused, or an unfinished
   * proposal was just finished).
   */
  private async promised(key: string, deadline: number, attempt: number): Promise<Promised | undefined> {
    const { targets, majority } = this.acceptors(key);
    const ballot: Ballot = { hlc: this.hlc.now(), node: this.opts.self };
    const r = await this.fan(targets, majority, deadline, (node) => this.prepareOn(node, key, ballot));
    if (r.outcome !== FanOutOutcome.Won) {
      this.passRefusals(r, key, deadline);
      await this.pause(attempt, deadline, key);
      return undefined;
    }
    const promises = [...r.ok.values()];
    const open = unfinished(promises);
    if (open === undefined) return { ballot, promises, targets, majority };
    // A proposal accepted after the latest commit may have been chosen: finish it under this ballot first.
    this.finished++;
    const round = { ballot, promises, targets, majority };
    const proposed = await this.propose(key, round, open.version, deadline);
    if (proposed === Proposed.Accepted) await this.commit(key, round, open.version, deadline);
    else await this.pause(attempt, deadline, key);
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
      this.passRefusals(every, key, deadline);
      return Proposed.Refused;
    }
    return Proposed.Unknown;
  }

  /** Commits on every replica asked; resolves how many acknowledged within the deadline. */
  private async commit(key: string, round: Promised, version: Version, deadline: number): Promise<number> {
    const r = await this.fan(round.targets, round.majority, deadline, (node) => this.commitOn(node, key, round.ballot, version));
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

  private async fan<T>(targets: string[], needed: number, deadline: number, call: (node: string) => Promise<T>): Promise<FanOutResult<T>> {
    const { quorum } = fanOut(targets, { needed, timeoutMs: this.remaining(deadline) }, this.clock, call);
    return quorum;
  }

  /** Moves this node's clock past the ballots that refused it, so its next ballot is later. */
  private passRefusals(r: FanOutResult<unknown>, key: string, deadline: number): void {
    for (const err of r.failed.values()) {
      if (!(err instanceof RefusedError) || err.ballot === undefined) continue;
      try {
        this.hlc.observe(err.ballot.hlc, 'a competing ballot');
      } catch (e) {
        if (!(e instanceof ClockSkewError)) throw e;
      }
    }
    this.remaining(deadline, key);
  }

  /** A random pause before the next round (longer as attempts go on); 503 once the deadline has passed. */
  private async pause(attempt: number, deadline: number, key: string): Promise<void> {
    this.contended++;
    const ms = Math.floor((this.opts.random ?? Math.random)() * Math.min(limits.paxosBackoffMsMax, 5 * attempt));
    if (this.clock.monotonicMs() + ms >= deadline) this.remaining(deadline - ms, key);
    await new Promise<void>((resolve) => this.clock.setTimer(ms, resolve));
  }

  /** Ms left before the deadline; 503 once none (nothing of this write was accepted, or it would be 504 already). */
  private remaining(deadline: number, key?: string): number {
    const left = deadline - this.clock.monotonicMs();
    if (left <= 0) throw new UnavailableError(`conditional operation${key === undefined ? '' : ` on ${key}`} contended: no round won within ${2 * this.opts.requestTimeoutMs} ms; nothing was written`);
    return Math.min(left, this.opts.requestTimeoutMs);
  }

  private newVersion(value: Uint8Array | null, context: VClock, ttlSeconds: number | undefined): Version {
    const now = this.hlc.now();
    if (now <= counterOf(context, this.opts.self)) throw new Error('assertion: the context was observed before the version was made');
    const version: Version = {
      clock: advance(context, this.opts.self, now, limits.vclockEntriesMax),
      hlc: now,
      writer: this.opts.self,
      tombstone: value === null,
      value: value ?? new Uint8Array(0),
    };
    if (ttlSeconds !== undefined && value !== null) version.expiresHlc = afterSeconds(now, ttlSeconds);
    return version;
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

const Proposed = { Accepted: 'accepted', Refused: 'refused', Unknown: 'unknown' } as const;
type Proposed = (typeof Proposed)[keyof typeof Proposed];
