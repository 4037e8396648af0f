/**
 * The cluster as the answering nodes see it, for `goddb status`: one entry
 * per member of anyone's ring (and per answering node), with its liveness
 * and its membership state by each node that reports them, its virtual
 * nodes, its share of the ring, the keys it holds (which only the member
 * itself reports) and the ranges moving to or from it. A node of an earlier
 * version reports no ring, no keys or no state: what only it could say is
 * null (the table prints '-'). Pure: NodeInfo in, plain data out.
 */
import type { AaeReport, TransferReport } from '../protocol/placement_report.js';
import type { NodeInfo } from './nodes.js';

/** Ranges and bytes of the transfers under way to or from a member (or of any set of transfers). */
export interface MovingFigures {
  /** Ranges finished and in all, summed over the transfers that report them (0 from nodes of an earlier version). */
  rangesDone: number;
  rangesTotal: number;
  bytesDone: number;
  /** Null while any of the transfers has not finished folding its store (its total is not known yet). */
  bytesTotal: number | null;
}

export interface MemberStatusView {
  id: string;
  cluster: string;
  /** Liveness on which every reporting node agrees ('up' or 'down'), 'disputed' when they differ, null when none reports this member. */
  status: string | null;
  /** Liveness by reporting node id. */
  seenBy: Record<string, string>;
  /**
   * Membership state ('joining', 'up', 'leaving', 'left', 'removed') on which
   * every node that reports one agrees, 'disputed' when they differ, null
   * when none does (nodes of an earlier version report none).
   */
  state: string | null;
  /** Membership state by reporting node id. */
  stateSeenBy: Record<string, string>;
  virtualNodes: number | null;
  /** Percent of the keys it holds as one of their N replicas (as the reporting node with the lowest id computes it). */
  owns: number | null;
  /** Records in the member's storage engine, as it reports them itself (null when it did not answer, or is of an earlier version). */
  keys: number | null;
  /** Transfers under way whose source or target it is, summed; null when there is none. */
  moving: MovingFigures | null;
  /** The member answered this status request itself. */
  answered: boolean;
  /**
   * Writes waiting for this member as hints (sloppy quorum): the hints every
   * answering node keeps for it, summed; null when no node reports hints
   * (nodes of an earlier version).
   */
  hints: number | null;
  /** Anti-entropy on the member, as it reports it itself: trees compared, keys repaired (null when it did not answer, or is of an earlier version). */
  aae: AaeReport | null;
}

export interface ClusterStatus {
  /** True when every reporting node says no range is moving; null when no node reports a ring. */
  settled: boolean | null;
  replication: number | null;
  members: MemberStatusView[];
  nodes: NodeInfo[];
}

export const Disputed = 'disputed';

export function clusterStatus(nodes: readonly NodeInfo[]): ClusterStatus {
  const byId = new Map<string, MemberStatusView>();
  const entry = (id: string, cluster: string): MemberStatusView => {
    let m = byId.get(id);
    if (!m) byId.set(id, (m = { id, cluster, status: null, seenBy: {}, state: null, stateSeenBy: {}, virtualNodes: null, owns: null, keys: null, moving: null, answered: false, hints: null, aae: null }));
    return m;
  };
  for (const n of nodes) {
    const m = entry(n.nodeId, n.cluster);
    m.answered = true;
    m.keys = n.ring?.keys ?? null;
    m.aae = n.ring?.aae ?? null;
  }
  const reporters = nodes.filter((n) => n.ring !== undefined).sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  for (const n of reporters) {
    for (const r of n.ring!.members) {
      const m = entry(r.id, n.cluster);
      m.seenBy[n.nodeId] = r.status;
      if (r.state !== undefined) m.stateSeenBy[n.nodeId] = r.state;
      m.virtualNodes ??= r.virtualNodes;
      m.owns ??= r.owns;
    }
  }
  for (const n of reporters) {
    if (n.ring!.hints === undefined) continue;
    for (const m of byId.values()) if (m.cluster === n.cluster) m.hints ??= 0;
    for (const [id, count] of Object.entries(n.ring!.hints)) {
      const m = entry(id, n.cluster);
      m.hints = (m.hints ?? 0) + count;
    }
  }
  const transfers = transfersUnderWay(nodes);
  for (const m of byId.values()) {
    m.status = agreed(m.seenBy);
    m.state = agreed(m.stateSeenBy);
    m.moving = movingFigures(transfers.filter((t) => t.source === m.id || t.target === m.id));
  }
  return {
    settled: reporters.length === 0 ? null : reporters.every((n) => n.ring!.settled),
    replication: reporters[0]?.ring!.replication ?? null,
    members: [...byId.values()].sort((a, b) => (a.cluster + a.id < b.cluster + b.id ? -1 : 1)),
    nodes: [...nodes],
  };
}

/** The one value every reporter gives, 'disputed' when they differ, null when none gives one. */
function agreed(byReporter: Record<string, string>): string | null {
  const seen = new Set(Object.values(byReporter));
  return seen.size === 0 ? null : seen.size === 1 ? [...seen][0]! : Disputed;
}

/**
 * Every transfer the answering nodes report, once: a transfer is reported
 * by its source, but a node that also listed the ones it receives would
 * otherwise count them twice.
 */
export function transfersUnderWay(nodes: readonly NodeInfo[]): TransferReport[] {
  const byKey = new Map<string, TransferReport>();
  for (const n of nodes) {
    for (const t of n.ring?.transfers ?? []) {
      const key = [n.cluster, t.kind, t.source, t.target, t.startedMs].join('\0');
      if (!byKey.has(key)) byKey.set(key, t);
    }
  }
  return [...byKey.values()];
}

/** The sum of `transfers`, or null when there are none. */
export function movingFigures(transfers: readonly TransferReport[]): MovingFigures | null {
  if (transfers.length === 0) return null;
  const sum: MovingFigures = { rangesDone: 0, rangesTotal: 0, bytesDone: 0, bytesTotal: 0 };
  for (const t of transfers) {
    sum.rangesDone += t.rangesDone ?? 0;
    sum.rangesTotal += t.rangesTotal ?? 0;
    sum.bytesDone += t.bytesSent;
    sum.bytesTotal = sum.bytesTotal === null || t.bytesTotal === null ? null : sum.bytesTotal + t.bytesTotal;
  }
  return sum;
}

/** A member's liveness for a table cell: the agreed one, or each view ('up:s1,s2;down:s3'). */
export function statusCell(m: MemberStatusView): string {
  return agreedCell(m.status, m.seenBy);
}

/** A member's membership state for a table cell, as statusCell shows liveness ('leaving:s1;up:s2' when disputed). */
export function stateCell(m: MemberStatusView): string {
  return agreedCell(m.state, m.stateSeenBy);
}

function agreedCell(value: string | null, byReporter: Record<string, string>): string {
  if (value === null) return '-';
  if (value !== Disputed) return value;
  const by = new Map<string, string[]>();
  for (const [node, s] of Object.entries(byReporter)) by.set(s, [...(by.get(s) ?? []), node]);
  return [...by].map(([s, ids]) => `${s}:${ids.join(',')}`).join(';');
}

/** Moving figures for a table cell: '2/5 ranges 1.2 MiB' (bytes done, and of how many once known), '-' when nothing moves. */
export function movingCell(f: MovingFigures | null): string {
  if (f === null) return '-';
  const ranges = f.rangesTotal > 0 ? `${f.rangesDone}/${f.rangesTotal} ranges ` : '';
  const bytes = f.bytesTotal === null ? formatBytes(f.bytesDone) : `${formatBytes(f.bytesDone)}/${formatBytes(f.bytesTotal)}`;
  return ranges + bytes;
}

/** Bytes with a binary unit and one decimal above 1 KiB ('512 B', '1.2 MiB'). */
export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (bytes < 1024) return `${bytes} B`;
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
