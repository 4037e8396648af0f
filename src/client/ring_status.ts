/**
 * The cluster as the answering nodes see it, for `goddb status`: one entry
 * per member of anyone's ring (and per answering node), with its liveness
 * by each node that reports it, its virtual nodes, its share of the ring and
 * the keys it holds (which only the member itself reports). A node of an
 * earlier version reports no ring, or no keys: what only it could say is
 * null (the table prints '-'). Pure: NodeInfo in, plain data out.
 */
import type { NodeInfo } from './nodes.js';

export interface MemberStatusView {
  id: string;
  cluster: string;
  /** Liveness on which every reporting node agrees ('up' or 'down'), 'disputed' when they differ, null when none reports this member. */
  status: string | null;
  /** Liveness by reporting node id. */
  seenBy: Record<string, string>;
  virtualNodes: number | null;
  /** Percent of the keys it holds as one of their N replicas (as the reporting node with the lowest id computes it). */
  owns: number | null;
  /** Records in the member's storage engine, as it reports them itself (null when it did not answer, or is of an earlier version). */
  keys: number | null;
  /** The member answered this status request itself. */
  answered: boolean;
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
    if (!m) byId.set(id, (m = { id, cluster, status: null, seenBy: {}, virtualNodes: null, owns: null, keys: null, answered: false }));
    return m;
  };
  for (const n of nodes) {
    const m = entry(n.nodeId, n.cluster);
    m.answered = true;
    m.keys = n.ring?.keys ?? null;
  }
  const reporters = nodes.filter((n) => n.ring !== undefined).sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  for (const n of reporters) {
    for (const r of n.ring!.members) {
      const m = entry(r.id, n.cluster);
      m.seenBy[n.nodeId] = r.status;
      m.virtualNodes ??= r.virtualNodes;
      m.owns ??= r.owns;
    }
  }
  for (const m of byId.values()) {
    const seen = new Set(Object.values(m.seenBy));
    m.status = seen.size === 0 ? null : seen.size === 1 ? [...seen][0]! : Disputed;
  }
  return {
    settled: reporters.length === 0 ? null : reporters.every((n) => n.ring!.settled),
    replication: reporters[0]?.ring!.replication ?? null,
    members: [...byId.values()].sort((a, b) => (a.cluster + a.id < b.cluster + b.id ? -1 : 1)),
    nodes: [...nodes],
  };
}

/** A member's liveness for a table cell: the agreed one, or each view ('up:s1,s2;down:s3'). */
export function statusCell(m: MemberStatusView): string {
  if (m.status === null) return '-';
  if (m.status !== Disputed) return m.status;
  const by = new Map<string, string[]>();
  for (const [node, s] of Object.entries(m.seenBy)) by.set(s, [...(by.get(s) ?? []), node]);
  return [...by].map(([s, ids]) => `${s}:${ids.join(',')}`).join(';');
}
