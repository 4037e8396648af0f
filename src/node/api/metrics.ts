/**
 * Prometheus metrics, in a registry of the node's own (several nodes may
 * share a process in simulations, so nothing goes in the global registry).
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { LightHistogram } from './light_histogram.js';
import { ErrorCode } from '../../core/errors.js';
import { limits } from '../../core/limits.js';
import type { RequestCounts } from '../../protocol/request_counts.js';
import type { AaeProgress } from '../aae/anti_entropy.js';
import type { ReplicaTiming } from './replica_timing.js';

/** Reply codes that mean the cluster could not answer (core/errors.ts): counted in goddb_quorum_failures_total. */
const quorumFailureCodes = new Set<number>([ErrorCode.Internal, ErrorCode.QuorumNotMet, ErrorCode.Timeout, ErrorCode.StorageUnavailable]);

/** Counts kept by the node's parts, read at scrape time. */
export interface MetricSources {
  inflight: () => number;
  membersUp: () => number;
  readRepairs: () => number;
  /** Writes sent again past a replica's stale-write floor. */
  staleRetries: () => number;
  /** Versions this replica refused as stale, or as stamped beyond the clock skew. */
  staleRefusals: () => number;
  skewRefusals: () => number;
  /** Under `siblings`: versions folded into others by LWW because a key had more than siblingsMax (replica stores and reads). */
  siblingsCollapsed?: () => number;
  /** Replica requests and gossip claims refused as malformed or unconfirmed. */
  malformedReplicaRequests: () => number;
  unconfirmedMembers: () => number;
  /** This node's hybrid logical clock (ms x 1000 + logical). */
  hlc: () => number;
  /** Keys and bytes this node pulled from old owners (node/handoff/moves.ts), and its pulls under way. */
  handoffKeysSent: () => number;
  handoffBytesSent: () => number;
  handoffActive: () => number;
  /** Keys this node holds (node/api/key_count.ts: cached, so a scrape does not load the engine); undefined until first counted. */
  keys: () => Promise<number | undefined>;
  /** Members in this node's view of the ring, up or down. */
  ringMembers: () => number;
  /** This node's replicated share of the key space, 0..1: the fraction of keys it holds as one of their N replicas. */
  ringOwnedRatio: () => number;
  /** Every member's membership state and liveness, as this node sees them. */
  memberStates: () => readonly { state: string; status: string }[];
  /** 1 when no range is moving (as `goddb status` says settled), else 0. */
  settled: () => boolean;
  /** Keys this node deleted because it no longer replicates them (after a move). */
  keysDeleted: () => number;
  /** Members this coordinator routes around now because their replica requests time out, and how often it began to. */
  routedAround?: () => number;
  routedAroundTotal?: () => number;
  /** Keys purged from this node's store by kind (tombstone, expired), and candidates its sweeps left by reason (node/gc). */
  gcPurged?: () => Readonly<Record<string, number>>;
  gcSkipped?: () => Readonly<Record<string, number>>;
  /** Hints this node keeps per member they are for, kept in all, delivered, and dropped by reason (node/hints). */
  hintsPending?: () => ReadonlyMap<string, number>;
  hintsStored?: () => number;
  hintsDelivered?: () => number;
  hintsDropped?: () => Readonly<Record<string, number>>;
  /** Anti-entropy progress: trees ready, trees compared, keys repaired, segments differing (node/aae). */
  aae?: () => AaeProgress;
  /** Change-feed events this node published, dropped (outbound buffer over its bound), and published without their value (node/changes). */
  changes?: () => { published: number; dropped: number; valuesOmitted: number };
  /** Node-to-node request latency, sent and served (node/api/replica_timing.ts). */
  replicaTiming?: ReplicaTiming;
  /** Bytes on disk of each store namespace (data, hints, paxos), for engines with files; read at scrape time. */
  storageBytes?: () => Promise<Readonly<Record<string, number>>>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'op' | 'code'>;
  private readonly latency: LightHistogram<'op'>;
  private readonly quorumFailures: Counter<'op' | 'code'>;

  constructor(nodeId: string, gauges: MetricSources) {
    this.registry.setDefaultLabels({ node_id: nodeId });
    this.requests = new Counter({
      name: 'goddb_requests_total',
      help: 'Client requests coordinated by this node, by operation and reply code',
      labelNames: ['op', 'code'],
      registers: [this.registry],
    });
    // Every client request is timed into it: light_histogram.ts, not prom-client's own.
    this.latency = new LightHistogram('goddb_request_duration_seconds', 'Client request latency at the coordinator', ['op'], [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
    this.latency.register(this.registry);
    this.quorumFailures = new Counter({
      name: 'goddb_quorum_failures_total',
      help: 'Client requests this coordinator could not answer, by operation and code (503 quorum not met, 504 timeout, 507 storage unavailable, 500 internal)',
      labelNames: ['op', 'code'],
      registers: [this.registry],
    });
    if (gauges.replicaTiming) {
      gauges.replicaTiming.sent.register(this.registry);
      gauges.replicaTiming.served.register(this.registry);
    }
    const storageBytes = gauges.storageBytes;
    if (storageBytes) {
      new Gauge({
        name: 'goddb_storage_bytes',
        help: 'Bytes on disk of this node\'s stores, by namespace (data: the key space; hints; paxos)',
        labelNames: ['namespace'],
        registers: [this.registry],
        async collect() {
          for (const [namespace, n] of Object.entries(await storageBytes())) this.set({ namespace }, n);
        },
      });
    }
    new Gauge({ name: 'goddb_inflight_requests', help: 'Requests being coordinated', registers: [this.registry], collect() { this.set(gauges.inflight()); } });
    new Gauge({ name: 'goddb_members_up', help: 'Members this node sees up', registers: [this.registry], collect() { this.set(gauges.membersUp()); } });
    new Gauge({ name: 'goddb_read_repairs', help: 'Replicas brought up to date by read repair', registers: [this.registry], collect() { this.set(gauges.readRepairs()); } });
    const counts: [string, string, () => number][] = [
      ['goddb_stale_write_retries', 'Writes this coordinator sent again with a later clock after a replica refused them as stale', gauges.staleRetries],
      ['goddb_stale_write_refusals', 'New versions this replica refused because they would not supersede what it holds', gauges.staleRefusals],
      ['goddb_clock_skew_refusals', 'Versions this replica refused as stamped more than maxClockSkewMs ahead of its clock', gauges.skewRefusals],
      ['goddb_malformed_replica_requests', 'Replica requests refused whole as malformed', gauges.malformedReplicaRequests],
      ['goddb_unconfirmed_member_claims', 'Gossip claims refused because the member did not confirm them', gauges.unconfirmedMembers],
      ['goddb_hlc', 'This node\'s hybrid logical clock (ms x 1000 + logical)', gauges.hlc],
      ['goddb_handoff_keys_sent_total', 'Keys this node pulled from their old owners after a ring change (range moves; the name is kept from the first handoff)', gauges.handoffKeysSent],
      ['goddb_handoff_bytes_sent_total', 'Bytes (keys and versions, estimated) of the keys counted in goddb_handoff_keys_sent_total', gauges.handoffBytesSent],
      ['goddb_handoff_active', 'Range pulls of this node under way (one per source)', gauges.handoffActive],
      ['goddb_handoff_keys_deleted_total', 'Keys this node deleted because it replicates them no more, once their new owners said they hold them', gauges.keysDeleted],
    ];
    if (gauges.siblingsCollapsed !== undefined) {
      counts.push(['goddb_siblings_collapsed_total', 'Siblings collapsed by LWW into others because a key had more than siblingsMax (conflictPolicy siblings); their values are lost', gauges.siblingsCollapsed]);
    }
    for (const [name, help, read] of counts) new Gauge({ name, help, registers: [this.registry], collect() { this.set(read()); } });
    new Gauge({
      name: 'goddb_keys',
      help: `Keys this node holds (the storage engine's count, read at most every ${limits.keyCountRefreshMs}ms)`,
      registers: [this.registry],
      async collect() {
        const keys = await gauges.keys();
        if (keys !== undefined) this.set(keys);
      },
    });
    if (gauges.routedAround) new Gauge({ name: 'goddb_replicas_routed_around', help: 'Members this coordinator routes around now: up for the failure detector, but their replica requests timed out twice in a row (gray failures)', registers: [this.registry], collect() { this.set(gauges.routedAround!()); } });
    if (gauges.routedAroundTotal) new Gauge({ name: 'goddb_replicas_routed_around_total', help: 'Times this coordinator began to route around a member whose replica requests time out', registers: [this.registry], collect() { this.set(gauges.routedAroundTotal!()); } });
    const gcPurged = gauges.gcPurged;
    if (gcPurged) new Gauge({ name: 'goddb_gc_purged_total', help: 'Keys purged from this node\'s store past the tombstone grace period, by kind (tombstone: deleted; expired: TTL past its expiry)', labelNames: ['kind'], registers: [this.registry], collect() { for (const [kind, n] of Object.entries(gcPurged())) this.set({ kind }, n); } });
    const gcSkipped = gauges.gcSkipped;
    const aae = gauges.aae;
    if (aae) {
      new Gauge({ name: 'goddb_aae_trees_compared_total', help: 'Anti-entropy comparisons of one range\'s tree with another replica\'s (node/aae)', registers: [this.registry], collect() { this.set(aae().treesCompared); } });
      new Gauge({ name: 'goddb_aae_keys_repaired_total', help: 'Keys anti-entropy found differing and exchanged both ways with another replica', registers: [this.registry], collect() { this.set(aae().keysRepaired); } });
      new Gauge({ name: 'goddb_aae_segments_differing', help: 'Tree segments that differed in the last comparison of each range, summed (0 once the replicas agree)', registers: [this.registry], collect() { this.set(aae().segmentsDiffering); } });
      new Gauge({ name: 'goddb_aae_trees_ready', help: 'Ranges whose anti-entropy tree is built (of goddb_aae_trees)', registers: [this.registry], collect() { this.set(aae().treesReady); } });
      new Gauge({ name: 'goddb_aae_trees', help: 'Ranges this node replicates, one anti-entropy tree each', registers: [this.registry], collect() { this.set(aae().treesTotal); } });
      new Gauge({ name: 'goddb_aae_exchanges_failed_total', help: 'Anti-entropy exchanges that failed (a peer timed out or refused); the next round tries again', registers: [this.registry], collect() { this.set(aae().exchangesFailed); } });
      new Gauge({ name: 'goddb_aae_exchanges_skipped_total', help: 'Anti-entropy exchanges not made because the other replica keeps its trees in another digest format (a rolling upgrade under way)', registers: [this.registry], collect() { this.set(aae().exchangesSkipped); } });
      new Gauge({ name: 'goddb_aae_segments_corrected_total', help: 'Anti-entropy tree segments set again from storage because they had drifted from it (a race the tree missed; convergence only)', registers: [this.registry], collect() { this.set(aae().segmentsCorrected); } });
    }
    if (gcSkipped) new Gauge({ name: 'goddb_gc_skipped_total', help: 'Purge candidates this node\'s sweeps left in place, by reason (moving, not_replica, down, unreachable, differs, old_protocol); the next sweep tries again', labelNames: ['reason'], registers: [this.registry], collect() { for (const [reason, n] of Object.entries(gcSkipped())) this.set({ reason }, n); } });
    const changes = gauges.changes;
    if (changes) {
      new Gauge({ name: 'goddb_changes_published_total', help: 'Change-feed events this node published (one per put or delete it answered 200)', registers: [this.registry], collect() { this.set(changes().published); } });
      new Gauge({ name: 'goddb_changes_dropped_total', help: 'Change-feed events this node dropped: its NATS connection held more than limits.changesOutboundBytesMax unsent, or the publish failed (the feed is at-most-once)', registers: [this.registry], collect() { this.set(changes().dropped); } });
      new Gauge({ name: 'goddb_changes_values_omitted_total', help: 'Change-feed events published without their value (too large for max_payload with the headers; KV-Value-Omitted)', registers: [this.registry], collect() { this.set(changes().valuesOmitted); } });
    }
    new Gauge({ name: 'goddb_ring_settled', help: '1 when no range is moving as this node sees it (goddb status settled), else 0', registers: [this.registry], collect() { this.set(gauges.settled() ? 1 : 0); } });
    new Gauge({
      name: 'goddb_members',
      help: 'Members in this node\'s view by membership state (joining, up, leaving, removing, left, removed) and liveness (up, down)',
      labelNames: ['state', 'liveness'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const m of gauges.memberStates()) this.inc({ state: m.state, liveness: m.status });
      },
    });
    new Gauge({ name: 'goddb_ring_members', help: 'Members in this node\'s view of the ring, up or down', registers: [this.registry], collect() { this.set(gauges.ringMembers()); } });
    new Gauge({ name: 'goddb_ring_owned_ratio', help: 'This node\'s replicated share of the key space, 0..1 (the keys it holds as one of their N replicas; all members sum to min(N, members))', registers: [this.registry], collect() { this.set(gauges.ringOwnedRatio()); } });
    this.hintMetrics(gauges);
  }

  /** Sloppy quorum and hinted handoff (node/hints): what waits for members that are down. */
  private hintMetrics(gauges: MetricSources): void {
    const { hintsPending, hintsStored, hintsDelivered, hintsDropped } = gauges;
    if (hintsPending) {
      new Gauge({
        name: 'goddb_hints_pending',
        help: 'Hints this node keeps for members that were down, by the member they are for (owner="": all of them)',
        labelNames: ['owner'],
        registers: [this.registry],
        collect() {
          this.reset();
          let total = 0;
          for (const [owner, n] of hintsPending()) {
            this.set({ owner }, n);
            total += n;
          }
          this.set({ owner: '' }, total);
        },
      });
    }
    if (hintsStored) new Gauge({ name: 'goddb_hints_stored_total', help: 'Hinted writes this node kept for a member that was down (new or merged into a hint it held)', registers: [this.registry], collect() { this.set(hintsStored()); } });
    if (hintsDelivered) new Gauge({ name: 'goddb_hints_delivered_total', help: 'Hints this node delivered to their member once it was up again, then deleted', registers: [this.registry], collect() { this.set(hintsDelivered()); } });
    if (hintsDropped) new Gauge({ name: 'goddb_hints_dropped_total', help: 'Hints dropped undelivered, by reason (window: older than hints.windowMs; full: refused past hints.bytesMax; owner_gone: the member left or was removed; corrupt)', labelNames: ['reason'], registers: [this.registry], collect() { for (const [reason, n] of Object.entries(hintsDropped())) this.set({ reason }, n); } });
  }

  observe(op: string, code: number, elapsedMs: number): void {
    this.requests.inc({ op, code: String(code) });
    this.latency.series(op).observe(elapsedMs / 1000);
    if (quorumFailureCodes.has(code)) this.quorumFailures.inc({ op, code: String(code) });
  }

  /** goddb_requests_total as plain data: what $SRV.STATS and `goddb status` report. */
  async requestCounts(): Promise<RequestCounts> {
    const counts: RequestCounts = {};
    for (const { labels, value } of (await this.requests.get()).values) {
      const byCode = (counts[String(labels.op)] ??= {});
      byCode[String(labels.code)] = value;
    }
    return counts;
  }
}
