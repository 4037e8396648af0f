/**
 * Membership view and failure detection (src/core/membership.ts).
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>); a
 * failing property prints its seed and path, and the same seed replays it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addClaim,
  applyHeartbeat,
  confirms,
  judgeHeartbeat,
  MemberStatus,
  ringChanged,
  settleClaim,
  statusOf,
  Verdict,
  type Claim,
  type Member,
  type MemberView,
  type PendingClaims,
} from '../../src/core/membership.js';

const seed = Number(process.env['FC_SEED'] ?? 20_250_105);
const runs = (numRuns: number) => ({ seed, numRuns });

const empty: MemberView = new Map();

function viewOf(...ms: Member[]): MemberView {
  return new Map(ms.map((m) => [m.id, m]));
}

function member(id: string, heartbeat: number, lastHeardMs: number, virtualNodes = 8, incarnation = 'i1'): Member {
  return { id, state: 'up', stateVersion: 0, synced: '', plans: '', virtualNodes, incarnation, heartbeat, lastHeardMs };
}

describe('membership - applyHeartbeat', () => {
  it('membership - a heartbeat from an unknown node adds it, heard now', () => {
    const view = applyHeartbeat(empty, { id: 'n1', virtualNodes: 8, incarnation: 'i1', heartbeat: 1 }, 1_000, 16);
    assert.deepEqual(view.get('n1'), member('n1', 1, 1_000));
    assert.equal(view.size, 1);
  });

  it('membership - a newer heartbeat updates the counter, the vnodes and the time heard', () => {
    const view = viewOf(member('n1', 1, 1_000));
    const next = applyHeartbeat(view, { id: 'n1', virtualNodes: 16, incarnation: 'i1', heartbeat: 2 }, 2_000, 16);
    assert.deepEqual(next.get('n1'), member('n1', 2, 2_000, 16));
  });

  it('membership - an older heartbeat is ignored and the same view comes back', () => {
    const view = viewOf(member('n1', 5, 1_000));
    const next = applyHeartbeat(view, { id: 'n1', virtualNodes: 32, incarnation: 'i1', heartbeat: 4 }, 9_000, 16);
    assert.equal(next, view);
    assert.deepEqual(next.get('n1'), member('n1', 5, 1_000));
  });

  it('membership - applyHeartbeat does not change the view it is given', () => {
    const view = viewOf(member('n1', 1, 1_000));
    applyHeartbeat(view, { id: 'n1', virtualNodes: 8, incarnation: 'i1', heartbeat: 2 }, 2_000, 16);
    applyHeartbeat(view, { id: 'n2', virtualNodes: 8, incarnation: 'i1', heartbeat: 1 }, 2_000, 16);
    assert.deepEqual(view, viewOf(member('n1', 1, 1_000)));
  });

  it('membership - a full view ignores new nodes but still hears known ones', () => {
    const view = viewOf(member('n1', 1, 1_000), member('n2', 1, 1_000));
    assert.equal(applyHeartbeat(view, { id: 'n3', virtualNodes: 8, incarnation: 'i1', heartbeat: 1 }, 2_000, 2), view);
    const next = applyHeartbeat(view, { id: 'n2', virtualNodes: 8, incarnation: 'i1', heartbeat: 2 }, 2_000, 2);
    assert.deepEqual(next.get('n2'), member('n2', 2, 2_000));
    assert.equal(next.size, 2);
  });

  it(
    'membership - a duplicate of the last heartbeat does not refresh liveness',
    () => {
      const view = viewOf(member('n1', 5, 1_000));
      const next = applyHeartbeat(view, { id: 'n1', virtualNodes: 8, incarnation: 'i1', heartbeat: 5 }, 9_000, 16);
      assert.equal(statusOf(next.get('n1')!, 'self', 9_000, 5_000), MemberStatus.Down);
    },
  );

  it(
    'membership - a heartbeat that changes nothing returns the same view',
    () => {
      const view = viewOf(member('n1', 5, 1_000));
      assert.equal(applyHeartbeat(view, { id: 'n1', virtualNodes: 8, incarnation: 'i1', heartbeat: 5 }, 1_000, 16), view);
    },
  );

  it(`membership - the view holds the largest counter heard from each node, at most membersMax nodes (seed ${seed})`, () => {
    const hbArb = fc.record({
      id: fc.constantFrom('n1', 'n2', 'n3', 'n4', 'n5'),
      virtualNodes: fc.integer({ min: 1, max: 64 }),
      incarnation: fc.constant('i1'),
      heartbeat: fc.nat(20),
    });
    fc.assert(
      fc.property(fc.array(hbArb, { maxLength: 30 }), fc.integer({ min: 1, max: 6 }), (hbs, membersMax) => {
        let view: MemberView = empty;
        hbs.forEach((hb, i) => {
          view = applyHeartbeat(view, hb, i, membersMax);
        });
        assert.ok(view.size <= membersMax);
        // Admission is first come, first served: the first membersMax distinct ids.
        const admitted = [...new Set(hbs.map((h) => h.id))].slice(0, membersMax);
        assert.deepEqual([...view.keys()].sort(), [...admitted].sort());
        for (const id of admitted) {
          const heard = hbs.filter((h) => h.id === id);
          const max = Math.max(...heard.map((h) => h.heartbeat));
          assert.equal(view.get(id)!.heartbeat, max);
        }
      }),
      runs(300),
    );
  });
});

describe('membership - statusOf', () => {
  it('membership - a node is up until failureTimeoutMs of silence has passed, then down', () => {
    const m = member('n1', 1, 1_000);
    assert.equal(statusOf(m, 'self', 1_000, 5_000), MemberStatus.Up);
    assert.equal(statusOf(m, 'self', 6_000, 5_000), MemberStatus.Up, 'exactly the timeout is still up');
    assert.equal(statusOf(m, 'self', 6_001, 5_000), MemberStatus.Down);
  });

  it('membership - self is always up, however long silent', () => {
    assert.equal(statusOf(member('me', 1, 0), 'me', 1e12, 5_000), MemberStatus.Up);
  });

  it('membership - a time heard ahead of now (a clock step back) counts as up', () => {
    assert.equal(statusOf(member('n1', 1, 10_000), 'self', 1_000, 5_000), MemberStatus.Up);
  });

  it(`membership - status is down exactly when silence exceeds the timeout (seed ${seed})`, () => {
    fc.assert(
      fc.property(fc.nat(1e9), fc.nat(1e9), fc.integer({ min: 1, max: 1e6 }), (heard, now, timeout) => {
        const expected = now - heard > timeout ? MemberStatus.Down : MemberStatus.Up;
        assert.equal(statusOf(member('n1', 1, heard), 'self', now, timeout), expected);
      }),
      runs(300),
    );
  });
});

describe('membership - ringChanged', () => {
  const base = viewOf(member('n1', 1, 0), member('n2', 1, 0));

  it('membership - the same members with new heartbeats do not change the ring', () => {
    assert.equal(ringChanged(base, base), false);
    assert.equal(ringChanged(base, viewOf(member('n2', 9, 500), member('n1', 7, 400))), false);
  });

  it('membership - a joined, removed or replaced member changes the ring', () => {
    assert.equal(ringChanged(base, viewOf(member('n1', 1, 0), member('n2', 1, 0), member('n3', 1, 0))), true);
    assert.equal(ringChanged(base, viewOf(member('n1', 1, 0))), true);
    assert.equal(ringChanged(base, viewOf(member('n1', 1, 0), member('n3', 1, 0))), true);
    assert.equal(ringChanged(empty, base), true);
    assert.equal(ringChanged(empty, empty), false);
  });

  it('membership - a changed vnode count changes the ring', () => {
    assert.equal(ringChanged(base, viewOf(member('n1', 1, 0), member('n2', 1, 0, 16))), true);
  });

  it('membership - applying a heartbeat changes the ring only when it adds a node or changes vnodes', () => {
    const same = applyHeartbeat(base, { id: 'n1', virtualNodes: 8, incarnation: 'i1', heartbeat: 2 }, 10, 16);
    assert.equal(ringChanged(base, same), false);
    const resized = applyHeartbeat(base, { id: 'n1', virtualNodes: 4, incarnation: 'i1', heartbeat: 2 }, 10, 16);
    assert.equal(ringChanged(base, resized), true);
    const grown = applyHeartbeat(base, { id: 'n3', virtualNodes: 8, incarnation: 'i1', heartbeat: 1 }, 10, 16);
    assert.equal(ringChanged(base, grown), true);
  });

  it(`membership - ringChanged is symmetric (seed ${seed})`, () => {
    const viewArb = fc
      .uniqueArray(fc.record({ id: fc.constantFrom('a', 'b', 'c', 'd'), virtualNodes: fc.integer({ min: 1, max: 3 }) }), {
        selector: (m) => m.id,
        maxLength: 4,
      })
      .map((ms) => viewOf(...ms.map((m) => member(m.id, 1, 0, m.virtualNodes))));
    fc.assert(
      fc.property(viewArb, viewArb, (a, b) => {
        assert.equal(ringChanged(a, b), ringChanged(b, a));
        assert.equal(ringChanged(a, a), false);
      }),
      runs(300),
    );
  });
});

describe('membership - judgeHeartbeat (nobody joins on hearsay)', () => {
  const view = viewOf(member('n1', 5, 1_000));
  const hb = (over: Partial<{ id: string; virtualNodes: number; incarnation: string; heartbeat: number }>) => ({ id: 'n1', virtualNodes: 8, incarnation: 'i1', heartbeat: 6, ...over });

  it('membership - a heartbeat from an id not admitted must be confirmed first', () => {
    assert.equal(judgeHeartbeat(view, hb({ id: 'n2' })), Verdict.Verify);
    assert.equal(judgeHeartbeat(empty, hb({})), Verdict.Verify);
  });

  it('membership - a known id with another incarnation (a restart, or a forgery) must be confirmed first', () => {
    assert.equal(judgeHeartbeat(view, hb({ incarnation: 'i2', heartbeat: 99 })), Verdict.Verify);
  });

  it('membership - an admitted incarnation with a larger counter is news; an equal or smaller one is stale', () => {
    assert.equal(judgeHeartbeat(view, hb({ heartbeat: 6 })), Verdict.News);
    assert.equal(judgeHeartbeat(view, hb({ heartbeat: 5 })), Verdict.Stale);
    assert.equal(judgeHeartbeat(view, hb({ heartbeat: 0 })), Verdict.Stale);
  });

  it('membership - an admitted incarnation claiming another vnode count is a conflict, whatever its counter', () => {
    assert.equal(judgeHeartbeat(view, hb({ virtualNodes: 1024, heartbeat: 6 })), Verdict.Conflict);
    assert.equal(judgeHeartbeat(view, hb({ virtualNodes: 1, heartbeat: 1 })), Verdict.Conflict);
  });

  it(`membership - only news changes the view, and news never changes the ring (seed ${seed})`, () => {
    const memberArb = fc.record({ id: fc.constantFrom('a', 'b', 'c'), virtualNodes: fc.integer({ min: 1, max: 3 }), incarnation: fc.constantFrom('x', 'y'), heartbeat: fc.nat(5) });
    fc.assert(
      fc.property(fc.uniqueArray(memberArb, { selector: (m) => m.id, maxLength: 3 }), memberArb, (ms, h) => {
        const v = viewOf(...ms.map((m) => member(m.id, m.heartbeat, 0, m.virtualNodes, m.incarnation)));
        const verdict = judgeHeartbeat(v, h);
        if (verdict === Verdict.News) {
          const next = applyHeartbeat(v, h, 1, 16);
          assert.notEqual(next, v);
          assert.equal(ringChanged(v, next), false, 'news from an admitted member never moves the ring');
        } else if (verdict === Verdict.Stale) {
          assert.equal(applyHeartbeat(v, h, 1, 16), v);
        }
        const known = v.get(h.id);
        assert.equal(verdict === Verdict.Verify, !known || known.incarnation !== h.incarnation);
      }),
      runs(300),
    );
  });
});

describe('membership - applyHeartbeat across incarnations', () => {
  it('membership - a confirmed new incarnation replaces the record, even with a smaller counter', () => {
    const view = viewOf(member('n1', 500, 1_000, 8, 'old'));
    const next = applyHeartbeat(view, { id: 'n1', virtualNodes: 16, incarnation: 'new', heartbeat: 3 }, 2_000, 16);
    assert.deepEqual(next.get('n1'), member('n1', 3, 2_000, 16, 'new'));
  });
});

describe('membership - pending claims', () => {
  const claim = (id: string, incarnation = 'i1', heartbeat = 1, hello = false): Claim => ({ id, virtualNodes: 8, incarnation, heartbeat, hello, protocol: 2, speaks: 2 });

  it('membership - past pendingMax the oldest claim is forgotten, and named', () => {
    const pending: PendingClaims = new Map();
    assert.equal(addClaim(pending, claim('a'), 2), undefined);
    assert.equal(addClaim(pending, claim('b'), 2), undefined);
    assert.equal(addClaim(pending, claim('c'), 2), 'a');
    assert.deepEqual([...pending.keys()], ['b', 'c']);
  });

  it('membership - a repeated claim keeps its place, its hello and the larger counter', () => {
    const pending: PendingClaims = new Map();
    addClaim(pending, claim('a', 'i1', 5, true), 2);
    addClaim(pending, claim('b'), 2);
    assert.equal(addClaim(pending, claim('a', 'i1', 3, false), 2), undefined);
    assert.deepEqual([...pending.keys()], ['a', 'b']);
    assert.deepEqual(pending.get('a'), claim('a', 'i1', 5, true));
  });

  it('membership - a claim of another incarnation replaces the pending one and counts as the newest', () => {
    const pending: PendingClaims = new Map();
    addClaim(pending, claim('a', 'i1'), 2);
    addClaim(pending, claim('b'), 2);
    addClaim(pending, claim('a', 'i2'), 2);
    assert.deepEqual([...pending.keys()], ['b', 'a']);
    assert.equal(pending.get('a')!.incarnation, 'i2');
    assert.equal(addClaim(pending, claim('c'), 2), 'b');
  });

  it('membership - settling a claim forgets it only when it is still the same incarnation', () => {
    const pending: PendingClaims = new Map();
    addClaim(pending, claim('a', 'i2'), 4);
    settleClaim(pending, 'a', 'i1');
    assert.ok(pending.has('a'), 'a newer claim stays');
    settleClaim(pending, 'a', 'i2');
    assert.equal(pending.size, 0);
  });

  it('membership - only an answer with the same id and incarnation confirms a claim', () => {
    assert.equal(confirms({ id: 'a', incarnation: 'x' }, { id: 'a', incarnation: 'x' }), true);
    assert.equal(confirms({ id: 'a', incarnation: 'x' }, { id: 'a', incarnation: 'y' }), false);
    assert.equal(confirms({ id: 'a', incarnation: 'x' }, { id: 'b', incarnation: 'x' }), false);
  });

  it(`membership - pending claims stay within pendingMax and always hold the claim just made (seed ${seed})`, () => {
    const claimArb = fc.record({ id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), incarnation: fc.constantFrom('x', 'y'), heartbeat: fc.nat(9), hello: fc.boolean() });
    fc.assert(
      fc.property(fc.array(claimArb, { maxLength: 40 }), fc.integer({ min: 1, max: 4 }), (cs, max) => {
        const pending: PendingClaims = new Map();
        for (const c of cs) {
          const before = new Set(pending.keys());
          const evicted = addClaim(pending, { ...c, virtualNodes: 8, protocol: 2, speaks: 2 }, max);
          assert.ok(pending.size <= max);
          assert.equal(pending.get(c.id)?.incarnation, c.incarnation);
          if (evicted !== undefined) {
            assert.ok(before.has(evicted) && !pending.has(evicted) && evicted !== c.id);
          }
        }
      }),
      runs(300),
    );
  });
});
