#!/usr/bin/env node
// Where a worker's busy time went, from the V8 CPU profiles the bench's
// workers write (src/bench/cpu_profile.ts). Build first (npm run build).
//
//   GODDB_BENCH_WORKER_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" \
//     npm run bench -- --systems goddb-periodic --ops put --concurrency 128 --repeats 1 --duration 10000
//   node scripts/cpu-profile.js /tmp/prof/*.cpuprofile [--from 5] [--to 13] [--top 25]
//
// --from/--to: a window in seconds from each profile's start (its first line
// shows the busy samples of each second: where the load ran).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const usage = 'usage: cpu-profile.js FILE.cpuprofile... [--from S] [--to S] [--top N]';
let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string', default: '25' }, dist: { type: 'string', default: 'dist' } },
  });
} catch (err) {
  console.error(`${err.message}\n${usage}`);
  process.exit(2);
}
const { values, positionals } = parsed;
const number = (name, text, what, valid) => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !valid(n)) {
    console.error(`--${name} must be ${what}, got ${text}\n${usage}`);
    process.exit(2);
  }
  return n;
};
const seconds = (name) => number(name, values[name], 'a number of seconds >= 0', (n) => Number.isFinite(n) && n >= 0);
const window = { fromS: seconds('from'), toS: seconds('to') };
const top = number('top', values.top, 'a whole number >= 1', (n) => Number.isSafeInteger(n) && n >= 1);
if (positionals.length === 0) {
  console.error(usage);
  process.exit(2);
}

const { asCpuProfile, summarizeProfile, formatSummary } = await import(pathToFileURL(join(process.cwd(), values.dist, 'src', 'bench', 'cpu_profile.js')).href);
let failed = false;
for (const file of positionals) {
  try {
    const summary = summarizeProfile(asCpuProfile(JSON.parse(readFileSync(file, 'utf8'))), window);
    console.log(`== ${file}\n${formatSummary(summary, top)}\n`);
  } catch (err) {
    console.error(`${file}: ${err.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
