/**
 * Placement: where a key lives, in one pure function (riak_core
 * `riak_core_apl:get_apl_ann`, which returns the primaries and the fallbacks
 * annotated with whom they stand in for; Cassandra's pending ranges).
 *
 * - replicas: the first N distinct members clockwise from the key's hash
 *   (its preference list, Dynamo 4.3), each with the liveness it has now. A
 *   down replica stays in the list: liveness is not membership.
 * - fallbacks: the next healthy distinct members clockwise beyond the
 *   preference list, one per down replica while healthy members remain,
 *   each naming the replica it stands in for (the targets of a sloppy quorum
 *   and its hinted handoff, Dynamo 4.6).
 * - pending: members that will own the key once a range move ends (a
 *   joining node), which writes must also reach meanwhile.
 *
 * The coordinator, `goddb owners` and (later) hinted handoff call this one
 * function, so what the CLI shows is what the coordinator does. Pure: the
 * ring, a liveness predicate and the moving ranges are parameters.
 */
import { limits } from './limits.js';
import { successorIndex, type Ring } from './ring.js';
import { replicatedOwnership } from './tokens.js';

export interface PlacedReplica {
  node: string;
  up: boolean;
}

export interface Fallback {
  node: string;
  /** The down replica whose writes this member takes (as hints) while it is down. */
  standsInFor: string;
}

export interface Placement {
  keyHash: bigint;
  /** The preference list, in order (at most N; fewer when the ring has fewer members). */
  replicas: PlacedReplica[];
  /** In the order of the down replicas they stand in for. */
  fallbacks: Fallback[];
  /** Members that will own the key once a move ends, not already replicas. */
  pending: string[];
}

/** The members that will own a key hash once the ranges under way have moved. */
export type PendingOwners = (keyHash: bigint) => readonly string[];

/** No range is moving (today: data does not move on joins yet). */
export const noPending: PendingOwners = () => [];

/** A range (start, end] of the ring on its way to new owners; start >= end wraps past zero. */
export interface MovingRange {
  start: bigint;
  end: bigint;
  to: readonly string[];
}

/** The pending owners that a list of moving ranges gives each key hash. */
export function pendingFromRanges(ranges: readonly MovingRange[]): PendingOwners {
  return (hash) => {
    const out: string[] = [];
    for (const r of ranges) if (inRange(hash, r.start, r.end)) for (const id of r.to) if (!out.includes(id)) out.push(id);
    return out;
  };
}

function inRange(hash: bigint, start: bigint, end: bigint): boolean {
  return start < end ? hash > start && hash <= end : hash > start || hash <= end;
}

export function placement(ring: Ring, keyHash: bigint, n: number, isUp: (id: string) => boolean, pending: PendingOwners = noPending): Placement {
  const want = Math.min(n, ring.nodeCount);
  const walk = walkFrom(ring, keyHash, want);
  const replicas: PlacedReplica[] = [];
  let down = 0;
  for (let i = 0; i < walk.length && replicas.length < want; i++) {
    const up = isUp(walk[i]!);
    if (!up) down++;
    replicas.push({ node: walk[i]!, up });
  }
  const fallbacks: Fallback[] = [];
  if (down > 0) {
    // Rare (a replica down): the whole walk, as far as it takes to find a fallback for each.
    const downs = replicas.filter((r) => !r.up).map((r) => r.node);
    const all = walkFrom(ring, keyHash, ring.nodeCount);
    for (let i = replicas.length; i < all.length && fallbacks.length < downs.length; i++) {
      if (isUp(all[i]!)) fallbacks.push({ node: all[i]!, standsInFor: downs[fallbacks.length]! });
    }
  }
  const moving = pending(keyHash);
  return { keyHash, replicas, fallbacks, pending: moving.length === 0 ? [] : [...new Set(moving)].filter((id) => !replicas.some((r) => r.node === id)) };
}

/**
 * The distinct members clockwise from `position`: at least the first
 * `count` (all, when the ring has fewer), maybe more. The first
 * limits.placementWalkRememberedMax of them from each token are remembered
 * per ring (a ring never changes: a new one is built), since every
 * operation asks for its key's replicas; longer walks are computed each time.
 */
function walkFrom(ring: Ring, position: bigint, count: number): readonly string[] {
  if (ring.tokens.length === 0) return [];
  const start = successorIndex(ring, position);
  if (count > limits.placementWalkRememberedMax) return distinctFrom(ring, start, count);
  let walks = remembered.get(ring);
  if (walks === undefined) {
    walks = new Array<readonly string[] | undefined>(ring.tokens.length);
    remembered.set(ring, walks);
  }
  return (walks[start] ??= distinctFrom(ring, start, limits.placementWalkRememberedMax));
}

const remembered = new WeakMap<Ring, (readonly string[] | undefined)[]>();

function distinctFrom(ring: Ring, start: number, count: number): string[] {
  const out: string[] = [];
  const tokens = ring.tokens.length;
  const want = Math.min(count, ring.nodeCount);
  for (let step = 0; step < tokens && out.length < want; step++) {
    const id = ring.tokens[(start + step) % tokens]!.nodeId;
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

/** Each member's share of the keys it holds as one of their `n` replicas, in percent (they sum to min(n, members) x 100). */
export function ownershipPercent(ring: Ring, n: number): Map<string, number> {
  const loads = replicatedOwnership(ring.tokens, n);
  return new Map([...loads].map(([id, load]) => [id, load * 100]));
}
