/**
 * Token allocation (src/core/tokens.ts): issue 9's balance targets, measured
 * on clusters built one join at a time, as they grow in production.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { allocateTokens, initialTokens, replicatedOwnership, ringSize, type PlacedToken } from '../../src/core/tokens.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_130);
const replication = 3;

interface Growth {
  size: number;
  /** max / mean of replicated ownership, each node's divided by its share of the capacity. */
  spread: number;
  /** The joiner's replicated ownership over its ideal share (what the join moved, relative to ideal). */
  moved: number;
  /** The largest load any other node gained in the join (only the joiner should gain). */
  othersGained: number;
}

function grow(sizeMax: number, vnodes: (n: number) => number): Growth[] {
  const placed: PlacedToken[] = [];
  const caps = new Map<string, number>();
  const out: Growth[] = [];
  let before = new Map<string, number>();
  for (let n = 1; n <= sizeMax; n++) {
    const id = `n${n}`;
    caps.set(id, vnodes(n));
    for (const position of allocateTokens(placed, id, vnodes(n), caps, replication)) placed.push({ position, nodeId: id });
    const own = replicatedOwnership(placed, replication);
    const total = [...caps.values()].reduce((a, b) => a + b, 0);
    const norm = [...own].map(([k, load]) => load / ((Math.min(replication, n) * caps.get(k)!) / total));
    const mean = norm.reduce((a, b) => a + b, 0) / norm.length;
    let othersGained = 0;
    for (const [k, load] of own) if (k !== id) othersGained = Math.max(othersGained, load - (before.get(k) ?? 0));
    out.push({ size: n, spread: Math.max(...norm) / mean, moved: own.get(id)! / ((Math.min(replication, n) * caps.get(id)!) / total), othersGained });
    before = own;
  }
  return out;
}

describe('token allocation', () => {
  const homogeneous = grow(64, () => 10);

  it('tokens - with 10 virtual nodes and N=3, max/mean of replicated ownership is at most 1.10 at every size from 3 to 64', () => {
    const worst = homogeneous.filter((g) => g.size >= 3).reduce((a, b) => (b.spread > a.spread ? b : a));
    console.log(`# worst max/mean ${worst.spread.toFixed(3)} at ${worst.size} nodes`);
    for (const g of homogeneous) if (g.size >= 3) assert.ok(g.spread <= 1.1, `${g.size} nodes: max/mean ${g.spread.toFixed(3)}`);
  });

  it('tokens - a join moves at most 1.1x the ideal 1/(n+1) share, and only to the joining node', () => {
    const worst = homogeneous.filter((g) => g.size >= 4).reduce((a, b) => (b.moved > a.moved ? b : a));
    console.log(`# worst join moved ${worst.moved.toFixed(3)}x the ideal share, joining as node ${worst.size}`);
    for (const g of homogeneous) {
      if (g.size < 4) continue;
      assert.ok(g.moved <= 1.1, `join of node ${g.size}: ${g.moved.toFixed(3)}x the ideal share`);
      assert.ok(g.othersGained <= 1e-9, `join of node ${g.size}: another node gained ${g.othersGained}`);
    }
  });

  it('tokens - a node with 20 virtual nodes owns about twice what a node with 10 owns', () => {
    const placed: PlacedToken[] = [];
    const caps = new Map<string, number>();
    for (let n = 1; n <= 12; n++) {
      const id = `n${n}`;
      const v = n === 7 ? 20 : 10;
      caps.set(id, v);
      for (const position of allocateTokens(placed, id, v, caps, replication)) placed.push({ position, nodeId: id });
    }
    const own = replicatedOwnership(placed, replication);
    const others = [...own].filter(([k]) => k !== 'n7').map(([, v]) => v);
    const ratio = own.get('n7')! / (others.reduce((a, b) => a + b, 0) / others.length);
    console.log(`# a 20-vnode node owns ${ratio.toFixed(2)}x a 10-vnode node`);
    assert.ok(ratio >= 1.8 && ratio <= 2.2, `ratio ${ratio}`);
  });

  it('tokens - the initial layout of a cluster that starts together is the same on every node', () => {
    const a = initialTokens(new Map([['n1', 10], ['n2', 10], ['n3', 10]]), replication);
    const b = initialTokens(new Map([['n3', 10], ['n1', 10], ['n2', 10]]), replication);
    assert.deepEqual([...a].sort(), [...b].sort());
    assert.equal(new Set([...a.values()].flat()).size, 30);
  });

  it(`tokens - allocation gives the asked number of new, distinct positions on the ring (seed ${seed})`, () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 24 }), { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 24 }), (existing, count) => {
        const placed: PlacedToken[] = [];
        const caps = new Map<string, number>();
        existing.forEach((v, i) => {
          caps.set(`m${i}`, v);
          for (const position of allocateTokens(placed, `m${i}`, v, caps, replication)) placed.push({ position, nodeId: `m${i}` });
        });
        caps.set('new', count);
        const mine = allocateTokens(placed, 'new', count, caps, replication);
        assert.equal(mine.length, count);
        const all = new Set([...placed.map((t) => t.position), ...mine]);
        assert.equal(all.size, placed.length + count, 'no position is taken twice');
        for (const p of mine) assert.ok(p >= 0n && p < ringSize);
      }),
      { seed, numRuns: 60 },
    );
  });
});
