/**
 * Token allocation: where a node's virtual nodes go on the ring, chosen
 * once when the node first joins and kept (Dynamo section 6.2; Cassandra's
 * replication-aware token allocator, CASSANDRA-7032).
 *
 * Random tokens leave some nodes owning half again as much as others with
 * 10 virtual nodes each. Here each new token is placed, greedily, at the
 * midpoint of the range where it does the most good: the one that brings
 * every node's replicated ownership (the share of keys it holds as any of
 * the N replicas) closest to its target, which is proportional to its
 * virtual-node count. A new token changes the replica sets of only the
 * range it splits and the few ranges just before it, so each candidate is
 * scored by a local update, not a recount of the ring.
 *
 * Pure: positions, ids and counts in, positions out.
 */
import { hash64 } from './hash.js';

export const ringSize = 1n << 64n;
/**
 * How much more being over its target costs a node than being under it.
 * Measured over cluster sizes 3 to 64 with 10 virtual nodes and N=3 (worst
 * max/mean of replicated ownership): 1 gave 1.119, 2 gave 1.088, 4 gave
 * 1.101, 8 gave 1.082, 16 gave 1.085.
 */
const overloadWeight = 8;
const ringSizeFloat = 2 ** 64;

export interface PlacedToken {
  position: bigint;
  nodeId: string;
}

/** Nodes and their virtual-node counts (their capacity: targets are proportional to it). */
export type Capacities = ReadonlyMap<string, number>;

interface State {
  positions: bigint[];
  owners: number[];
  /** Fraction of the ring in range i = (positions[i-1], positions[i]]. */
  sizes: number[];
  chains: number[][];
  /** How many steps past i the walk for chain i looked (its last token is i + reach). */
  reach: number[];
  loads: number[];
}

/** The sorted ring with `node`'s tokens placed: `count` of them, chosen to balance replicated ownership. */
export function allocateTokens(existing: readonly PlacedToken[], node: string, count: number, capacities: Capacities, replication: number): bigint[] {
  if (count < 1) return [];
  const ids = [...new Set([...capacities.keys(), ...existing.map((t) => t.nodeId), node])].sort();
  const index = new Map(ids.map((id, i) => [id, i]));
  const self = index.get(node)!;
  const sorted = [...existing].sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
  if (sorted.length === 0) return evenlySpaced(node, count);
  const positions = sorted.map((t) => t.position);
  const owners = sorted.map((t) => index.get(t.nodeId)!);
  const distinct = new Set([...owners, self]).size;
  // With no more nodes than replicas every node holds every key: balance the primaries instead.
  const n = distinct <= replication ? 1 : replication;
  const capacity = ids.map((id) => capacities.get(id) ?? (id === node ? count : 1));
  const capacityTotal = capacity.reduce((a, b) => a + b, 0);
  const targets = capacity.map((c) => (c / capacityTotal) * n);
  const chosen: bigint[] = [];
  for (let k = 0; k < count; k++) {
    const state = measure(positions, owners, n, ids.length);
    // Pace the joining node: after its (k+1)-th token it should hold (k+1)/count of its share,
    // so that each token takes its part from where the others are most over their targets.
    const paced = targets.map((t, c) => (c === self ? (t * (k + 1)) / count : t));
    const best = bestSplit(state, self, n, paced);
    const at = best.index;
    const prev = at === 0 ? positions[positions.length - 1]! - ringSize : positions[at - 1]!;
    // A per-node nudge of up to half a percent of the range: two nodes that join at once, seeing
    // the same ring, do not pick the very same positions.
    const nudge = Number(hash64(`${node}#${k}`) % 1001n) - 500;
    const position = mod(prev + ((positions[at]! - prev) * BigInt(Math.round(best.fraction * 100_000) + nudge)) / 100_000n);
    chosen.push(position);
    positions.splice(at, 0, position);
    owners.splice(at, 0, self);
    if (at === 0) rotateToSorted(positions, owners);
  }
  return chosen.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Tokens for a cluster that starts together (the configured peers): every
 * node computes the same layout, allocating node by node in id order.
 */
export function initialTokens(capacities: Capacities, replication: number): Map<string, bigint[]> {
  const out = new Map<string, bigint[]>();
  const placed: PlacedToken[] = [];
  for (const id of [...capacities.keys()].sort()) {
    const mine = allocateTokens(placed, id, capacities.get(id)!, capacities, replication);
    out.set(id, mine);
    for (const position of mine) placed.push({ position, nodeId: id });
  }
  return out;
}

/** Each node's replicated ownership: the fraction of keys it holds as one of their `replication` replicas. */
export function replicatedOwnership(tokens: readonly PlacedToken[], replication: number): Map<string, number> {
  const sorted = [...tokens].sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
  const ids = [...new Set(sorted.map((t) => t.nodeId))].sort();
  const index = new Map(ids.map((id, i) => [id, i]));
  const state = measure(sorted.map((t) => t.position), sorted.map((t) => index.get(t.nodeId)!), Math.min(replication, ids.length), ids.length);
  return new Map(ids.map((id, i) => [id, state.loads[i]!]));
}

function evenlySpaced(node: string, count: number): bigint[] {
  const step = ringSize / BigInt(count);
  const offset = hash64(`${node}#tokens`) % step;
  return Array.from({ length: count }, (_, i) => offset + BigInt(i) * step);
}

function mod(p: bigint): bigint {
  return ((p % ringSize) + ringSize) % ringSize;
}

/** After inserting at index 0 a position that wrapped past the end, restore sorted order. */
function rotateToSorted(positions: bigint[], owners: number[]): void {
  const order = positions.map((_, i) => i).sort((a, b) => (positions[a]! < positions[b]! ? -1 : positions[a]! > positions[b]! ? 1 : 0));
  const p = order.map((i) => positions[i]!);
  const o = order.map((i) => owners[i]!);
  positions.splice(0, positions.length, ...p);
  owners.splice(0, owners.length, ...o);
}

function measure(positions: readonly bigint[], owners: readonly number[], n: number, nodeCount: number): State {
  const count = positions.length;
  const sizes = positions.map((p, i) => {
    const prev = i === 0 ? positions[count - 1]! - ringSize : positions[i - 1]!;
    return Number(p - prev) / ringSizeFloat;
  });
  const chains: number[][] = [];
  const reach: number[] = [];
  const loads = new Array<number>(nodeCount).fill(0);
  for (let i = 0; i < count; i++) {
    const { chain, steps } = walk((k) => owners[(i + k) % count]!, count, n);
    chains.push(chain);
    reach.push(steps);
    for (const c of chain) loads[c]! += sizes[i]!;
  }
  return { positions: [...positions], owners: [...owners], sizes, chains, reach, loads };
}

/** The first `n` distinct owners met walking from step 0, and the step of the last one looked at. */
function walk(ownerAt: (step: number) => number, length: number, n: number): { chain: number[]; steps: number } {
  const chain: number[] = [];
  let step = 0;
  for (; step < length && chain.length < n; step++) {
    const o = ownerAt(step);
    if (!chain.includes(o)) chain.push(o);
  }
  return { chain, steps: step - 1 };
}

/**
 * How far a node's load is from its target: squared relative deviation,
 * weighted up above the target, since the most loaded node is what limits
 * a cluster.
 */
function cost(load: number, target: number): number {
  const dev = (load - target) / target;
  return dev * dev * (dev > 0 ? overloadWeight : 1) * target;
}

/** Where in a range a new token may go, as the fraction of the range it takes for its own. */
const splitFractions = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/**
 * The range and the point in it that are the best place for a token of
 * `self`: the split that most lowers sum((load - target)^2 / target) over
 * the nodes, counting the joining node only above its target (below it,
 * load going to it is the point).
 */
function bestSplit(state: State, self: number, n: number, targets: readonly number[]): { index: number; fraction: number } {
  const count = state.positions.length;
  let best = { index: 0, fraction: 0.5, score: Number.POSITIVE_INFINITY };
  const fixed = new Map<number, number>();
  const perFraction = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    fixed.clear();
    perFraction.clear();
    const add = (into: Map<number, number>, chain: readonly number[], amount: number) => {
      for (const c of chain) into.set(c, (into.get(c) ?? 0) + amount);
    };
    // Virtual ring with the new token just before old index i.
    const ownerAfter = (start: number) => (step: number) => {
      const wrapped = (start + step) % (count + 1);
      if (wrapped === i) return self;
      return state.owners[wrapped < i ? wrapped : wrapped - 1]!;
    };
    const size = state.sizes[i]!;
    // Range i keeps its replicas on what the new token leaves it; the new range gets the rest.
    add(perFraction, state.chains[i]!, -size);
    add(perFraction, walk(ownerAfter(i), count + 1, n).chain, size);
    for (let back = 1; back < count; back++) {
      const j = (i - back + count) % count;
      if (state.reach[j]! < back) break; // its walk ended before the new token
      add(fixed, state.chains[j]!, -state.sizes[j]!);
      add(fixed, walk(ownerAfter(j < i ? j : j + 1), count + 1, n).chain, state.sizes[j]!);
    }
    const nodes = new Set([...fixed.keys(), ...perFraction.keys()]);
    for (const f of splitFractions) {
      let score = 0;
      for (const c of nodes) {
        const t = targets[c]!;
        const d = (fixed.get(c) ?? 0) + f * (perFraction.get(c) ?? 0);
        score += (cost(state.loads[c]! + d, t) - cost(state.loads[c]!, t));
      }
      if (score < best.score) best = { index: i, fraction: f, score };
    }
  }
  return best;
}
