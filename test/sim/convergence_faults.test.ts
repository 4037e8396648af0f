/**
 * Issue 10's required simulation: kills, pauses, partitions and a restart
 * on a wiped disk hit a 5-node cluster (N=3, R=W=2, anti-entropy on with its
 * default schedule) while clients put, delete and get ~30 keys. A seeded
 * nemesis does one fault at a time, healing in between. Once the workload
 * stops and every fault has healed, the clock runs until every replica of
 * every key, read alone, holds the same version set and the tree roots of
 * each arc agree on all its replicas: that must happen within 30 s of
 * simulated time (the convergence bound). The history checker then finds
 * no lost write and no stale read, and no node died.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeConfig } from '../../src/config/types.js';
import { limits } from '../../src/core/limits.js';
import { keyHash, preferenceList } from '../../src/core/ring.js';
import { isUpToDate, visibleValue, type Version } from '../../src/core/version.js';
import { seededRandom } from '../../src/transport/sim.js';
import { checkHistory, formatViolation, OpKind, Outcome } from '../helpers/history.js';
import { startRecordedWorkload, type RecordedWorkload } from '../helpers/recorded_workload.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const N = 3;
const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
const keys = Array.from({ length: 30 }, (_, i) => `k.${i}`);
const clients = 4;
const clientTimeoutMs = 5_000;
/** The promise: every replica agrees within 30 s of the heal, with the default anti-entropy schedule. */
const convergenceMs = 30_000;
/** Simulated time the workload runs (the nemesis acts within it). */
const workloadMs = 20_000;
/** The defaults of config/schema.ts (antiEntropy), turned on: the bound is for these. */
const overrides: Partial<NodeConfig> = {
  quorum: { replication: N, readQuorum: 2, writeQuorum: 2 },
  antiEntropy: { enabled: true, intervalMs: 5_000, keysPerSecond: 10_000, bytesPerSecond: 16 * 1024 * 1024, keysPerExchange: limits.aaeKeysPerExchangeMax },
};

type Workload = RecordedWorkload;

/** Clients that put, delete and get the keys until stopped, recording a history (times relative to `startMs`). */
function startWorkload(c: SimCluster, seed: number, startMs: number): Workload {
  return startRecordedWorkload(c, {
    seed: seed ^ 0xc0417e,
    clients,
    clientTimeoutMs,
    startMs,
    pickKey: (random) => keys[Math.floor(random() * keys.length)]!,
    putShare: 0.45,
    deleteShare: 0.15,
    thinkMsMax: 50,
  });
}

/** A paused process whose heartbeats flow: its replica and client requests are held, gossip and probes are not. */
const pausedSubjects = (id: string) => (subject: string) =>
  subject.startsWith('kv.') || (subject.startsWith(`god.sim.node.${id}.`) && !subject.endsWith('.probe') && !subject.endsWith('.members'));

const sameSet = (a: readonly Version[], b: readonly Version[]) => isUpToDate(a, b) && isUpToDate(b, a);

function replicasOf(c: SimCluster, key: string): string[] {
  return preferenceList(c.node(ids[0]!).node.membership.ring(), keyHash(key), N);
}

/** Keys whose replicas, read alone, hold different version sets. */
async function disagreeing(c: SimCluster): Promise<string[]> {
  const out: string[] = [];
  for (const key of keys) {
    const held = await Promise.all(replicasOf(c, key).map((id) => c.node(id).node.replica.get(key)));
    if (!held.every((h) => sameSet(h, held[0]!))) out.push(key);
  }
  return out;
}

/** Every node has all its trees built, every arc is held by N nodes, and their roots agree. */
function rootsAgree(c: SimCluster): boolean {
  const byArc = new Map<string, bigint[]>();
  for (const id of ids) {
    const aae = c.node(id).node.aae;
    const roots = aae.roots();
    if (roots.size === 0 || roots.size !== aae.progress().treesTotal) return false;
    for (const [arc, root] of roots) byArc.set(arc, [...(byArc.get(arc) ?? []), root]);
  }
  return [...byArc.values()].every((rs) => rs.length === N && rs.every((r) => r === rs[0]));
}

const repaired = (c: SimCluster) => ids.reduce((n, id) => n + c.node(id).node.aae.progress().keysRepaired, 0);

type Fault = 'kill' | 'pause' | 'partition' | 'wipe';

describe('convergence under faults (issue 10)', () => {
  it('sim convergence faults - kills, pauses, partitions and a wiped restart during a workload: no lost write, no stale read, every replica identical within 30 s of the heal', async () => {
    const seed = simSeed();
    const pick = seededRandom(seed ^ 0x5eed);
    const c = new SimCluster(seed, ids, overrides, { bus: { minDelayMs: 1, maxDelayMs: 20 } });
    const events: string[] = [];
    const fatal: string[] = [];
    const onFatal = (err: unknown) => fatal.push(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.on('unhandledRejection', onFatal);
    try {
      await c.start();
      await c.clock.advance(6_000); // members up, trees built
      const startMs = c.clock.nowMs();
      const log = (what: string) => events.push(`${c.clock.nowMs() - startMs} ${what}`);
      const workload = startWorkload(c, seed, startMs);
      let repairedByGone = 0; // counters of processes that died
      const forget = (id: string) => (repairedByGone += c.node(id).node.aae.progress().keysRepaired);

      // The nemesis: each fault once, in a seeded order, on a seeded victim, one at a time with a heal in between.
      const faults: Fault[] = ['kill', 'pause', 'partition', 'wipe'];
      for (let i = faults.length - 1; i > 0; i--) {
        const j = Math.floor(pick() * (i + 1));
        [faults[i], faults[j]] = [faults[j]!, faults[i]!];
      }
      const faultStarted = c.clock.monotonicMs();
      const begin = (fault: Fault, victim: string): void => {
        if (fault === 'kill' || fault === 'wipe') {
          forget(victim);
          void c.crash(victim);
        } else if (fault === 'pause') c.bus.stall(victim, pausedSubjects(victim));
        else c.bus.isolate(victim, ids);
      };
      const heal = async (fault: Fault, victim: string): Promise<void> => {
        if (fault === 'kill') await c.revive(victim);
        else if (fault === 'wipe') await c.clock.run(c.restart(victim, { wipe: true }));
        else if (fault === 'pause') c.bus.unstall(victim);
        else c.bus.heal();
      };
      let healedAt = 0;
      for (const [i, fault] of faults.entries()) {
        await c.clock.advance(1_000 + Math.floor(pick() * 500));
        const victim = ids[Math.floor(pick() * ids.length)]!;
        const last = i === faults.length - 1;
        begin(fault, victim);
        if (!last) {
          const lastsMs = 2_500 + Math.floor(pick() * 1_000);
          log(`${fault} ${victim} for ${lastsMs} ms`);
          await c.clock.advance(lastsMs);
          await heal(fault, victim);
          log(`${fault} ${victim} healed`);
          continue;
        }
        // The last fault lasts until the workload stops: the heal below is the one the bound counts from.
        log(`${fault} ${victim} until the workload stops`);
        await c.clock.advance(Math.max(2_000, workloadMs - (c.clock.monotonicMs() - faultStarted)));
        await workload.stop();
        log('workload stopped');
        healedAt = c.clock.monotonicMs();
        await heal(fault, victim);
        log(`${fault} ${victim} healed`);
      }
      const history = workload.history;
      // Everything is healed (one fault at a time); belt and braces.
      c.bus.heal();
      for (const id of ids) c.bus.unstall(id);
      for (const id of ids) assert.ok(c.node(id).up && c.node(id).transport.alive, `${id} runs`);
      let stillDiffer: string[] = await disagreeing(c);
      const differedAtHeal = stillDiffer.length;
      while (stillDiffer.length > 0 || !rootsAgree(c)) {
        if (c.clock.monotonicMs() - healedAt >= convergenceMs + 10_000) break;
        await c.clock.advance(1_000);
        stillDiffer = await disagreeing(c);
      }
      const tookMs = c.clock.monotonicMs() - healedAt;
      const converged = stillDiffer.length === 0 && rootsAgree(c);
      log(`converged=${converged} after ${tookMs} ms`);

      const acked = history.filter((o) => o.op !== OpKind.Get && o.outcome === Outcome.Ok).length;
      console.log(`# convergence faults, seed ${seed}: ${faults.join(', ')}; ${history.length} operations, ${acked} writes acknowledged; ${differedAtHeal} keys differed right after the heal; ${converged ? 'converged in' : 'NOT converged after'} ${tookMs} ms of simulated time; keys repaired by anti-entropy ${repaired(c) + repairedByGone}`);

      assert.deepEqual(fatal, [], `seed ${seed}: no node crashed\n${events.join('\n')}`);
      assert.deepEqual(stillDiffer, [], `seed ${seed}: replicas still differ ${tookMs} ms after the heal\n${events.join('\n')}`);
      assert.ok(rootsAgree(c), `seed ${seed}: tree roots still differ ${tookMs} ms after the heal`);
      assert.ok(tookMs <= convergenceMs, `seed ${seed}: converged only ${tookMs} ms after the heal (bound ${convergenceMs} ms)`);
      // Each tree equals one computed afresh from its node's store: none drifted (trees were built under writes).
      for (const id of ids) assert.equal(await c.node(id).node.aae.audit(), 0, `seed ${seed}: ${id}'s trees match its store`);

      // Every replica holds the same versions: any one of them gives the converged value.
      const final = new Map<string, string | undefined>();
      for (const key of keys) {
        const v = visibleValue(await c.node(replicasOf(c, key)[0]!).node.replica.get(key), 0);
        final.set(key, v ? Buffer.from(v.value).toString('utf8') : undefined);
      }
      const violations = checkHistory(history, final);
      assert.deepEqual(violations.map((v) => formatViolation(v, seed)), [], `seed ${seed}: no lost write, no stale read\n${events.join('\n')}`);
      assert.ok(acked > 50, `seed ${seed}: the workload wrote (${acked} acknowledged writes)`);
      await c.stop();
    } finally {
      process.off('unhandledRejection', onFatal);
    }
  });
});
