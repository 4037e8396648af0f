#!/usr/bin/env node
// A put's or a get's CPU and allocations without NATS (issue 11): three real
// nodes in one process on the simulated bus with every delivery on
// setImmediate (no sockets, no kernel wake-ups between processes), C closed
// loops of requests from a client on the same bus, uniformly random keys.
// Each measurement runs in a child process started with --trace-gc: the CPU
// (process.cpuUsage) and the bytes allocated (what each GC found, less what
// the previous one left) over the measured window, per operation. Allocation
// per operation is the steady figure of the two: the same build gives the same
// bytes within a percent or two, where CPU moves with the machine. Not a test:
// it prints figures. Build first (npm run build).
//
//   node scripts/inproc-bench.js [--op put|get] [--concurrency 64] [--seconds 4] [--engine lmdb|memory]
//                                [--keys 10000] [--value-bytes 100] [--rounds 3] [--a DIST] [--b DIST]
//                                [--node-options="--cpu-prof --cpu-prof-dir=/tmp/prof"] [--promises]
//
// --promises also counts the promises created per operation (an async_hooks
// init hook over the measured window; the client's and the bus's included).
// The count repeats within a promise or two; with the hook on, V8 takes its
// slower promise paths (an await makes one more), so that run's CPU and
// bytes are not comparable with runs without it.
//
// --b is the build measured (default ./dist); with --a, a second build (e.g. a
// worktree of another revision, compiled) runs alternately with it, round by
// round, and the summary says in how many rounds B was cheaper.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const usage = 'usage: inproc-bench.js [--op put|get] [--concurrency N] [--seconds N] [--engine lmdb|memory] [--keys N] [--value-bytes N] [--rounds N] [--a DIST] [--b DIST] [--node-options="OPTS"] [--promises]';
const { values } = parseArgsOrExit({
  options: {
    op: { type: 'string', default: 'put' },
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '4' },
    engine: { type: 'string', default: 'lmdb' },
    keys: { type: 'string', default: '10000' },
    'value-bytes': { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    a: { type: 'string' },
    b: { type: 'string', default: 'dist' },
    // Node options for the children, space-separated (a V8 profile of each measurement, say).
    'node-options': { type: 'string', default: '' },
    promises: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
  },
});

/** parseArgs, with a usage line and exit 2 instead of a stack trace (an option's value that starts with a dash needs --name=value). */
function parseArgsOrExit(config) {
  try {
    return parseArgs(config);
  } catch (err) {
    console.error(`inproc-bench.js: ${err.message}\n${usage}`);
    process.exit(2);
  }
}

const whole = (name, min, max) => {
  const n = Number(values[name]);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    console.error(`inproc-bench.js: --${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(values[name])}`);
    process.exit(2);
  }
  return n;
};
if (!['put', 'get'].includes(values.op) || !['lmdb', 'memory'].includes(values.engine)) {
  console.error('inproc-bench.js: --op is put or get, --engine lmdb or memory');
  process.exit(2);
}
const concurrency = whole('concurrency', 1, 4096);
const seconds = whole('seconds', 1, 600);
const keyCount = whole('keys', 1, 10_000_000);
const valueBytes = whole('value-bytes', 0, 1_000_000);
const rounds = whole('rounds', 1, 50);
const startMark = 'INPROC-MEASURE-START';
const endMark = 'INPROC-MEASURE-END';

if (values.child) {
  const dirs = []; // the LMDB directories, removed whether the measurement finished or failed
  try {
    await measure(resolve(values.b), dirs);
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
} else summarize();

/** The parent: runs the children, alternating the builds, and prints the rounds and their medians. */
function summarize() {
  const builds = values.a === undefined ? [['B', resolve(values.b)]] : [['A', resolve(values.a)], ['B', resolve(values.b)]];
  const rows = new Map(builds.map(([name]) => [name, []]));
  const self = fileURLToPath(import.meta.url);
  const shared = ['--op', values.op, '--concurrency', String(concurrency), '--seconds', String(seconds), '--engine', values.engine, '--keys', String(keyCount), '--value-bytes', String(valueBytes), ...(values.promises ? ['--promises'] : [])];
  console.log(`inproc-bench: ${values.op} C=${concurrency}, ${seconds} s windows, ${values.engine}, ${keyCount} keys of ${valueBytes} B; ${builds.map(([n, d]) => `${n} ${d}`).join(', ')}`);
  for (let round = 1; round <= rounds; round++) {
    for (const [name, dist] of builds) {
      const nodeOptions = values['node-options'].split(' ').filter((o) => o !== '');
      const run = spawnSync(process.execPath, [...nodeOptions, '--trace-gc', self, '--child', '--b', dist, ...shared], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
      const result = parseChild(run.stdout);
      if (run.status !== 0 || result === undefined) {
        console.error(`inproc-bench.js: build ${name} failed (exit ${run.status}):\n${run.stderr.slice(-2000)}`);
        process.exit(1);
      }
      rows.get(name).push(result);
      console.log(`round ${round} ${name}: ${Math.round(result.opsPerSecond)} ops/s, CPU ${result.cpuUsPerOp.toFixed(1)} µs/op, allocated ${result.allocatedKbPerOp.toFixed(1)} KB/op over ${result.gcs} GCs${result.promises === undefined ? '' : `, ${(result.promises / result.done).toFixed(1)} promises/op`}${result.errors > 0 ? `, ${result.errors} errors` : ''}`);
    }
  }
  const median = (xs) => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  for (const [name, rs] of rows) {
    const promises = values.promises ? `, ${median(rs.map((r) => r.promises / r.done)).toFixed(1)} promises/op` : '';
    console.log(`${name} medians: ${Math.round(median(rs.map((r) => r.opsPerSecond)))} ops/s, CPU ${median(rs.map((r) => r.cpuUsPerOp)).toFixed(1)} µs/op, allocated ${median(rs.map((r) => r.allocatedKbPerOp)).toFixed(1)} KB/op${promises}`);
  }
  if (values.a !== undefined) {
    const [a, b] = [rows.get('A'), rows.get('B')];
    const cheaper = b.filter((r, i) => r.cpuUsPerOp < a[i].cpuUsPerOp).length;
    const lighter = b.filter((r, i) => r.allocatedKbPerOp < a[i].allocatedKbPerOp).length;
    console.log(`B against A: CPU per op cheaper in ${cheaper} of ${rounds} rounds, fewer bytes allocated in ${lighter} of ${rounds}`);
  }
}

/**
 * The child's result line, with the bytes allocated from the --trace-gc lines
 * printed between the marks: each GC's heap size before it, less the size the
 * previous one left.
 */
function parseChild(stdout) {
  let measuring = false;
  let left;
  let allocatedMb = 0;
  let gcs = 0;
  let result;
  for (const line of stdout.split('\n')) {
    if (line.startsWith(startMark)) measuring = true;
    else if (line.startsWith(endMark)) {
      measuring = false;
      result = JSON.parse(line.slice(endMark.length));
    } else if (measuring) {
      const gc = /: (?:Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact|Minor Mark-Sweep)\S*\s+([0-9.]+) \([0-9.]+\) -> ([0-9.]+)/.exec(line);
      if (gc === null) continue;
      if (left !== undefined) allocatedMb += Number(gc[1]) - left;
      left = Number(gc[2]);
      gcs++;
    }
  }
  if (result === undefined || result.done === 0) return undefined;
  return { ...result, allocatedKbPerOp: (allocatedMb * 1024) / result.done, gcs };
}

/** The child: the cluster, the preload, a warm-up, the measured window; LMDB directories go in `dirs`. */
async function measure(dist, dirs) {
  const load = (path) => import(pathToFileURL(join(dist, path)).href);
  const { LmdbEngine } = await load('src/storage/lmdb.js');
  const { MemoryEngine } = await load('src/storage/memory.js');
  const { MemoryMetaStore } = await load('src/storage/meta.js');
  const { realClock } = await load('src/node/clock/real_clock.js');
  const { startNode } = await load('src/node/node.js');
  const { SimBus } = await load('src/transport/sim.js');
  const { simConfig } = await load('test/helpers/sim_cluster.js');
  const { pino } = await import('pino');

  // The bus delivers on setImmediate (a delay of 0); the nodes keep real timers (gossip, anti-entropy).
  const busClock = {
    nowMs: () => realClock.nowMs(),
    monotonicMs: () => realClock.monotonicMs(),
    setTimer: (ms, fn) => {
      if (ms > 0) return realClock.setTimer(ms, fn);
      const h = setImmediate(fn);
      return { cancel: () => clearImmediate(h) };
    },
  };
  const keepAlive = setInterval(() => {}, 1000); // the nodes' timers are unref'd
  const bus = new SimBus({ seed: 1, clock: busClock, minDelayMs: 0, maxDelayMs: 0 });
  const ids = ['n1', 'n2', 'n3'];
  const nodes = await Promise.all(
    ids.map(async (id) => {
      let engine;
      if (values.engine === 'lmdb') {
        const path = await mkdtemp(join(tmpdir(), 'goddb-inproc-'));
        dirs.push(path);
        engine = new LmdbEngine({ path, mapSizeBytes: 1 << 30, sync: 'periodic' });
        await engine.open();
      } else engine = new MemoryEngine();
      // As a worker runs by default: anti-entropy on.
      const config = simConfig(id, ids, { antiEntropy: { enabled: true, intervalMs: 5_000, keysPerSecond: 10_000, bytesPerSecond: 16 * 1024 * 1024, keysPerExchange: 512 } });
      return startNode(config, { logger: pino({ level: 'silent' }), transport: bus.connect(id, realClock), engine, clock: realClock, http: false, meta: new MemoryMetaStore() });
    }),
  );
  const client = bus.connect('client');
  const value = new Uint8Array(valueBytes).fill(65);
  const empty = new Uint8Array(0);
  let errors = 0;
  const one = async (op, i) => {
    const reply = await client.request(`kv.${op}.k${i}`, op === 'put' ? value : empty, { timeoutMs: 10_000 });
    if (reply.header('Nats-Service-Error-Code') !== undefined) errors++;
  };
  for (let i = 0; i < keyCount; i += 256) await Promise.all(Array.from({ length: Math.min(256, keyCount - i) }, (_, j) => one('put', i + j)));
  let done = 0;
  let stop = false;
  const loop = async () => {
    while (!stop) {
      await one(values.op, Math.floor(Math.random() * keyCount));
      done++;
    }
  };
  const runFor = async (ms) => {
    stop = false;
    done = 0;
    const loops = Array.from({ length: concurrency }, loop);
    await new Promise((r) => setTimeout(r, ms));
    stop = true;
    await Promise.all(loops);
  };
  await runFor(2000); // warm-up: the JIT, and anti-entropy's first tree builds
  errors = 0;
  let promises = 0;
  let counting = false;
  if (values.promises) {
    const { createHook } = await import('node:async_hooks');
    createHook({ init: (_id, type) => void (counting && type === 'PROMISE' && promises++) }).enable();
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  console.log(startMark);
  counting = true;
  await runFor(seconds * 1000);
  counting = false;
  const cpu = process.cpuUsage(cpu0);
  const elapsedMs = performance.now() - t0;
  console.log(`${endMark}${JSON.stringify({ done, errors, opsPerSecond: done / (elapsedMs / 1000), cpuUsPerOp: (cpu.user + cpu.system) / done, ...(values.promises ? { promises } : {}) })}`);
  await Promise.all(nodes.map((n) => n.stop()));
  clearInterval(keepAlive);
}
