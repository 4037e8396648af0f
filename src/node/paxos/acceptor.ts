/**
 * The acceptor's side of conditional writes (core/paxos.ts): each key's
 * promise, accepted proposal and latest commit, kept durably in a storage
 * namespace of their own (LMDB in `<dataDir>/paxos`, Redis under `god:p:`,
 * memory), so a restarted replica keeps its promises. Served on
 * `god.<cluster>.node.<id>.paxos`, and called directly when the proposer is
 * itself a replica of the key.
 *
 * A commit stores the chosen version like any replica write (merged with
 * what is there) before it records the ballot. A replica back on an empty
 * disk has lost its promises: it answers 503 until it has pulled its ranges
 * again (Replica.bootstrapping), and then refuses every ballot up to a floor
 * (`lostPromises`): each ballot it admitted before was at most its clock
 * plus the maximum skew at the time, so none lower than a promise it gave
 * can get in; proposers pass the floor once their clocks do (at most the
 * maximum skew later).
 */
import type { Logger } from 'pino';
import { ErrorCode, GodDbError, StorageError, UnavailableError } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import { commit, compareBallot, PlantedBug, prepare, propose, type Acceptance, type Ballot, type PaxosPromise, type PaxosState } from '../../core/paxos.js';
import type { Version } from '../../core/version.js';
import { decodeKindOnly, decodePaxosState, decodeVersioned, encode, encodePaxosState, Kind, type Message } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import type { StorageEngine } from '../../storage/engine.js';
import { holdsNoRecord } from '../../storage/hash_order.js';
import type { MetaStore } from '../../storage/meta.js';
import type { InboundMessage, Subscription, Transport } from '../../transport/transport.js';
import type { HybridClock } from '../clock/hybrid_clock.js';
import { LogLimiter } from '../log_limiter.js';
import { KeyLock } from '../replica/key_lock.js';
import type { Replica } from '../replica/replica.js';

/** In the node's metadata once its Paxos store held state: a store found empty after that lost it. */
export const paxosUsedMetaName = 'paxos-used';

export interface AcceptorOptions {
  /** Largest reply payload this node sends (NATS max_payload less headers). */
  replyBytesMax: number;
  /** The node's metadata: it remembers that this store held Paxos state (`lostPromises`). */
  meta?: MetaStore;
  /** Tests only (core/paxos.ts PlantedBug). */
  plantedBug?: PlantedBug;
}

export class PaxosAcceptor {
  private readonly locks = new KeyLock(limits.keyLocksMax);
  private readonly logs: LogLimiter;
  /** Prepares and proposals refused because a later ballot was promised (contention). */
  refusals = 0;
  /** Set after this node's promises were lost: ballots at or below it are refused, as if promised. */
  private floor: Ballot | undefined;
  /** True once the metadata says this store holds Paxos state (written before the first state is). */
  private marked = false;

  constructor(
    private readonly engine: StorageEngine,
    private readonly replica: Replica,
    private readonly hlc: HybridClock,
    private readonly opts: AcceptorOptions,
    logger: Logger,
  ) {
    this.logs = new LogLimiter(logger);
  }

  open(): Promise<void> {
    return this.engine.open();
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  listen(transport: Transport, cluster: string, nodeId: string): Subscription {
    return transport.subscribe(replicaSubject(cluster, nodeId, ReplicaOp.Paxos), (m) => this.serve(m).catch((err) => this.crashed(m, err)));
  }

  /**
   * Called at start: when this store holds no Paxos state though it may
   * have (the node is back on a wiped or lost store: `wiped`; or the
   * metadata says it held some: its directory was lost alone), the promises
   * it gave are gone, so from now on it refuses every ballot up to the
   * latest one it could have admitted before (its clock, or the wall clock
   * plus the maximum skew, whichever is later). True when the floor was set.
   */
  async lostPromises(wiped: boolean): Promise<boolean> {
    const held = !(await holdsNoRecord(this.engine));
    this.marked = this.opts.meta?.readText(paxosUsedMetaName)?.trim() === '1';
    if (held) {
      this.markUsed(); // a store from before the mark
      return false;
    }
    if (!wiped && !this.marked) return false;
    // Never sent: a floor refusal names no ballot (a proposer would move its clock up to it).
    this.floor = { hlc: Math.max(this.hlc.peek(), this.hlc.acceptableMax()), node: '\uffff' };
    this.logs.warn('paxos-floor', { floorHlc: this.floor.hlc }, 'this node lost its Paxos promises: it refuses every ballot up to now plus the maximum clock skew');
    return true;
  }

  /** Promises `ballot` for `key` unless a later one was promised; answers what it accepted and committed, and the key's versions. */
  async prepare(key: string, ballot: Ballot): Promise<PaxosPromise> {
    this.admit(ballot);
    return this.locks.run(key, async () => {
      const state = this.withFloor(await this.load(key));
      const r = this.opts.plantedBug === PlantedBug.AcceptAnyBallot ? { ok: true, state: { ...state, promised: ballot } } : prepare(state, ballot);
      if (r.ok) await this.save(key, r.state);
      else this.refusals++;
      const out: PaxosPromise = { promised: r.ok, versions: await this.replica.get(key) };
      if (!r.ok && state.promised && state.promised !== this.floor) out.refusedFor = state.promised;
      if (state.accepted) out.accepted = state.accepted;
      if (state.committed) out.committed = state.committed;
      if (state.recent) out.recent = state.recent;
      return out;
    }).finally(() => this.hlc.advanceTo(ballot.hlc));
  }

  /** Accepts `version` under `ballot` unless a later ballot was promised since. */
  async propose(key: string, ballot: Ballot, version: Version): Promise<Acceptance> {
    this.admit(ballot);
    this.replica.checkSkew([version]);
    return this.locks.run(key, async () => {
      const state = this.withFloor(await this.load(key));
      const r = this.opts.plantedBug === PlantedBug.AcceptAnyBallot ? { ok: true, state: { ...state, promised: ballot, accepted: { ballot, version } } } : propose(state, ballot, version);
      if (!r.ok) {
        this.refusals++;
        return state.promised && state.promised !== this.floor ? { accepted: false, refusedFor: state.promised } : { accepted: false };
      }
      await this.save(key, r.state);
      return { accepted: true };
    });
  }

  /** Stores the chosen `version` (a replica write), then records `ballot` as committed. */
  async commit(key: string, ballot: Ballot, version: Version): Promise<void> {
    this.admit(ballot);
    await this.replica.put(key, [version]);
    await this.locks.run(key, async () => {
      const state = await this.load(key);
      const next = commit(state, ballot, version);
      if (next !== state) await this.save(key, next);
    });
  }

  /** Refused while the replica is back on an empty disk (its promises are gone), or for a ballot from a clock too far ahead. */
  private admit(ballot: Ballot): void {
    if (this.replica.bootstrapping) throw new UnavailableError('back on an empty disk, this replica takes part in no conditional write until it has pulled its ranges again');
    if (!this.hlc.acceptable(ballot.hlc)) throw new GodDbError(ErrorCode.BadRequest, `ballot ${ballot.hlc} of ${ballot.node} is more than the maximum clock skew ahead of this node`);
  }

  /** The key's state as if the floor had been promised, when it is later than the key's own promise. */
  private withFloor(state: PaxosState): PaxosState {
    if (this.floor === undefined || (state.promised !== undefined && compareBallot(state.promised, this.floor) >= 0)) return state;
    return { ...state, promised: this.floor };
  }

  private async load(key: string): Promise<PaxosState> {
    const bytes = await this.engine.get(key);
    if (bytes === undefined) return {};
    try {
      return decodePaxosState(bytes);
    } catch (err) {
      // A record this node cannot read is not a promise it can keep: refuse, never guess.
      throw new StorageError(`the Paxos state of ${key} cannot be read: ${(err as Error).message}`);
    }
  }

  private save(key: string, state: PaxosState): Promise<void> {
    this.markUsed();
    return this.engine.put(key, encodePaxosState(state));
  }

  private markUsed(): void {
    if (this.marked || this.opts.meta === undefined) return;
    this.opts.meta.writeText(paxosUsedMetaName, '1');
    this.marked = true;
  }

  private async serve(msg: InboundMessage): Promise<void> {
    let req: Extract<Message, { kind: typeof Kind.PaxosPrepare | typeof Kind.PaxosPropose | typeof Kind.PaxosCommit }>;
    try {
      const kind = decodeKindOnly(msg.data);
      if (kind === Kind.PaxosPrepare) req = decodeVersioned(msg.data, Kind.PaxosPrepare).msg;
      else if (kind === Kind.PaxosPropose) req = decodeVersioned(msg.data, Kind.PaxosPropose).msg;
      else req = decodeVersioned(msg.data, Kind.PaxosCommit).msg;
    } catch (err) {
      this.logs.warn('paxos-malformed', { err: (err as Error).message }, 'refused a malformed Paxos request');
      msg.respondError(ErrorCode.BadRequest, (err as Error).message);
      return;
    }
    let reply: Message;
    try {
      switch (req.kind) {
        case Kind.PaxosPrepare:
          reply = { kind: Kind.PaxosPrepareReply, ...(await this.prepare(req.key, req.ballot)) };
          break;
        case Kind.PaxosPropose:
          reply = { kind: Kind.PaxosProposeReply, ...(await this.propose(req.key, req.ballot, req.version)) };
          break;
        case Kind.PaxosCommit:
          await this.commit(req.key, req.ballot, req.version);
          reply = { kind: Kind.PaxosCommitReply };
          break;
      }
    } catch (err) {
      const code = err instanceof GodDbError ? err.code : ErrorCode.Internal;
      if (code === ErrorCode.Internal) this.logs.error('paxos-bug', { err }, 'a Paxos request failed');
      else if (code === ErrorCode.StorageUnavailable) this.logs.error('paxos-storage', { err: (err as Error).message }, 'Paxos state storage failed');
      msg.respondError(code, err instanceof Error ? err.message : String(err));
      return;
    }
    const data = encode(reply);
    if (data.length > this.opts.replyBytesMax) {
      msg.respondError(ErrorCode.TooLarge, `Paxos reply of ${data.length} bytes is over ${this.opts.replyBytesMax}`);
      return;
    }
    msg.respond(data);
  }

  /** Last resort: a bug reached the subscription. Logged, answered 500, never thrown. */
  private crashed(msg: InboundMessage, err: unknown): void {
    this.logs.error('paxos-crash', { err }, 'Paxos request failed');
    try {
      msg.respondError(ErrorCode.Internal, 'Paxos request failed');
    } catch {
      // the requester times out
    }
  }
}
