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
  const walk = clockwise(ring, keyHash);
  const replicas: PlacedReplica[] = [];
  const want = Math.min(n, ring.nodeCount);
  while (replicas.length < want) {
    const next = walk.next();
    if (next.done) break;
    replicas.push({ node: next.value, up: isUp(next.value) });
  }
  const down = replicas.filter((r) => !r.up).map((r) => r.node);
  const fallbacks: Fallback[] = [];
  while (fallbacks.length < down.length) {
    const next = walk.next();
    if (next.done) break;
    if (isUp(next.value)) fallbacks.push({ node: next.value, standsInFor: down[fallbacks.length]! });
  }
  const owners = new Set(replicas.map((r) => r.node));
  const moving = [...new Set(pending(keyHash))].filter((id) => !owners.has(id));
  return { keyHash, replicas, fallbacks, pending: moving };
}

/** Every distinct member once, clockwise from `position`. */
function* clockwise(ring: Ring, position: bigint): Generator<string, void, undefined> {
  const count = ring.tokens.length;
  if (count === 0) return;
  const seen = new Set<string>();
  const start = successorIndex(ring, position);
  for (let step = 0; step < count && seen.size < ring.nodeCount; step++) {
    const id = ring.tokens[(start + step) % count]!.nodeId;
    if (seen.has(id)) continue;
    seen.add(id);
    yield id;
  }
}

/** Each member's share of the keys it holds as one of their `n` replicas, in percent (they sum to min(n, members) x 100). */
export function ownershipPercent(ring: Ring, n: number): Map<string, number> {
  const loads = replicatedOwnership(ring.tokens, n);
  return new Map([...loads].map(([id, load]) => [id, load * 100]));
}
