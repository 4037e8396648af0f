/**
 * The benchmark harness end to end (`npm run bench`), with a tiny
 * configuration: every system (the three-server NATS cluster of
 * jetstream-kv-r3 included), both ops, one concurrency. It checks what the
 * run records and that nothing it started outlives it; never how fast
 * anything was.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { isAlive } from '../../src/bench/proc.js';
import { allOps, allSystems } from '../../src/bench/types.js';
import { runScript } from '../helpers/workers.js';

const benchPath = fileURLToPath(new URL('../../src/bench/main.js', import.meta.url));
const runTimeoutMs = 180_000;

function runBench(args: string[]) {
  return runScript(benchPath, args, '', runTimeoutMs);
}

interface Recorded {
  samples: { system: string; op: string; concurrency: number; ops: number; errors: number; warmupErrors: number; cpu: Record<string, number>; serverCpuUsPerOp: number | null }[];
  memory: { nodes: { id: string; afterPreloadHeapUsedBytes?: number; endHeapUsedBytes?: number; endBytes: number }[] };
  medians: unknown[];
  targets: { verdict: string }[];
  processes: Record<string, number>;
  allPids: number[];
}

describe('bench smoke', () => {
  const out = mkdtempSync(join(tmpdir(), 'goddb-bench-smoke-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('bench - a quick run measures every system and op, and leaves no process behind', { timeout: runTimeoutMs + 30_000 }, async () => {
    const concurrency = 4;
    const run = await runBench(['--quick', '--keys', '200', '--concurrency', String(concurrency), '--duration', '300', '--warmup', '100', '--out', out]);
    assert.equal(run.code, 0, `bench failed:\n${run.stderr}`);
    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1, `one result file in ${out}`);
    const result = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as Recorded;

    for (const system of allSystems) {
      for (const op of allOps) {
        const found = result.samples.filter((s) => s.system === system && s.op === op && s.concurrency === concurrency);
        assert.equal(found.length, 1, `one sample of ${system} ${op} C=${concurrency}`);
        const s = found[0]!;
        assert.ok(s.ops > 0, `${system} ${op}: some ops`);
        assert.equal(s.errors, 0, `${system} ${op}: no errors`);
        assert.equal(s.warmupErrors, 0, `${system} ${op}: no errors in the warm-up`);
        assert.ok('loadgen' in s.cpu && 'nats' in s.cpu && 'nats-r3-1' in s.cpu, `${system} ${op}: CPU sampled`);
        assert.ok(typeof s.serverCpuUsPerOp === 'number' && s.serverCpuUsPerOp >= 0, `${system} ${op}: server CPU per op recorded`);
      }
    }
    assert.equal(result.medians.length, allSystems.length * allOps.length);
    assert.equal(result.targets.length, 5);
    assert.match(run.stdout, /### Targets \(issue 4\)/);
    assert.match(run.stdout, /\| server CPU µs\/op \|/);
    assert.match(run.stderr, /JetStream KV bucket bench on 3 clustered nats-servers .*3 replicas/);

    assert.deepEqual(result.memory.nodes.map((n) => n.id), ['b1', 'b2', 'b3']);
    for (const n of result.memory.nodes) {
      assert.ok((n.afterPreloadHeapUsedBytes ?? 0) > 0 && (n.endHeapUsedBytes ?? 0) > 0, `${n.id}: V8 heap reported`);
    }

    assert.deepEqual(Object.keys(result.processes).sort(), ['b1', 'b2', 'b3', 'echo', 'f1', 'f2', 'f3', 'fl1', 'fl2', 'fl3', 'nats', 'nats-periodic', 'nats-r3-1', 'nats-r3-2', 'nats-r3-3', 'p1', 'p2', 'p3', 'redis']);
    const alive = result.allPids.filter((pid) => isAlive(pid));
    assert.deepEqual(alive, [], 'every process the run started has exited');
  });

  it('bench - --rate runs every measurement as an open loop, and says so', { timeout: runTimeoutMs + 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goddb-bench-rate-'));
    try {
      const run = await runBench(['--systems', 'goddb-raw,echo', '--rate', '400', '--keys', '100', '--concurrency', '64', '--duration', '400', '--warmup', '100', '--repeats', '1', '--out', dir]);
      assert.equal(run.code, 0, `bench failed:\n${run.stderr}`);
      const file = readdirSync(dir).find((f) => f.endsWith('.json'))!;
      const result = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Recorded & { config: { ratePerSec?: number }; samples: { missed?: number }[] };
      assert.equal(result.config.ratePerSec, 400);
      assert.equal(result.samples.length, 4, 'two systems, both ops');
      for (const s of result.samples) {
        assert.ok(s.ops > 0 && s.errors === 0, `${s.system} ${s.op}: ops answered, no errors`);
        assert.equal(typeof s.missed, 'number', `${s.system} ${s.op}: requests not sent are counted`);
      }
      assert.match(run.stdout, /Open loop: 400 requests\/s offered, at most C in flight/);
      assert.deepEqual(result.allPids.filter((pid) => isAlive(pid)), [], 'every process the run started has exited');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
