/**
 * Which GoD-DB nodes answer, from the NATS micro-service statistics every
 * node registers ($SRV.STATS.goddb): for `goddb status` and operators'
 * scripts. Parsed defensively: it is another program's JSON.
 */
import { serviceStatsSubject } from '../protocol/subjects.js';
import type { Transport } from '../transport/transport.js';

export interface EndpointCounts {
  requests: number;
  errors: number;
}

export interface NodeInfo {
  nodeId: string;
  cluster: string;
  version: string;
  /** ISO time the node's service started. */
  started: string;
  /** Client requests this node coordinated, per operation (get, put, del; by subject or header). */
  endpoints: Record<string, EndpointCounts>;
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
  const endpoints: Record<string, EndpointCounts> = {};
  for (const e of Array.isArray(o['endpoints']) ? (o['endpoints'] as Record<string, unknown>[]) : []) {
    if (typeof e['name'] !== 'string') continue;
    endpoints[e['name']] = { requests: Number(e['num_requests'] ?? 0), errors: Number(e['num_errors'] ?? 0) };
  }
  return {
    nodeId: String(metadata['node_id'] ?? '?'),
    cluster: String(metadata['cluster'] ?? '?'),
    version: String(o['version'] ?? '?'),
    started: String(o['started'] ?? ''),
    endpoints,
  };
}
