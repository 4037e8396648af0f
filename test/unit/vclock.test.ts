/**
 * Vector clocks (src/core/vclock.ts).
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>); a
 * failing property prints its seed and path, and the same seed replays it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  advance,
  clockEquals,
  compare,
  counterOf,
  descends,
  emptyClock,
  merge,
  mergeAll,
  Order,
  prune,
  setCounter,
  type VClock,
} from '../../src/core/vclock.js';

const seed = Number(process.env['FC_SEED'] ?? 20_250_102);
const runs = (numRuns: number) => ({ seed, numRuns });

// Few node ids and small counters, so that random clocks are often ordered,
// equal or concurrent rather than almost always concurrent.
const nodeArb = fc.constantFrom('a', 'b', 'c', 'd', 'e');
const clockArb: fc.Arbitrary<VClock> = fc.dictionary(nodeArb, fc.integer({ min: 1, max: 4 }), { maxKeys: 5, noNullPrototype: true });
const wideClockArb: fc.Arbitrary<VClock> = fc.dictionary(
  fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'x', 'y', '1', '2'), minLength: 1, maxLength: 3 }),
  fc.integer({ min: 1, max: 1_000 }),
  { maxKeys: 40, noNullPrototype: true },
);

const mirror: Record<Order, Order> = {
  [Order.Before]: Order.After,
  [Order.After]: Order.Before,
  [Order.Equal]: Order.Equal,
  [Order.Concurrent]: Order.Concurrent,
};

describe('vclock - descends and compare', () => {
  it('vclock - every clock descends the empty clock, and the empty clock only itself', () => {
    assert.equal(descends({ a: 1 }, emptyClock), true);
    assert.equal(descends(emptyClock, emptyClock), true);
    assert.equal(descends(emptyClock, { a: 1 }), false);
  });

  it('vclock - compare names before, after, equal and concurrent', () => {
    assert.equal(compare({}, {}), Order.Equal);
    assert.equal(compare({ a: 1, b: 2 }, { b: 2, a: 1 }), Order.Equal);
    assert.equal(compare({ a: 1 }, { a: 2 }), Order.Before);
    assert.equal(compare({ a: 1 }, { a: 1, b: 1 }), Order.Before);
    assert.equal(compare({ a: 2, b: 1 }, { a: 1 }), Order.After);
    assert.equal(compare({ a: 1 }, { b: 1 }), Order.Concurrent);
    assert.equal(compare({ a: 2, b: 1 }, { a: 1, b: 2 }), Order.Concurrent);
    assert.equal(compare({}, { a: 1 }), Order.Before);
  });

  it('vclock - a missing entry counts as zero', () => {
    assert.equal(compare({ a: 0 }, {}), Order.Equal);
    assert.equal(clockEquals({ a: 1, b: 0 }, { a: 1 }), true);
  });

  it('vclock - clockEquals is true only for equal clocks', () => {
    assert.equal(clockEquals({ a: 1 }, { a: 1 }), true);
    assert.equal(clockEquals({ a: 1 }, { a: 2 }), false);
    assert.equal(clockEquals({ a: 1 }, { b: 1 }), false);
  });

  it(`vclock - compare is antisymmetric (seed ${seed})`, () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        assert.equal(compare(b, a), mirror[compare(a, b)]);
      }),
      runs(500),
    );
  });

  it(`vclock - compare agrees with descends both ways (seed ${seed})`, () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const order = compare(a, b);
        assert.equal(descends(a, b), order === Order.After || order === Order.Equal);
        assert.equal(descends(b, a), order === Order.Before || order === Order.Equal);
      }),
      runs(500),
    );
  });

  it(`vclock - descends is reflexive and transitive (seed ${seed})`, () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        assert.equal(descends(a, a), true);
        if (descends(a, b) && descends(b, c)) assert.equal(descends(a, c), true);
      }),
      runs(500),
    );
  });

  it(`vclock - descends matches the entrywise definition (seed ${seed})`, () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        const ids = new Set([...Object.keys(a), ...Object.keys(b)]);
        const expected = [...ids].every((id) => (a[id] ?? 0) >= (b[id] ?? 0));
        assert.equal(descends(a, b), expected);
      }),
      runs(500),
    );
  });

  it(
    'vclock - node ids named like Object.prototype members compare like any other id',
    () => {
      // isValidToken accepts these ids; a clock decoded from JSON can hold "__proto__" as an own key.
      const protoClock = JSON.parse('{"__proto__":3}') as VClock;
      assert.equal(descends({}, { constructor: 3 }), false);
      assert.equal(compare({}, { constructor: 3 }), Order.Before);
      assert.equal(compare({ a: 4 }, { a: 3, toString: 5 }), Order.Concurrent);
      assert.deepEqual(merge({}, { constructor: 3 }), { constructor: 3 });
      assert.equal(descends({}, protoClock), false);
      assert.deepEqual(Object.keys(merge({}, protoClock)), ['__proto__']);
    },
  );

  it('vclock - only a clock\'s own entries count: enumerable keys inherited from its prototype are not entries', () => {
    const inherited = Object.assign(Object.create({ x: 5 }) as Record<string, number>, { a: 1 });
    assert.equal(descends({ a: 1 }, inherited), true);
    assert.equal(compare({ a: 1 }, inherited), Order.Equal);
    assert.deepEqual(merge({}, inherited), { a: 1 });
    assert.equal(prune(inherited, 1, 'a'), inherited, 'one own entry is within a limit of one');
  });

  it('vclock - setCounter makes an own entry for every name Object.prototype has, and leaves the prototype alone', () => {
    const names = Object.getOwnPropertyNames(Object.prototype);
    assert.ok(names.includes('__proto__') && names.includes('constructor'));
    const clock: Record<string, number> = {};
    names.forEach((name, i) => setCounter(clock, name, i + 1));
    assert.deepEqual(Object.keys(clock).sort(), [...names].sort());
    names.forEach((name, i) => assert.equal(counterOf(clock, name), i + 1, name));
    assert.equal(Object.getPrototypeOf(clock), Object.prototype, 'the clock keeps its prototype');
    assert.equal(typeof Object.prototype.toString, 'function', 'the prototype keeps its members');
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
  });
});

describe('vclock - merge', () => {
  it('vclock - merge takes the larger counter of each entry', () => {
    assert.deepEqual(merge({ a: 1, b: 5 }, { b: 3, c: 2 }), { a: 1, b: 5, c: 2 });
    assert.deepEqual(mergeAll([{ a: 1 }, { b: 2 }, { a: 3 }]), { a: 3, b: 2 });
    assert.deepEqual(mergeAll([]), {});
  });

  it('vclock - merge does not change its inputs', () => {
    const a = { a: 1 };
    const b = { a: 2, b: 1 };
    merge(a, b);
    assert.deepEqual(a, { a: 1 });
    assert.deepEqual(b, { a: 2, b: 1 });
  });

  it(`vclock - merge descends both inputs and is the least such clock (seed ${seed})`, () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        const m = merge(a, b);
        assert.equal(descends(m, a), true);
        assert.equal(descends(m, b), true);
        if (descends(c, a) && descends(c, b)) assert.equal(descends(c, m), true);
      }),
      runs(500),
    );
  });

  it(`vclock - merge is commutative, associative and idempotent (seed ${seed})`, () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        assert.deepEqual(merge(a, b), merge(b, a));
        assert.deepEqual(merge(merge(a, b), c), merge(a, merge(b, c)));
        assert.deepEqual(merge(a, a), a);
        assert.deepEqual(merge(merge(a, b), b), merge(a, b));
      }),
      runs(500),
    );
  });

  it(`vclock - mergeAll is merge folded over the list in any order (seed ${seed})`, () => {
    const arb = fc.array(clockArb, { maxLength: 6 }).chain((cs) => fc.tuple(fc.constant(cs), fc.shuffledSubarray(cs, { minLength: cs.length, maxLength: cs.length })));
    fc.assert(
      fc.property(arb, ([cs, shuffled]) => {
        const folded = cs.reduce<VClock>((acc, c) => merge(acc, c), {});
        assert.deepEqual(mergeAll(cs), folded);
        assert.deepEqual(mergeAll(shuffled), folded);
      }),
      runs(300),
    );
  });
});

describe('vclock - advance', () => {
  it('vclock - advance sets the entry of the node and keeps the others', () => {
    assert.deepEqual(advance({ a: 1, b: 2 }, 'a', 7, 32), { a: 7, b: 2 });
    assert.deepEqual(advance({}, 'a', 1, 32), { a: 1 });
  });

  it(`vclock - advance with a fresh counter and room to spare is strictly after the input (seed ${seed})`, () => {
    fc.assert(
      fc.property(clockArb, nodeArb, fc.nat(10), fc.integer({ min: 0, max: 3 }), (clock, node, last, room) => {
        const counter = Math.max(last, clock[node] ?? 0) + 1;
        const next = advance(clock, node, counter, Object.keys(clock).length + 1 + room);
        assert.equal(compare(next, clock), Order.After);
        assert.equal(next[node], counter);
      }),
      runs(500),
    );
  });

  it(`vclock - advance keeps the advanced node's entry even when it prunes (seed ${seed})`, () => {
    fc.assert(
      fc.property(wideClockArb, fc.constantFrom('a', 'zz', 'new'), fc.integer({ min: 1, max: 8 }), (clock, node, entriesMax) => {
        const counter = (clock[node] ?? 0) + 1;
        const next = advance(clock, node, counter, entriesMax);
        assert.ok(Object.keys(next).length <= entriesMax);
        assert.equal(next[node], counter);
      }),
      runs(300),
    );
  });

  it('vclock - advance past entriesMax may make the result concurrent with its input, as documented', () => {
    const clock = { a: 5, b: 6 };
    const next = advance(clock, 'c', 7, 2);
    assert.deepEqual(next, { b: 6, c: 7 });
    assert.equal(compare(next, clock), Order.Concurrent);
  });
});

describe('vclock - prune', () => {
  it('vclock - prune returns the same clock when it is within the limit', () => {
    const clock = { a: 1, b: 2 };
    assert.equal(prune(clock, 2, 'a'), clock);
    assert.equal(prune(clock, 5, 'zz'), clock);
  });

  it('vclock - prune drops the smallest counters first, ties by node id', () => {
    assert.deepEqual(prune({ a: 4, b: 1, c: 3, d: 2 }, 2, 'zz'), { a: 4, c: 3 });
    assert.deepEqual(prune({ a: 1, b: 1, c: 1 }, 2, 'zz'), { b: 1, c: 1 });
  });

  it('vclock - prune never drops the kept node, even when its counter is the smallest', () => {
    assert.deepEqual(prune({ a: 1, b: 2, c: 3, d: 4 }, 2, 'a'), { a: 1, d: 4 });
  });

  it(`vclock - prune keeps at most entriesMax entries, never keep, and drops the smallest counters (seed ${seed})`, () => {
    const keepArb = fc.oneof(fc.constantFrom('a', 'b', 'x'), fc.constant('absent-node'));
    fc.assert(
      fc.property(wideClockArb, fc.integer({ min: 1, max: 12 }), keepArb, (clock, entriesMax, keep) => {
        const pruned = prune(clock, entriesMax, keep);
        const before = Object.keys(clock);
        const after = Object.keys(pruned);
        assert.equal(after.length, Math.min(before.length, entriesMax));
        if (keep in clock) assert.equal(pruned[keep], clock[keep]);
        for (const id of after) assert.equal(pruned[id], clock[id], 'kept entries are unchanged');
        assert.equal(descends(clock, pruned), true, 'pruning only forgets');
        const dropped = before.filter((id) => !(id in pruned));
        const keptOthers = after.filter((id) => id !== keep);
        for (const d of dropped) {
          assert.notEqual(d, keep);
          for (const k of keptOthers) assert.ok(clock[d]! <= clock[k]!, `dropped ${d}=${clock[d]} but kept ${k}=${clock[k]}`);
        }
      }),
      runs(500),
    );
  });
});
