#!/usr/bin/env node
// Runs the seeded cluster simulator's workload (test/helpers/sim_workload.ts)
// over many seeds, prints every failing seed with what the history checker
// found, and exits 1 if any failed. Build first (npm run sim does).
//
//   npm run sim -- --seeds 2000 [--from 1] [--only skew,restarts] [--without wipes] [--duration 6000] [--verbose]
//
// Each seed is a whole run: replay one with `--seeds 1 --from S` or with
// GODDB_SEED=S in the sim tests.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1000' },
    from: { type: 'string', default: '1' },
    only: { type: 'string' },
    without: { type: 'string' },
    duration: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    dist: { type: 'string', default: process.env.GODDB_DIST ?? 'dist' },
  },
});

const seeds = Number(values.seeds);
const from = Number(values.from);
if (!Number.isSafeInteger(seeds) || seeds < 1 || !Number.isSafeInteger(from)) {
  console.error('usage: sim.js --seeds N [--from S] [--only a,b] [--without a,b] [--duration ms] [--verbose]');
  process.exit(2);
}

const { runWorkload, formatReport, allFaults } = await import(pathToFileURL(join(process.cwd(), values.dist, 'test', 'helpers', 'sim_workload.js')).href);

const names = (s) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);
const faults = {};
for (const n of [...names(values.only), ...names(values.without)]) {
  if (!(n in allFaults)) {
    console.error(`unknown fault class ${n}; known: ${Object.keys(allFaults).join(', ')}`);
    process.exit(2);
  }
}
if (values.only) for (const k of Object.keys(allFaults)) faults[k] = names(values.only).includes(k);
for (const k of names(values.without)) faults[k] = false;

const started = Date.now();
const failing = [];
for (let seed = from; seed < from + seeds; seed++) {
  const report = await runWorkload({ seed, faults, ...(values.duration ? { durationMs: Number(values.duration) } : {}) });
  if (report.failed) {
    failing.push(seed);
    console.log(values.verbose ? formatReport(report) : formatReport(report, 0).split('\n').slice(0, 12).join('\n'));
  }
  if ((seed - from + 1) % 100 === 0) console.error(`# ${seed - from + 1}/${seeds} seeds, ${failing.length} failing, ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
console.log(`# ${seeds} seeds from ${from} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${failing.length} failing${failing.length ? `: ${failing.join(' ')}` : ''}`);
process.exit(failing.length > 0 ? 1 : 0);
