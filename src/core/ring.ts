/**
 * Consistent hashing with virtual nodes (Karger et al. 1997; Dynamo 4.2).
 *
 * Each member places `virtualNodes` tokens at `tokenOf(id, i)`; a key belongs
 * to the first token clockwise from its hash, and its preference list is the
 * first N distinct members met walking clockwise from there. The ring depends
 * only on the member set, so every node that knows the same members builds
 * the same ring. Removing a member moves only the ranges its tokens owned.
 */
import { hash64, tokenOf } from './hash.js';
import { limits } from './limits.js';

export interface RingMember {
  id: string;
  virtualNodes: number;
  /** The member's own tokens (chosen once, core/tokens.ts); absent: `tokenOf(id, i)`, as protocol-1 nodes place them. */
  tokens?: readonly bigint[] | undefined;
}

export interface Token {
  position: bigint;
  nodeId: string;
}

export interface Ring {
  /** Sorted by position, then node id (a tie between two nodes is resolved the same way everywhere). */
  readonly tokens: readonly Token[];
  readonly nodeCount: number;
}

export function buildRing(members: readonly RingMember[]): Ring {
  const tokens: Token[] = [];
  for (const m of members) {
    if (m.tokens !== undefined) for (const position of m.tokens) tokens.push({ position, nodeId: m.id });
    else for (let i = 0; i < m.virtualNodes; i++) tokens.push({ position: tokenOf(m.id, i), nodeId: m.id });
  }
  tokens.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : a.nodeId < b.nodeId ? -1 : 1));
  return { tokens, nodeCount: new Set(members.map((m) => m.id)).size };
}

/**
 * The key's ring position. Remembered for the last keys seen: one write
 * asks for it at the coordinator's placement, twice in storage (read, then
 * write of the record) and in the anti-entropy tree, and an MD5 costs about
 * a microsecond where a map lookup costs tens of nanoseconds. The memory
 * is bounded: past limits.keyHashesRememberedMax keys all are forgotten
 * (a generation, not an LRU: no bookkeeping per hit).
 */
export function keyHash(key: string): bigint {
  let hash = remembered.get(key);
  if (hash === undefined) {
    if (remembered.size >= limits.keyHashesRememberedMax) remembered.clear();
    hash = hash64(key);
    remembered.set(key, hash);
  }
  return hash;
}

const remembered = new Map<string, bigint>();

/** How many keys' positions keyHash holds now (never more than limits.keyHashesRememberedMax). */
export function keyHashesRemembered(): number {
  return remembered.size;
}

/** Index of the first token at or after `position`, wrapping to 0. */
export function successorIndex(ring: Ring, position: bigint): number {
  let lo = 0;
  let hi = ring.tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring.tokens[mid]!.position < position) lo = mid + 1;
    else hi = mid;
  }
  return lo === ring.tokens.length ? 0 : lo;
}

/** The first `n` distinct members clockwise from `position` (fewer when the ring has fewer). */
export function preferenceList(ring: Ring, position: bigint, n: number): string[] {
  const out: string[] = [];
  const count = ring.tokens.length;
  if (count === 0) return out;
  const want = Math.min(n, ring.nodeCount);
  const start = successorIndex(ring, position);
  for (let step = 0; step < count && out.length < want; step++) {
    const id = ring.tokens[(start + step) % count]!.nodeId;
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

/** The member that owns `position` (the first replica). */
export function owner(ring: Ring, position: bigint): string | undefined {
  return ring.tokens.length === 0 ? undefined : ring.tokens[successorIndex(ring, position)]!.nodeId;
}
