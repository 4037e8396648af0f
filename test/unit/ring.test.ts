/**
 * The consistent-hashing ring and its hash (src/core/ring.ts, src/core/hash.ts).
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>); a
 * failing property prints its seed and path, and the same seed replays it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { hash64, tokenOf } from '../../src/core/hash.js';
import { limits } from '../../src/core/limits.js';
import { buildRing, keyHash, keyHashesRemembered, owner, preferenceList, successorIndex, type Ring, type RingMember } from '../../src/core/ring.js';

const seed = Number(process.env['FC_SEED'] ?? 20_250_101);
const runs = (numRuns: number) => ({ seed, numRuns });

const positionMax = (1n << 64n) - 1n;
const ids5 = ['n1', 'n2', 'n3', 'n4', 'n5'];

/** 100k keys as the brief states them; hashed once for every distribution test. */
const keyPositions: readonly bigint[] = Array.from({ length: 100_000 }, (_, i) => keyHash(`key-${i}`));
/** A smaller sample for the movement tests, which walk preference lists. */
const movePositions = keyPositions.slice(0, 10_000);

function members(ids: readonly string[], virtualNodes: number): RingMember[] {
  return ids.map((id) => ({ id, virtualNodes }));
}

function shares(ring: Ring, positions: readonly bigint[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of positions) {
    const o = owner(ring, p)!;
    counts.set(o, (counts.get(o) ?? 0) + 1);
  }
  return counts;
}

/** A handmade ring: positions and ids given directly (the Ring is plain data). */
function handRing(tokens: readonly [bigint, string][]): Ring {
  return {
    tokens: tokens.map(([position, nodeId]) => ({ position, nodeId })),
    nodeCount: new Set(tokens.map(([, id]) => id)).size,
  };
}

// Arbitraries: a small member set with unique ids, a position anywhere on the ring.
const memberArb = fc.record({
  id: fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', '1', '2', '-', '_'), minLength: 1, maxLength: 4 }),
  virtualNodes: fc.integer({ min: 1, max: 16 }),
});
const membersArb = fc.uniqueArray(memberArb, { minLength: 1, maxLength: 8, selector: (m) => m.id });
const positionArb = fc.bigInt({ min: 0n, max: positionMax });
/** Any UTF-16 code unit, lone surrogates included (fast-check's 'binary' unit costs a second to set up). */
const utf16Unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

function permutation<T>(xs: readonly T[]): fc.Arbitrary<T[]> {
  return fc.shuffledSubarray([...xs], { minLength: xs.length, maxLength: xs.length });
}

describe('hash', () => {
  it('hash - is the first 8 bytes of MD5 read big-endian', () => {
    // MD5("") = d41d8cd98f00b204 e9800998ecf8427e
    assert.equal(hash64(''), 0xd41d8cd98f00b204n);
    // MD5("a") = 0cc175b9c0f1b6a8 31c399e269772661
    assert.equal(hash64('a'), 0x0cc175b9c0f1b6a8n);
  });

  it('hash - hashes the UTF-8 bytes of the input', () => {
    const md5Head = (bytes: Buffer) => createHash('md5').update(bytes).digest().readBigUInt64BE(0);
    assert.equal(hash64('é'), md5Head(Buffer.from([0xc3, 0xa9])));
    assert.notEqual(hash64('é'), md5Head(Buffer.from([0xe9])), 'not Latin-1');
  });

  it(`hash - is deterministic and always a 64-bit unsigned value (seed ${seed})`, () => {
    fc.assert(
      fc.property(fc.string({ unit: utf16Unit, maxLength: 32 }), (s) => {
        const h = hash64(s);
        assert.equal(h, hash64(s));
        assert.ok(h >= 0n && h <= positionMax);
      }),
      runs(300),
    );
  });

  it('hash - a token is the hash of "<id>#<index>"', () => {
    assert.equal(tokenOf('n1', 0), hash64('n1#0'));
    assert.equal(tokenOf('n1', 7), hash64('n1#7'));
    assert.notEqual(tokenOf('n1', 0), tokenOf('n1', 1));
    assert.notEqual(tokenOf('n1', 0), tokenOf('n2', 0));
  });

  it('hash - keyHash is hash64 of the key', () => {
    assert.equal(keyHash('user.42'), hash64('user.42'));
  });
});

describe('hash - keyHash remembers a bounded number of keys', () => {
  it('hash - keyHash answers as hash64 past the bound, a key asked again among them, and never holds more than keyHashesRememberedMax keys', () => {
    const max = limits.keyHashesRememberedMax;
    let most = 0;
    for (let i = 0; i < 2 * max + 10; i++) {
      const key = `remembered-${i}`;
      assert.equal(keyHash(key), hash64(key));
      if (i % 7 === 0) assert.equal(keyHash(`remembered-${Math.floor(i / 2)}`), hash64(`remembered-${Math.floor(i / 2)}`), 'an earlier key, remembered or not');
      most = Math.max(most, keyHashesRemembered());
    }
    assert.equal(most, max, 'it filled up to the bound and no further');
    assert.ok(keyHashesRemembered() >= 1 && keyHashesRemembered() <= max);
  });
});

describe('ring - construction', () => {
  it('ring - an empty member list gives an empty ring', () => {
    const ring = buildRing([]);
    assert.deepEqual(ring.tokens, []);
    assert.equal(ring.nodeCount, 0);
    assert.equal(owner(ring, 123n), undefined);
    assert.deepEqual(preferenceList(ring, 123n, 3), []);
  });

  it('ring - holds one token per virtual node, sorted by position', () => {
    const ring = buildRing([
      { id: 'a', virtualNodes: 3 },
      { id: 'b', virtualNodes: 5 },
    ]);
    assert.equal(ring.tokens.length, 8);
    assert.equal(ring.nodeCount, 2);
    for (let i = 1; i < ring.tokens.length; i++) assert.ok(ring.tokens[i - 1]!.position <= ring.tokens[i]!.position);
    const aPositions = ring.tokens.filter((t) => t.nodeId === 'a').map((t) => t.position);
    assert.deepEqual(new Set(aPositions), new Set([0, 1, 2].map((i) => tokenOf('a', i))));
  });

  it(`ring - the same members in any order give identical tokens and preference lists (seed ${seed})`, () => {
    const arb = membersArb.chain((ms) => fc.tuple(fc.constant(ms), permutation(ms), fc.array(positionArb, { minLength: 1, maxLength: 20 })));
    fc.assert(
      fc.property(arb, fc.integer({ min: 1, max: 5 }), ([ms, shuffled, positions], n) => {
        const a = buildRing(ms);
        const b = buildRing(shuffled);
        assert.deepEqual(b.tokens, a.tokens);
        assert.equal(b.nodeCount, a.nodeCount);
        for (const p of positions) {
          assert.deepEqual(preferenceList(b, p, n), preferenceList(a, p, n));
          assert.equal(owner(b, p), owner(a, p));
        }
      }),
      runs(200),
    );
  });

  it('ring - a fixed member set gives the same ring when rebuilt', () => {
    const a = buildRing(members(ids5, 10));
    const b = buildRing(members([...ids5].reverse(), 10));
    assert.deepEqual(a, b);
  });
});

describe('ring - successor and wrap-around', () => {
  const ring = handRing([
    [10n, 'a'],
    [20n, 'b'],
    [30n, 'c'],
  ]);

  it('ring - a position on a token belongs to that token', () => {
    assert.equal(successorIndex(ring, 10n), 0);
    assert.equal(successorIndex(ring, 20n), 1);
    assert.equal(owner(ring, 30n), 'c');
  });

  it('ring - a position between tokens belongs to the next one clockwise', () => {
    assert.equal(successorIndex(ring, 0n), 0);
    assert.equal(successorIndex(ring, 11n), 1);
    assert.equal(owner(ring, 29n), 'c');
  });

  it('ring - a position above the largest token wraps to the first token', () => {
    assert.equal(successorIndex(ring, 31n), 0);
    assert.equal(owner(ring, 31n), 'a');
    assert.equal(owner(ring, positionMax), 'a');
    assert.deepEqual(preferenceList(ring, 31n, 3), ['a', 'b', 'c']);
    assert.deepEqual(preferenceList(ring, 25n, 3), ['c', 'a', 'b']);
  });

  it('ring - wrap-around holds on a real ring', () => {
    const real = buildRing(members(ids5, 10));
    const last = real.tokens[real.tokens.length - 1]!;
    const first = real.tokens[0]!;
    assert.ok(last.position < positionMax, 'this ring happens to leave room above its last token');
    assert.equal(owner(real, last.position + 1n), first.nodeId);
    assert.equal(owner(real, positionMax), first.nodeId);
    assert.equal(owner(real, 0n), first.nodeId);
    assert.equal(owner(real, last.position), last.nodeId);
  });

  it(`ring - successorIndex is the first token at or after the position (seed ${seed})`, () => {
    fc.assert(
      fc.property(membersArb, positionArb, (ms, p) => {
        const r = buildRing(ms);
        const i = successorIndex(r, p);
        const firstAtOrAfter = r.tokens.findIndex((t) => t.position >= p);
        assert.equal(i, firstAtOrAfter === -1 ? 0 : firstAtOrAfter);
      }),
      runs(300),
    );
  });
});

describe('ring - preference list', () => {
  it('ring - the preference list skips further tokens of nodes already chosen', () => {
    const ring = handRing([
      [10n, 'a'],
      [20n, 'a'],
      [30n, 'b'],
      [40n, 'a'],
      [50n, 'c'],
    ]);
    assert.deepEqual(preferenceList(ring, 0n, 3), ['a', 'b', 'c']);
    assert.deepEqual(preferenceList(ring, 35n, 2), ['a', 'c']);
    assert.deepEqual(preferenceList(ring, 45n, 3), ['c', 'a', 'b']);
  });

  it('ring - the preference list is shorter when the ring has fewer nodes than N', () => {
    const ring = buildRing(members(['a', 'b'], 8));
    for (const p of movePositions.slice(0, 100)) {
      const list = preferenceList(ring, p, 3);
      assert.equal(list.length, 2);
      assert.deepEqual([...list].sort(), ['a', 'b']);
    }
  });

  it('ring - asking for zero replicas gives an empty list', () => {
    assert.deepEqual(preferenceList(buildRing(members(ids5, 4)), 0n, 0), []);
  });

  it('ring - a one-node ring puts that node first for every key', () => {
    const ring = buildRing(members(['solo'], 3));
    for (const p of movePositions.slice(0, 100)) assert.deepEqual(preferenceList(ring, p, 3), ['solo']);
  });

  it(`ring - the preference list has min(N, nodes) distinct nodes and starts with the owner (seed ${seed})`, () => {
    fc.assert(
      fc.property(membersArb, positionArb, fc.integer({ min: 1, max: 10 }), (ms, p, n) => {
        const ring = buildRing(ms);
        const list = preferenceList(ring, p, n);
        assert.equal(list.length, Math.min(n, ms.length));
        assert.equal(new Set(list).size, list.length);
        assert.equal(list[0], owner(ring, p));
        for (const id of list) assert.ok(ms.some((m) => m.id === id));
      }),
      runs(300),
    );
  });

  it(`ring - a shorter preference list is a prefix of a longer one (seed ${seed})`, () => {
    fc.assert(
      fc.property(membersArb, positionArb, fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 4 }), (ms, p, n, extra) => {
        const ring = buildRing(ms);
        const short = preferenceList(ring, p, n);
        const long = preferenceList(ring, p, n + extra);
        assert.deepEqual(long.slice(0, short.length), short);
      }),
      runs(200),
    );
  });
});

describe('ring - distribution', () => {
  /*
   * Bounds. With v random tokens per node, a node's share of the ring is
   * about Gamma(v)/v times the mean. Its 0.05% and 99.95% quantiles are
   * [0.27, 2.37] for v = 10 and [0.70, 1.36] for v = 100. MD5 tokens are
   * fixed, so these tests either always pass or always fail; the bounds are
   * set at those quantiles so that a sound ring passes with margin and a
   * broken one (tokens clustered, vnodes ignored, a bad hash) fails.
   *   10 vnodes:  every share in [0.25, 2.4] x mean (observed 0.62 .. 1.85).
   *   100 vnodes: every share within +-35% of the mean (observed 0.82 .. 1.11).
   */
  function checkShares(virtualNodes: number, low: number, high: number): Map<string, number> {
    const counts = shares(buildRing(members(ids5, virtualNodes)), keyPositions);
    const mean = keyPositions.length / ids5.length;
    assert.deepEqual([...counts.keys()].sort(), ids5, 'every node owns some keys');
    for (const [id, c] of counts) {
      const ratio = c / mean;
      assert.ok(ratio >= low && ratio <= high, `${id} owns ${c} keys, ${ratio.toFixed(3)} x the mean, outside [${low}, ${high}]`);
    }
    return counts;
  }

  function spread(counts: Map<string, number>): number {
    const values = [...counts.values()];
    return Math.max(...values) / Math.min(...values);
  }

  it('ring - 5 nodes x 10 vnodes over 100k keys: every share within [0.25, 2.4] x mean', () => {
    checkShares(10, 0.25, 2.4);
  });

  it('ring - 5 nodes x 100 vnodes over 100k keys: every share within 35% of the mean', () => {
    checkShares(100, 0.65, 1.35);
  });

  it('ring - more virtual nodes spread keys more evenly', () => {
    const coarse = shares(buildRing(members(ids5, 10)), keyPositions);
    const fine = shares(buildRing(members(ids5, 100)), keyPositions);
    assert.ok(spread(fine) < spread(coarse), `max/min ${spread(fine).toFixed(2)} with 100 vnodes vs ${spread(coarse).toFixed(2)} with 10`);
  });

  it('ring - a node with twice the virtual nodes gets roughly twice the keys (1.5x to 2.5x)', () => {
    // 100 vnodes each: a share's spread is about +-9%, so the ratio of the big
    // node's share to the mean small share sits near 2 within about +-25%.
    const ring = buildRing([...members(['n1', 'n2', 'n3', 'n4'], 100), { id: 'big', virtualNodes: 200 }]);
    const counts = shares(ring, keyPositions);
    const big = counts.get('big') ?? 0;
    const meanSmall = (keyPositions.length - big) / 4;
    const ratio = big / meanSmall;
    assert.ok(ratio >= 1.5 && ratio <= 2.5, `big/small = ${ratio.toFixed(3)}`);
  });
});

describe('ring - membership changes', () => {
  const before = buildRing(members(ids5, 32));

  for (const removed of ids5) {
    it(`ring - removing ${removed} moves only the keys it owned, to their next replica`, () => {
      const after = buildRing(members(ids5.filter((id) => id !== removed), 32));
      let moved = 0;
      for (const p of movePositions) {
        const oldList = preferenceList(before, p, 3);
        const newOwner = owner(after, p);
        if (oldList[0] === removed) {
          moved++;
          assert.equal(newOwner, oldList[1], 'a key of the removed node goes to its second replica');
        } else {
          assert.equal(newOwner, oldList[0]);
        }
      }
      assert.ok(moved > 0);
    });
  }

  it('ring - after a removal, each old preference list minus the removed node is a prefix of the new list', () => {
    for (const removed of ids5) {
      const after = buildRing(members(ids5.filter((id) => id !== removed), 32));
      for (const p of movePositions) {
        const kept = preferenceList(before, p, 3).filter((id) => id !== removed);
        assert.deepEqual(preferenceList(after, p, 3).slice(0, kept.length), kept);
      }
    }
  });

  it('ring - adding a node only takes keys: a key changes owner only to the new node', () => {
    const after = buildRing([...members(ids5, 32), { id: 'n6', virtualNodes: 32 }]);
    let taken = 0;
    for (const p of movePositions) {
      const was = owner(before, p);
      const now = owner(after, p);
      if (now !== was) {
        taken++;
        assert.equal(now, 'n6');
      }
      const kept = preferenceList(after, p, 3).filter((id) => id !== 'n6');
      assert.deepEqual(preferenceList(before, p, 3).slice(0, kept.length), kept);
    }
    assert.ok(taken > 0);
  });

  it(`ring - removing any member keeps owners and list order of everyone else (seed ${seed})`, () => {
    const arb = fc
      .uniqueArray(memberArb, { minLength: 2, maxLength: 8, selector: (m) => m.id })
      .chain((ms) => fc.tuple(fc.constant(ms), fc.integer({ min: 0, max: ms.length - 1 })));
    fc.assert(
      fc.property(arb, fc.array(positionArb, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 5 }), ([ms, which], positions, n) => {
        const removed = ms[which]!.id;
        const full = buildRing(ms);
        const less = buildRing(ms.filter((m) => m.id !== removed));
        for (const p of positions) {
          const was = owner(full, p);
          if (was !== removed) assert.equal(owner(less, p), was);
          const kept = preferenceList(full, p, n).filter((id) => id !== removed);
          assert.deepEqual(preferenceList(less, p, n).slice(0, kept.length), kept);
        }
      }),
      runs(200),
    );
  });
});
