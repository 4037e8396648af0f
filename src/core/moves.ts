/**
 * Range moves, the pure part (issue 9; Cassandra's pending ranges and
 * bootstrap/unbootstrap streaming, riak_core's ownership handoff).
 *
 * Every node keeps two rings from the member records (core/membership.ts):
 * the serving ring (members that hold their ranges: up, leaving, removing),
 * which reads use, and the future ring (members that will hold ranges once
 * the moves end: joining, up), which writes also reach (pending owners).
 * Each node also keeps its base: the ring for which it holds every key it
 * owns. When the future ring differs from its base, it pulls the arcs it
 * gains, and once every one has arrived its base becomes the future ring
 * (it is synced, and says so in its heartbeats by the ring's fingerprint).
 *
 * Where an arc comes from: when one member alone is moving, from the member
 * it replaces (in the serving list, not in the future one), as Cassandra
 * streams from the node a range leaves, because a write acknowledged by W
 * of the old list is then on W of the new one. When that member is down (a
 * removal), or when several members join at once, from every other serving
 * replica, merged: a write acknowledged by W of them is on at least one; a
 * source that is down makes the arc wait for it (only an operator's removal
 * takes a dead member out of the sources).
 *
 * Joins may overlap: joiners turn up one by one, as each finishes, so the
 * serving ring passes through rings nobody moved to (the old members and
 * some of the joiners). Adding members only pushes others out of a
 * preference list, so a joiner is a replica in such a ring only where it is
 * one in the serving ring plus itself: each joiner therefore pulls, and
 * receives writes as a pending owner for, those arcs too (`interim`). Leaves
 * and removals do not overlap other moves (node/membership/admin.ts).
 *
 * Pure: rings, N, ids and a liveness predicate in; arcs and tasks out.
 */
import { createHash } from 'node:crypto';
import { preferenceList, type Ring } from './ring.js';

/** The largest key hash (hashes are unsigned 64-bit). */
export const hashMax = (1n << 64n) - 1n;

/** The arc (start, end] of the ring; start >= end wraps past zero, start === end is the whole ring. */
export interface Arc {
  start: bigint;
  end: bigint;
}

/** Key hashes from fromHash to toHash, both inclusive (what storage scans: storage/engine.ts scanRange). */
export interface HashSpan {
  fromHash: bigint;
  toHash: bigint;
}

/**
 * The arcs between the token positions of every ring given, in ring order:
 * within one arc, each ring places every hash on the same token, so the
 * preference lists are the same for every hash of the arc.
 */
export function arcsOf(rings: readonly Ring[]): Arc[] {
  const positions = [...new Set(rings.flatMap((r) => r.tokens.map((t) => t.position)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (positions.length === 0) return [];
  return positions.map((end, i) => ({ start: positions[(i + positions.length - 1) % positions.length]!, end }));
}

/** The hash spans an arc covers, in scan order (a wrapping arc is two spans). */
export function spansOf(arc: Arc): HashSpan[] {
  if (arc.start < arc.end) return [{ fromHash: arc.start + 1n, toHash: arc.end }];
  const spans: HashSpan[] = [];
  if (arc.start < hashMax) spans.push({ fromHash: arc.start + 1n, toHash: hashMax });
  spans.push({ fromHash: 0n, toHash: arc.end });
  return spans;
}

/** True when `hash` is in the arc. */
export function inArc(hash: bigint, arc: Arc): boolean {
  if (arc.start === arc.end) return true;
  return arc.start < arc.end ? hash > arc.start && hash <= arc.end : hash > arc.start || hash <= arc.end;
}

/** A name for an arc, stable across processes (for progress kept on disk). */
export function arcName(arc: Arc): string {
  return `${arc.start.toString(16).padStart(16, '0')}-${arc.end.toString(16).padStart(16, '0')}`;
}

/** What a node must pull: an arc it gains and the members to pull it from (every one of them). */
export interface PullTask {
  arc: Arc;
  /** Empty when no member that holds the arc is up: the task waits. */
  sources: string[];
}

export interface MoveInputs {
  /** The ring this node holds every key of (undefined: it holds nothing yet, a joining node). */
  base: Ring | undefined;
  serving: Ring;
  future: Ring;
  /** The serving ring plus this node, when it is joining (see above); undefined otherwise. */
  interim?: Ring | undefined;
  /** More than one member is moving: pull from every other serving replica, not only the replaced one. */
  crowded?: boolean;
  n: number;
  self: string;
  isUp: (id: string) => boolean;
  /** Members that hold nothing to pull from (removed by an operator: dead by decree). */
  dead?: (id: string) => boolean;
}

/** The arcs `self` gains from its base to the future ring, with their sources; adjacent arcs with the same sources merged. */
export function pullTasks(inp: MoveInputs): PullTask[] {
  const rings = [inp.serving, inp.future, ...(inp.base ? [inp.base] : []), ...(inp.interim ? [inp.interim] : [])];
  const tasks: PullTask[] = [];
  for (const arc of arcsOf(rings)) {
    const future = preferenceList(inp.future, arc.end, inp.n);
    const interim = inp.interim ? preferenceList(inp.interim, arc.end, inp.n).includes(inp.self) : false;
    if (!future.includes(inp.self) && !interim) continue;
    if (inp.base && preferenceList(inp.base, arc.end, inp.n).includes(inp.self)) continue;
    const serving = preferenceList(inp.serving, arc.end, inp.n);
    const replaced = inp.crowded || !future.includes(inp.self) ? [] : serving.filter((id) => id !== inp.self && !future.includes(id) && inp.isUp(id));
    // Otherwise every other serving replica, down ones included (the task then waits for them):
    // a write acknowledged by W of them may be on any one, and one missing source could be the only
    // holder of a write (GODDB_SEED=5000015 of the workload: a wiped node pulled from the one
    // replica it could reach and then read stale).
    const sources = replaced.length > 0 ? replaced : serving.filter((id) => id !== inp.self && !(inp.dead?.(id) ?? false));
    const last = tasks[tasks.length - 1];
    if (last && last.arc.end === arc.start && sameList(last.sources, sources)) last.arc = { start: last.arc.start, end: arc.end };
    else tasks.push({ arc, sources });
  }
  return tasks;
}

/**
 * The arcs whose keys `self` may delete: it is in neither the serving nor
 * the future preference list (called once every future owner is synced).
 */
export function foreignArcs(serving: Ring, future: Ring, n: number, self: string): Arc[] {
  const out: Arc[] = [];
  for (const arc of arcsOf([serving, future])) {
    if (preferenceList(serving, arc.end, n).includes(self) || preferenceList(future, arc.end, n).includes(self)) continue;
    const last = out[out.length - 1];
    if (last && last.end === arc.start) last.end = arc.end;
    else out.push({ ...arc });
  }
  return out;
}

/**
 * The members a key hash will have, once the moves end or on the way (the
 * `interim` rings of overlapping joins), that it does not have now: writes
 * reach them too.
 */
export function pendingOwners(serving: Ring, future: Ring, hash: bigint, n: number, interim: readonly Ring[] = []): string[] {
  const now = preferenceList(serving, hash, n);
  const out: string[] = [];
  for (const ring of [future, ...interim]) for (const id of preferenceList(ring, hash, n)) if (!now.includes(id) && !out.includes(id)) out.push(id);
  return out;
}

/** A short name for a ring's placement: two rings place every key alike exactly when their fingerprints match. */
export function ringFingerprint(ring: Ring): string {
  const h = createHash('sha1');
  for (const t of ring.tokens) h.update(`${t.position.toString(16)}:${t.nodeId};`);
  return h.digest('hex').slice(0, 16);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
