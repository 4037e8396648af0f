#!/usr/bin/env node
// Runs every compiled test file (node 20's --test has no globs): unit, sim,
// then integration. Pass tier names to run only those: `npm test -- unit sim`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const tiers = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['unit', 'sim', 'integration'];
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.js')) files.push(path);
  }
};
for (const tier of tiers) walk(join('dist', 'test', tier));
if (files.length === 0) {
  console.error('no test files found: run the build first (npm test does)');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
