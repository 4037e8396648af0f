import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simSeed } from '../helpers/sim_cluster.js';
import { formatReport, runWorkload, type WorkloadReport } from '../helpers/sim_workload.js';

/** Seeds per `npm test` run (GODDB_SIM_SEEDS overrides); `npm run sim` runs thousands. */
const seedsDefault = 200;
/** Failing seeds reported in full in the assertion message; the rest by number. */
const reportsMax = 3;

describe('simulated workload with faults', () => {
  it('sim - no acknowledged write is lost and no read is stale, over many seeds of concurrent clients and faults', async () => {
    const replay = process.env['GODDB_SEED'] !== undefined;
    const base = simSeed();
    const count = replay ? 1 : Number(process.env['GODDB_SIM_SEEDS'] ?? seedsDefault);
    if (!replay) console.log(`# seeds ${base} to ${base + count - 1}; replay one with GODDB_SEED=<seed>`);
    const failing: WorkloadReport[] = [];
    for (let seed = base; seed < base + count; seed++) {
      const report = await runWorkload({ seed });
      if (report.failed) failing.push(report);
    }
    const message = [
      `${failing.length} of ${count} seeds failed: ${failing.map((r) => r.seed).join(' ')}`,
      ...failing.slice(0, replay ? 1 : reportsMax).map((r) => formatReport(r, replay ? 200 : 30)),
    ].join('\n');
    assert.equal(failing.length, 0, message);
  });

  it('sim - with sloppy quorum and true clocks, no acknowledged write is lost once the hints are delivered', async () => {
    const replay = process.env['GODDB_SEED'] !== undefined;
    const base = simSeed();
    const count = replay ? 1 : Math.ceil(Number(process.env['GODDB_SIM_SEEDS'] ?? seedsDefault) / 3);
    const failing: WorkloadReport[] = [];
    for (let seed = base; seed < base + count; seed++) {
      // True clocks and no restarts: a restarted node's clock resumes past its saved high-water mark,
      // ahead of a partitioned side that has not heard it, and LWW then lets a write acknowledged
      // by a replica and a hint lose to an earlier one that met no common replica (the trade-off
      // of a sloppy quorum; the strict workload above keeps every fault).
      const report = await runWorkload({ seed, sloppyQuorum: true, faults: { skew: false, jumps: false, restarts: false, wipes: false } });
      if (report.failed) failing.push(report);
    }
    const message = [
      `${failing.length} of ${count} seeds failed (sloppy quorum): ${failing.map((r) => r.seed).join(' ')}`,
      ...failing.slice(0, replay ? 1 : reportsMax).map((r) => formatReport(r, replay ? 200 : 30)),
    ].join('\n');
    assert.equal(failing.length, 0, message);
  });
});

