/**
 * Issue 9: membership converges under message loss. Sixteen simulated
 * nodes, with 15% of every delivery lost (heartbeats, record exchanges,
 * probes and range pulls alike), agree on the serving ring, the future ring
 * and every member's state within a bounded number of gossip rounds: twelve
 * configured members at start; four more joining at once (seen and planned
 * everywhere within a few rounds; up once their range pulls, which lose
 * pages too, finish); and one of them killed and removed. The rounds each
 * step took are printed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ringFingerprint } from '../../src/core/moves.js';
import { ClientOp } from '../../src/protocol/subjects.js';
import { seededRandom } from '../../src/transport/sim.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const configured = Array.from({ length: 12 }, (_, i) => `n${i + 1}`);
const joiners = ['n13', 'n14', 'n15', 'n16'];
const intervalMs = 1_000;
const lossRate = 0.15;
/** Gossip rounds allowed for each step (over seeds 1-12: at most 9, 9, 69 and 21 rounds). */
const startRoundsMax = 15;
/** Until every node plans the same 16-member future ring (the joiners' tokens and states have spread). */
const joinSeenRoundsMax = 15;
/** Until every joiner is up everywhere: range pulls (empty here) lose pages too, each costing a request timeout. */
const joinUpRoundsMax = 90;
const removeRoundsMax = 60;

/** Why the live nodes do not agree yet (undefined when they do): the same serving and future rings, the same state of every member, every member heard. */
function disagreement(c: SimCluster, live: readonly string[], members: readonly string[]): string | undefined {
  const first = c.node(live[0]!).node.membership;
  for (const id of live) {
    const m = c.node(id).node.membership;
    if (ringFingerprint(m.ring()) !== ringFingerprint(first.ring())) return `${id} serves another ring than ${live[0]}`;
    if (ringFingerprint(m.futureRing()) !== ringFingerprint(first.futureRing())) return `${id} plans another ring than ${live[0]}`;
    for (const other of members) {
      if (!m.heard(other)) return `${id} has not heard ${other}`;
      if (m.stateOf(other) !== first.stateOf(other)) return `${id} sees ${other} ${m.stateOf(other)}, ${live[0]} sees it ${first.stateOf(other)}`;
    }
  }
  return undefined;
}

/** Runs the clock until the live nodes agree and `also` holds; returns the gossip rounds it took. */
async function roundsUntilAgreed(c: SimCluster, what: string, live: readonly string[], members: readonly string[], roundsMax: number, also: () => boolean): Promise<number> {
  const start = c.clock.monotonicMs();
  for (;;) {
    const why = disagreement(c, live, members);
    if (why === undefined && also()) return Math.ceil((c.clock.monotonicMs() - start) / intervalMs);
    assert.ok(c.clock.monotonicMs() - start <= roundsMax * intervalMs, `seed ${c.seed}: ${what}: no agreement within ${roundsMax} rounds (${why ?? 'agreed, but not there yet'})`);
    await c.clock.advance(100);
  }
}

describe('membership convergence under message loss', () => {
  it('sim membership - 16 simulated nodes agree on the rings and every member state within a bounded number of rounds under 15% loss', async () => {
    const seed = simSeed();
    try {
      const c = new SimCluster(seed, configured, { gossip: { enabled: true, intervalMs, failureTimeoutMs: 3 * intervalMs, phiConvictThreshold: 8, peers: configured, fanout: 3, startupWaitMs: 5_000 } }, { bus: { minDelayMs: 1, maxDelayMs: 20, dropRate: lossRate } });
      await c.start();
      let live = [...configured];
      const startRounds = await roundsUntilAgreed(c, 'the configured members', live, live, startRoundsMax, () => true);

      for (const j of joiners) await c.clock.run(c.startOne(j));
      live = [...live, ...joiners];
      const joinStart = c.clock.monotonicMs();
      const planned = () => live.every((id) => c.node(id).node.membership.futureRing().nodeCount === live.length);
      const seenRounds = await roundsUntilAgreed(c, 'four joiners planned everywhere', live, live, joinSeenRoundsMax, planned);
      const everyoneUp = () => live.every((id) => c.node(id).node.membership.members().every((m) => m.state === 'up') && c.node(id).node.membership.ring().nodeCount === live.length);
      await roundsUntilAgreed(c, 'four joiners up everywhere', live, live, joinUpRoundsMax, everyoneUp);
      const joinRounds = Math.ceil((c.clock.monotonicMs() - joinStart) / intervalMs);

      const victim = joiners[Math.floor(seededRandom(seed)() * joiners.length)]!;
      await c.crash(victim);
      live = live.filter((id) => id !== victim);
      const downStart = c.clock.monotonicMs();
      while (!live.every((id) => !c.node(id).node.membership.isUp(victim))) {
        assert.ok(c.clock.monotonicMs() - downStart < 20 * intervalMs, `seed ${seed}: ${victim} is seen down everywhere`);
        await c.clock.advance(100);
      }
      const reply = await c.requestVia('n1', ClientOp.Remove, victim);
      assert.equal(reply.code, 200, `remove ${victim}: ${reply.message}`);
      const removed = () => live.every((id) => c.node(id).node.membership.stateOf(victim) === 'removed' && c.node(id).node.membership.ring().nodeCount === live.length);
      const removeRounds = await roundsUntilAgreed(c, `${victim} removed`, live, [...live, victim], removeRoundsMax, removed);

      console.log(`# 16 nodes, ${lossRate * 100}% loss (${c.bus.dropped} deliveries lost): the 12 configured members agreed after ${startRounds} rounds, the 4 joiners were in every node's future ring after ${seenRounds} rounds and up everywhere after ${joinRounds}, ${victim}'s removal after ${removeRounds} (seed ${seed})`);
      await c.stop();
    } finally {
    }
  });
});
