/**
 * What `goddb leave` and `goddb remove` ask of a node (issue 9), behind the
 * client API's `kv.leave.<id>` and `kv.remove.<id>` (node/api/client_api.ts
 * AdminHooks). Any node of the queue group may receive them:
 * - leave: a live member starts leaving; another node forwards the request
 *   to it on its own subject, since only the member itself hands its ranges
 *   over and says when it is done;
 * - remove: a down member is marked removing by this node; the survivors
 *   stream its ranges to their next owners, and any node then marks it
 *   removed (node/handoff/moves.ts).
 * Refused with a reason: an unknown member (404), a move that would leave
 * fewer members than N, a remove of a live member or of this node, a leave
 * of a member that is down (nothing answers on its subject) or still
 * joining, a leave or a removal while another member is moving (409: as
 * Cassandra's consistent range movement, a leave does not overlap other
 * moves; joins may overlap each other).
 */
import type { Logger } from 'pino';
import { ConflictError, ErrorCode, NotFoundError, UnavailableError } from '../../core/errors.js';
import { inFutureRing, isGone, MemberState } from '../../core/membership.js';
import { decode, encode, Kind } from '../../protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../protocol/subjects.js';
import { NoRespondersError, type InboundMessage, type Reply, type Subscription, type Transport } from '../../transport/transport.js';
import type { AdminHooks } from '../api/client_api.js';
import type { Membership } from './membership.js';

export interface AdminOptions {
  self: string;
  cluster: string;
  replication: number;
  requestTimeoutMs: number;
}

export class MemberAdmin implements AdminHooks {
  constructor(
    private readonly opts: AdminOptions,
    private readonly membership: Membership,
    private readonly transport: Transport,
    private readonly logger: Logger,
  ) {}

  /** Serves leave requests forwarded by other nodes, on this node's own subject. */
  listen(): Subscription {
    return this.transport.subscribe(replicaSubject(this.opts.cluster, this.opts.self, ReplicaOp.Leave), (m) => this.onLeave(m));
  }

  async leave(nodeId: string): Promise<{ node: string; state: string }> {
    if (nodeId === this.opts.self) return { node: nodeId, state: this.leaveSelf() };
    const state = this.membership.stateOf(nodeId);
    if (state === undefined) throw new NotFoundError(`${nodeId} is not a member of cluster ${this.opts.cluster}`);
    if (isGone(state)) return { node: nodeId, state };
    // Asked even when this node's failure detector sees it down: that is one node's guess, wrong
    // for a moment when heartbeats are lost, and the member itself knows. Nothing subscribed on
    // its subject means its process is gone; a timeout is answered as one (504: ask again).
    let reply: Reply;
    try {
      reply = await this.transport.request(replicaSubject(this.opts.cluster, nodeId, ReplicaOp.Leave), encode({ kind: Kind.Probe, from: this.opts.self }), { timeoutMs: this.opts.requestTimeoutMs });
    } catch (err) {
      if (err instanceof NoRespondersError) throw new ConflictError(`${nodeId} is down (nothing answers on its subject): a down member cannot hand its ranges over; use goddb remove ${nodeId}`);
      throw err;
    }
    const answer = decode(reply.data, Kind.ProbeReply);
    return { node: nodeId, state: answer.state ?? MemberState.Up };
  }

  async remove(nodeId: string): Promise<{ node: string; state: string }> {
    if (nodeId === this.opts.self) throw new ConflictError(`${nodeId} answered this request itself, so it is alive: use goddb leave ${nodeId}`);
    const state = this.membership.stateOf(nodeId);
    if (state === undefined) throw new NotFoundError(`${nodeId} is not a member of cluster ${this.opts.cluster}`);
    if (isGone(state) || state === MemberState.Removing) return { node: nodeId, state };
    if (this.membership.isUp(nodeId)) throw new ConflictError(`${nodeId} is up: only a down member can be removed; use goddb leave ${nodeId} to take a live one out`);
    if (state !== MemberState.Joining) this.checkNothingElseMoving(nodeId);
    if (state === MemberState.Joining) {
      // It never held a range: nothing to stream.
      this.membership.setMemberState(nodeId, MemberState.Removed);
      return { node: nodeId, state: MemberState.Removed };
    }
    this.checkEnoughLeft(nodeId);
    this.membership.setMemberState(nodeId, MemberState.Removing);
    this.logger.warn({ member: nodeId }, 'removing a down member: its ranges are streamed from the surviving replicas');
    return { node: nodeId, state: MemberState.Removing };
  }

  private leaveSelf(): string {
    const { state } = this.membership.ownState();
    if (state === MemberState.Leaving || isGone(state)) return state;
    if (state === MemberState.Joining) throw new ConflictError(`${this.opts.self} is still joining: let it finish, then ask it to leave`);
    if (state === MemberState.Removing) throw new ConflictError(`${this.opts.self} is being removed`);
    this.checkNothingElseMoving(this.opts.self);
    this.checkEnoughLeft(this.opts.self);
    this.membership.setOwnState(MemberState.Leaving);
    return MemberState.Leaving;
  }

  /** A leave or a removal waits until no other member joins, leaves or is removed. */
  private checkNothingElseMoving(going: string): void {
    const others = this.membership.members().filter((m) => m.id !== going && (m.state === MemberState.Joining || m.state === MemberState.Leaving || m.state === MemberState.Removing));
    if (others.length > 0) {
      throw new ConflictError(`${going} cannot go while ${others.map((m) => `${m.id} is ${m.state}`).join(', ')}: one leave or removal at a time, and not during a join; try again once goddb status says settled`);
    }
  }

  /** A move that would leave fewer members than N would leave keys with fewer than N replicas. */
  private checkEnoughLeft(going: string): void {
    const staying = this.membership.members().filter((m) => m.id !== going && inFutureRing(m.state)).length;
    if (staying < this.opts.replication) {
      throw new ConflictError(`${going} cannot go: ${staying} members would be left, fewer than the replication factor N=${this.opts.replication}`);
    }
  }

  private onLeave(msg: InboundMessage): void {
    try {
      decode(msg.data, Kind.Probe);
      const state = this.leaveSelf();
      const me = this.membership.ownState();
      msg.respond(encode({ kind: Kind.ProbeReply, id: this.opts.self, incarnation: 'leave', virtualNodes: 1, heartbeat: 0, state: state as MemberState, stateVersion: me.stateVersion }));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      msg.respondError(typeof code === 'number' ? code : ErrorCode.BadRequest, (err as Error).message);
    }
  }
}

export { UnavailableError };
