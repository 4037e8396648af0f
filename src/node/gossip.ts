/**
 * Membership, first version: each node publishes a heartbeat on the gossip
 * subject every interval, and answers a newcomer's hello with one at once so
 * that a starting node learns the cluster within one round trip. Every node
 * builds the ring from the members it has heard of; the failure detector
 * (core/membership.ts) marks silent ones down without taking them off the
 * ring. Full gossip with join/leave and data movement comes later.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.js';
import { limits } from '../core/limits.js';
import { applyHeartbeat, MemberStatus, ringChanged, statusOf, type MemberView } from '../core/membership.js';
import { buildRing, type Ring } from '../core/ring.js';
import { decode, encode, Kind, type Heartbeat } from '../protocol/codec.js';
import { gossipSubject } from '../protocol/subjects.js';
import type { Subscription, Transport } from '../transport/transport.js';

export interface GossipOptions {
  self: string;
  cluster: string;
  virtualNodes: number;
  enabled: boolean;
  intervalMs: number;
  failureTimeoutMs: number;
  /** Members assumed when gossip is off (each with this node's vnode count). */
  peers: readonly string[];
}

export class Membership {
  private view: MemberView;
  private currentRing: Ring;
  private heartbeat = 0;
  private timer: TimerHandle | undefined;
  private sub: Subscription | undefined;
  private readonly lastStatus = new Map<string, MemberStatus>();
  private readonly changeListeners: (() => void)[] = [];
  private readonly incarnation = randomUUID();
  /** Set when another process heartbeats with this node's id. */
  duplicateOf: string | undefined;

  constructor(
    private readonly opts: GossipOptions,
    private readonly transport: Transport,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    let view: MemberView = new Map();
    const now = clock.nowMs();
    const initial = opts.enabled ? [opts.self] : [opts.self, ...opts.peers];
    for (const id of initial) view = applyHeartbeat(view, { id, virtualNodes: opts.virtualNodes, heartbeat: 0 }, now, limits.membersMax);
    this.view = view;
    this.currentRing = buildRing([...view.values()]);
  }

  start(): void {
    if (!this.opts.enabled) return;
    this.sub = this.transport.subscribe(gossipSubject(this.opts.cluster), (m) => this.onMessage(m.data));
    this.beat(true);
    this.schedule();
  }

  stop(): void {
    this.timer?.cancel();
    this.sub?.unsubscribe();
  }

  ring(): Ring {
    return this.currentRing;
  }

  isUp(id: string): boolean {
    const m = this.view.get(id);
    if (!m) return false;
    if (!this.opts.enabled) return true;
    return statusOf(m, this.opts.self, this.clock.nowMs(), this.opts.failureTimeoutMs) === MemberStatus.Up;
  }

  members(): { id: string; virtualNodes: number; status: MemberStatus }[] {
    return [...this.view.values()]
      .map((m) => ({ id: m.id, virtualNodes: m.virtualNodes, status: this.isUp(m.id) ? MemberStatus.Up : MemberStatus.Down }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  has(id: string): boolean {
    return this.view.has(id);
  }

  onChange(fn: () => void): void {
    this.changeListeners.push(fn);
  }

  private schedule(): void {
    this.timer = this.clock.setTimer(this.opts.intervalMs, () => {
      this.beat(false);
      this.logTransitions();
      this.schedule();
    });
  }

  private beat(hello: boolean): void {
    // Counters start from the wall clock so a restarted node's heartbeats are news at once.
    this.heartbeat = Math.max(this.heartbeat + 1, Math.floor(this.clock.nowMs()));
    const hb: Heartbeat = { kind: Kind.Heartbeat, id: this.opts.self, virtualNodes: this.opts.virtualNodes, heartbeat: this.heartbeat, hello, incarnation: this.incarnation };
    this.apply(hb);
    this.transport.publish(gossipSubject(this.opts.cluster), encode(hb));
  }

  private onMessage(data: Uint8Array): void {
    let hb: Heartbeat;
    try {
      hb = decode(data, Kind.Heartbeat);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'ignored a malformed gossip message');
      return;
    }
    if (hb.id === this.opts.self) {
      if (hb.incarnation !== this.incarnation && this.duplicateOf === undefined) {
        this.duplicateOf = hb.incarnation;
        this.logger.error({ nodeId: hb.id }, 'another process is running with this node id: node ids must be unique in a cluster');
      }
      return;
    }
    const isNew = !this.view.has(hb.id);
    this.apply(hb);
    if (isNew) this.logger.info({ member: hb.id, virtualNodes: hb.virtualNodes }, 'member joined');
    if (hb.hello) this.beat(false);
  }

  private apply(hb: Heartbeat): void {
    const next = applyHeartbeat(this.view, hb, this.clock.nowMs(), limits.membersMax);
    if (next === this.view) return;
    const changed = ringChanged(this.view, next);
    this.view = next;
    if (changed) {
      this.currentRing = buildRing([...next.values()]);
      for (const fn of this.changeListeners) fn();
    }
  }

  private logTransitions(): void {
    for (const m of this.members()) {
      const before = this.lastStatus.get(m.id);
      if (before !== undefined && before !== m.status) this.logger.warn({ member: m.id, status: m.status }, `member ${m.status}`);
      this.lastStatus.set(m.id, m.status);
    }
  }
}
