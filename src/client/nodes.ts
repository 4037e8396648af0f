/**
 * Which GoD-DB nodes answer, from the NATS micro-service statistics every
 * node registers ($SRV.STATS.goddb): for `goddb status` and operators'
 * scripts. Parsed defensively: it is another program's JSON.
 */
import { parseRingReport, type RingReport } from '../protocol/placement_report.js';
import { parseRequestCounts, type RequestCounts } from '../protocol/request_counts.js';
import { clientEndpoint, serviceStatsSubject } from '../protocol/subjects.js';
import type { Transport } from '../transport/transport.js';

export interface NodeInfo {
  nodeId: string;
  cluster: string;
  version: string;
  /** ISO time the node's service started. */
  started: string;
  /**
   * Client requests this node answered, per operation and reply code
   * (`requests.get['404']`): the counts its /metrics shows as
   * goddb_requests_total. summarizeRequests() sorts them into ok, not found,
   * refused (other 4xx) and errors (5xx). Empty for a node that reports none.
   */
  requests: RequestCounts;
  /** Every member of the ring as this node sees it (liveness, virtual nodes, share); undefined from a node of an earlier version. */
  ring?: RingReport;
}

export async function listNodes(transport: Transport, waitMs: number): Promise<NodeInfo[]> {
  const replies = await transport.gather(serviceStatsSubject(), new Uint8Array(0), { waitMs });
  const nodes: NodeInfo[] = [];
  for (const r of replies) {
    const info = parseStats(new TextDecoder().decode(r.data));
    if (info) nodes.push(info);
  }
  return nodes.sort((a, b) => (a.cluster + a.nodeId < b.cluster + b.nodeId ? -1 : 1));
}

function parseStats(text: string): NodeInfo | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const o = raw as Record<string, unknown>;
  const metadata = (o['metadata'] ?? {}) as Record<string, unknown>;
  const endpoints = Array.isArray(o['endpoints']) ? (o['endpoints'] as unknown[]) : [];
  const api = endpoints.find((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && (e as Record<string, unknown>)['name'] === clientEndpoint.name);
  const data = (api?.['data'] ?? {}) as Record<string, unknown>;
  const ring = parseRingReport(data['ring']);
  return {
    nodeId: String(metadata['node_id'] ?? '?'),
    cluster: String(metadata['cluster'] ?? '?'),
    version: String(o['version'] ?? '?'),
    started: String(o['started'] ?? ''),
    requests: parseRequestCounts(data['requests']) ?? {},
    ...(ring === undefined ? {} : { ring }),
  };
}
