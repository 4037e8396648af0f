import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simSeed } from '../helpers/sim_cluster.js';
import { formatReport, runWorkload, type WorkloadReport } from '../helpers/sim_workload.js';

/** Seeds per `npm test` run (GODDB_SIM_SEEDS overrides); `npm run sim` runs thousands. */
const seedsDefault = 300;
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
});

