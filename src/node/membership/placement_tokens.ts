/**
 * Where this node's tokens come from (issue 9): chosen once and kept in the
 * node's metadata, so a restart never moves the ring.
 *
 * - Kept: read back from the metadata.
 * - A node that served before tokens were chosen (a data directory from an
 *   older version) or that speaks only protocol 1 keeps the tokens derived
 *   from its id, where its data already is.
 * - A member of the initial cluster (its id is in the configured peers, or
 *   gossip is off) takes its share of the layout every initial member
 *   computes alike (core/tokens.ts initialTokens).
 * - Any other node is joining: it chooses once it has heard the ring
 *   (`joinTokens`), balancing against the tokens members announced.
 */
import { tokenOf } from '../../core/hash.js';
import { allocateTokens, initialTokens, type PlacedToken } from '../../core/tokens.js';
import { StorageError } from '../../core/errors.js';
import type { MetaStore } from '../../storage/meta.js';

export const tokensMetaName = 'tokens';

export interface TokenPlan {
  /** This node's tokens, or undefined while it is joining. */
  own: bigint[] | undefined;
  /** What this node assumes of the initial cluster's members until they announce their own. */
  peers: Map<string, bigint[]>;
}

export interface TokenInputs {
  id: string;
  virtualNodes: number;
  replication: number;
  peers: readonly string[];
  gossip: boolean;
  protocolMax: number;
  /** The data directory held data before tokens were kept. */
  servedBefore: boolean;
}

export function planTokens(inp: TokenInputs, meta: MetaStore): TokenPlan {
  const initial = inp.gossip ? inp.peers.includes(inp.id) : true;
  const layout = initial ? initialTokens(new Map([...inp.peers, inp.id].map((p) => [p, inp.virtualNodes])), inp.replication) : new Map<string, bigint[]>();
  const peers = new Map([...layout].filter(([p]) => p !== inp.id));
  const kept = readTokens(meta, inp.virtualNodes);
  if (kept !== undefined) return { own: kept, peers };
  let own: bigint[] | undefined;
  if (inp.servedBefore || inp.protocolMax < 2) own = derivedTokens(inp.id, inp.virtualNodes);
  else if (initial) own = layout.get(inp.id);
  if (own !== undefined) writeTokens(meta, own);
  return { own, peers };
}

/** A joining node's tokens, balanced against the ring it has heard; kept before they are used. */
export function joinTokens(id: string, virtualNodes: number, replication: number, heard: readonly PlacedToken[], capacities: ReadonlyMap<string, number>, meta: MetaStore): bigint[] {
  const caps = new Map(capacities);
  caps.set(id, virtualNodes);
  const own = allocateTokens(heard.filter((t) => t.nodeId !== id), id, virtualNodes, caps, replication);
  writeTokens(meta, own);
  return own;
}

/** The tokens protocol-1 nodes use: the first 64 bits of md5("<id>#<i>"). */
export function derivedTokens(id: string, virtualNodes: number): bigint[] {
  return Array.from({ length: virtualNodes }, (_, i) => tokenOf(id, i));
}

function readTokens(meta: MetaStore, virtualNodes: number): bigint[] | undefined {
  const text = meta.readText(tokensMetaName);
  if (text === undefined) return undefined;
  const parts = text.trim().split(/\s+/).filter(Boolean);
  if (parts.length !== virtualNodes || !parts.every((p) => /^[0-9a-f]{16}$/.test(p))) {
    throw new StorageError(`the kept tokens are not ${virtualNodes} tokens of 16 hex digits (virtual nodes cannot change once a node has joined)`);
  }
  return parts.map((p) => BigInt(`0x${p}`));
}

export function writeTokens(meta: MetaStore, tokens: readonly bigint[]): void {
  meta.writeText(tokensMetaName, tokens.map((t) => t.toString(16).padStart(16, '0')).join('\n'));
}
