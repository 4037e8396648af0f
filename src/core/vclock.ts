/**
 * Vector clocks (Lamport 1978; Dynamo section 4.4; riak_core vclock.erl).
 *
 * A clock maps a node id to a counter. Counters are per-node monotonic: a
 * coordinator uses its hybrid logical clock (core/hlc.ts) as its counter,
 * which never repeats across restarts because its high-water mark is
 * persisted, and which a replica checks against what it holds
 * (version.ts `staleFloor`) for the cases persistence cannot cover.
 */
export type VClock = Readonly<Record<string, number>>;

export const Order = {
  Before: 'before',
  After: 'after',
  Equal: 'equal',
  Concurrent: 'concurrent',
} as const;
export type Order = (typeof Order)[keyof typeof Order];

export const emptyClock: VClock = Object.freeze({});

/**
 * A clock's counter for `node`: own entries only, so that node ids such as
 * `constructor` or `__proto__` (valid tokens) never read Object.prototype.
 */
export function counterOf(clock: VClock, node: string): number {
  return Object.hasOwn(clock, node) ? (clock[node] ?? 0) : 0;
}

/**
 * Sets an own entry, even for `__proto__`, the one accessor of
 * Object.prototype (plain assignment would call its setter). Every other
 * name is assigned: assignment makes an own property over a writable data
 * property of the prototype (`constructor`, `toString`), and defineProperty
 * on every entry was 2.4% of a worker's main thread at C=128 (decoding clocks).
 */
export function setCounter(clock: Record<string, number>, node: string, counter: number): void {
  if (node === '__proto__') Object.defineProperty(clock, node, { value: counter, enumerable: true, writable: true, configurable: true });
  else clock[node] = counter;
}

/** True when `a` has seen everything `b` has seen (a >= b). */
export function descends(a: VClock, b: VClock): boolean {
  // for-in rather than Object.keys: no array per call (compare runs twice per version pair on every
  // write). An inherited key reads as 0 through counterOf, so only own entries can decide.
  for (const node in b) {
    if (counterOf(a, node) < counterOf(b, node)) return false;
  }
  return true;
}

/** How `a` relates to `b`: Before means a happened before b. */
export function compare(a: VClock, b: VClock): Order {
  const aGeB = descends(a, b);
  const bGeA = descends(b, a);
  if (aGeB && bGeA) return Order.Equal;
  if (aGeB) return Order.After;
  if (bGeA) return Order.Before;
  return Order.Concurrent;
}

/** The least clock that descends both. */
export function merge(a: VClock, b: VClock): VClock {
  const out: Record<string, number> = { ...a };
  for (const node in b) {
    const counter = counterOf(b, node); // 0 for an inherited key: never set
    if (counterOf(out, node) < counter) setCounter(out, node, counter);
  }
  return out;
}

export function mergeAll(clocks: readonly VClock[]): VClock {
  let out: VClock = emptyClock;
  for (const c of clocks) out = merge(out, c);
  return out;
}

/** `clock` with `node`'s entry set to `counter`, pruned to `entriesMax`. */
export function advance(clock: VClock, node: string, counter: number, entriesMax: number): VClock {
  return prune({ ...clock, [node]: counter }, entriesMax, node);
}

/**
 * Drops the entries with the smallest counters until at most `entriesMax`
 * remain, never the entry of `keep`. Pruning can make a descendant look
 * concurrent (never the reverse), which costs a sibling, not a lost write
 * (Riak prunes by age in the same spirit).
 */
export function prune(clock: VClock, entriesMax: number, keep: string): VClock {
  let entries = 0;
  for (const node in clock) if (Object.hasOwn(clock, node)) entries++;
  if (entries <= entriesMax) return clock;
  const nodes = Object.keys(clock);
  const victims = nodes
    .filter((n) => n !== keep)
    .sort((x, y) => counterOf(clock, x) - counterOf(clock, y) || (x < y ? -1 : 1))
    .slice(0, nodes.length - entriesMax);
  const out: Record<string, number> = { ...clock };
  for (const v of victims) delete out[v];
  return out;
}

/** True when both clocks have exactly the same entries. */
export function clockEquals(a: VClock, b: VClock): boolean {
  return compare(a, b) === Order.Equal;
}
