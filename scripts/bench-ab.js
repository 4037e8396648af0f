#!/usr/bin/env node
// Compares two builds with the bench (issue 11): each revision is exported
// (git archive; `.` is the working tree with its uncommitted changes) and
// compiled into a temporary directory, then the bench runs once per round
// for each, alternated, and the rounds are summarized per (system, op, C):
// the medians of each build and in how many rounds the second did better
// (src/bench/ab.ts). Build this checkout first (npm run bench:ab does).
//
//   npm run bench:ab -- <rev-a> <rev-b> [--rounds 3] [--keep] [-- <bench options>]
//   npm run bench:ab -- HEAD~1 . --rounds 4 -- --systems goddb-raw --concurrency 128 --duration 4000
//
// Each run's output goes to a log in the build's directory; the directories
// are removed at the end (--keep leaves them) and on Ctrl-C.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const dashes = process.argv.indexOf('--', 2);
const own = dashes === -1 ? process.argv.slice(2) : process.argv.slice(2, dashes);
const benchArgs = dashes === -1 ? [] : process.argv.slice(dashes + 1);
const { values, positionals } = parseArgs({ args: own, allowPositionals: true, options: { rounds: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } } });
const rounds = Number(values.rounds);
if (positionals.length !== 2 || !Number.isSafeInteger(rounds) || rounds < 1 || rounds > 50) {
  console.error('usage: bench-ab.js <rev-a> <rev-b> [--rounds 1..50] [--keep] [-- <bench options>]   (a revision, or . for the working tree)');
  process.exit(2);
}
if (benchArgs.includes('--repeats') || benchArgs.includes('--out')) {
  console.error('bench-ab.js: --repeats and --out are its own (one repeat per run, the output in each build\'s directory)');
  process.exit(2);
}

const root = process.cwd();
const { compareRounds, abTable } = await import(pathToFileURL(join(root, 'dist', 'src', 'bench', 'ab.js')).href);
const dirs = [];
let child;
const cleanUp = () => {
  if (values.keep) return;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  child?.kill('SIGTERM');
  cleanUp();
  process.exit(130);
});

/** Exports `rev` (or the working tree) into a new directory and compiles it there. */
function build(rev) {
  const dir = mkdtempSync(join(tmpdir(), 'goddb-ab-'));
  dirs.push(dir);
  const commit = rev === '.' ? 'working tree' : execFileSync('git', ['rev-parse', '--short', '--verify', `${rev}^{commit}`], { encoding: 'utf8' }).trim();
  // The working tree: tracked and untracked files that git does not ignore (a deleted one is skipped).
  const copy = rev === '.' ? 'git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -x -C "$1"' : 'git archive "$2" | tar -x -C "$1"';
  execFileSync('bash', ['-c', `set -o pipefail; ${copy}`, '_', dir, rev], { stdio: 'inherit' });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  process.stderr.write(`bench-ab: compiling ${rev} (${commit}) in ${dir}\n`);
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir, stdio: 'inherit' });
  return { rev, commit, dir };
}

/** One bench run of `b`'s build; its medians. */
function runOnce(b, round) {
  const out = join(b.dir, `ab-out-${round}`);
  const log = join(b.dir, `ab-run-${round}.log`);
  return new Promise((done, fail) => {
    const chunks = [];
    child = spawn(process.execPath, [join(b.dir, 'dist', 'src', 'bench', 'main.js'), ...benchArgs, '--repeats', '1', '--out', out], { cwd: b.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => chunks.push(d));
    child.stderr.on('data', (d) => chunks.push(d));
    child.on('close', (code) => {
      writeFileSync(log, Buffer.concat(chunks));
      if (code !== 0) return fail(new Error(`the bench of ${b.rev} exited with ${code} in round ${round}; its output: ${log}\n${Buffer.concat(chunks).toString('utf8').slice(-2000)}`));
      const file = readdirSync(out).find((f) => f.endsWith('.json'));
      done(JSON.parse(readFileSync(join(out, file), 'utf8')).medians);
    });
  });
}

try {
  const [a, b] = positionals.map(build);
  const results = [];
  for (let r = 1; r <= rounds; r++) {
    const first = await runOnce(a, r);
    const second = await runOnce(b, r);
    results.push({ a: first, b: second });
    const put = (ms) => ms.map((m) => `${m.system} ${m.op} C=${m.concurrency} ${Math.round(m.opsPerSec)}/s ${Math.round(m.serverCpuUsPerOp)} µs`).join('; ');
    process.stderr.write(`bench-ab: round ${r}/${rounds}\n  A ${a.rev}: ${put(first)}\n  B ${b.rev}: ${put(second)}\n`);
  }
  const rows = compareRounds(results);
  const out = resolve(root, 'bench-results', `ab-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(resolve(root, 'bench-results'), { recursive: true });
  writeFileSync(out, JSON.stringify({ a: { rev: a.rev, commit: a.commit }, b: { rev: b.rev, commit: b.commit }, benchArgs, rounds: results, rows }, null, 2));
  console.log(`A = ${a.rev} (${a.commit}), B = ${b.rev} (${b.commit}); ${rounds} rounds, alternated, bench options: ${benchArgs.join(' ') || '(defaults)'}\n`);
  console.log(abTable(rows, 'A', 'B'));
  console.log(`\nbench-ab: wrote ${out}`);
} catch (err) {
  console.error(`bench-ab: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  cleanUp();
}
