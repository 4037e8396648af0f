#!/usr/bin/env node
// Client latency while one node is paused (SIGSTOP), issue 10's gray failure: three LMDB workers
// (N=3, R=W=2) on a nats-server started with the shipped nats-server.conf (ping_interval 3s,
// ping_max 2), a closed loop of SDK puts and gets from 16 concurrent clients, and one worker
// paused for a while and resumed. Prints p50/p99/max and failures per phase, and when the last
// request that waited on the paused worker came back. A measurement, not a test: it asserts
// nothing. Run after a build: `node scripts/paused-latency.js [--pause 20] [--before 10] [--after 10]`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster } from '../dist/src/bench/cluster.js';
import { connect } from '../dist/src/client/index.js';
import { startNatsServer } from '../dist/src/devtools/servers.js';

const { values } = parseArgs({ options: { before: { type: 'string', default: '10' }, pause: { type: 'string', default: '20' }, after: { type: 'string', default: '10' }, clients: { type: 'string', default: '16' }, timeout: { type: 'string', default: '5000' } } });
const seconds = (s) => Number(s) * 1000;
const clients = Number(values.clients);
const keys = Array.from({ length: 1000 }, (_, i) => `paused.${i}`);

const dir = await mkdtemp(join(tmpdir(), 'goddb-paused-'));
const monitorPort = 18000 + Math.floor(Math.random() * 1000);
const nats = await startNatsServer({ configFile: new URL('../nats-server.conf', import.meta.url).pathname, args: ['-m', String(monitorPort)] });
/** The NATS server's connections named for a worker (goddb-<cluster>-<id>), from its monitoring port. */
const workerConnected = async (id) => {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/connz?limit=1024`).catch(() => undefined);
  if (!res) return undefined;
  const connz = await res.json();
  return connz.connections.some((c) => String(c.name ?? '').endsWith(`-${id}`));
};
const workers = [];
let db;
try {
  await startCluster(nats.url, 'lmdb', dir, (w) => workers.push(w));
  db = await connect({ servers: nats.url, timeoutMs: Number(values.timeout) });
  const phases = [];
  let phase;
  const begin = (name) => {
    phase = { name, startedMs: performance.now(), latencies: [], failures: new Map() };
    phases.push(phase);
  };
  let running = true;
  const loop = async (c) => {
    let i = c;
    while (running) {
      const key = keys[(i = (i * 7919 + 13) % keys.length)];
      const mine = phase;
      const t0 = performance.now();
      try {
        if (i % 2 === 0) await db.put(key, `v${i}`);
        else await db.get(key).catch((err) => { if (!/404|not found/i.test(String(err?.message))) throw err; });
        mine.latencies.push(performance.now() - t0);
      } catch (err) {
        const code = String(err?.code ?? err?.message ?? err).slice(0, 40);
        mine.failures.set(code, (mine.failures.get(code) ?? 0) + 1);
        mine.firstMessages ??= new Map();
        if (!mine.firstMessages.has(code)) mine.firstMessages.set(code, String(err?.message ?? err).slice(0, 200));
        mine.lastFailureMs = performance.now();
      }
    }
  };
  begin('before');
  const loops = Array.from({ length: clients }, (_, c) => loop(c + 1));
  await new Promise((r) => setTimeout(r, seconds(values.before)));
  const paused = workers[2];
  process.kill(paused.child.pid, 'SIGSTOP');
  begin(`${paused.id} paused`);
  const pausedAt = performance.now();
  let disconnectedAfter;
  while (performance.now() - pausedAt < seconds(values.pause)) {
    if (disconnectedAfter === undefined && (await workerConnected(paused.id)) === false) disconnectedAfter = (performance.now() - pausedAt) / 1000;
    await new Promise((r) => setTimeout(r, 250));
  }
  process.kill(paused.child.pid, 'SIGCONT');
  begin(`${paused.id} resumed`);
  await new Promise((r) => setTimeout(r, seconds(values.after)));
  running = false;
  await Promise.all(loops);
  const pct = (xs, p) => (xs.length === 0 ? NaN : xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]);
  console.log(disconnectedAfter === undefined ? `the NATS server did not disconnect the paused worker within ${values.pause} s` : `the NATS server disconnected the paused worker ${disconnectedAfter.toFixed(1)} s after SIGSTOP`);
  for (const ph of phases) {
    const xs = ph.latencies.sort((a, b) => a - b);
    const failed = [...ph.failures].map(([c, n]) => `${n} x ${c}`).join(', ') || 'none';
    const lastFailure = ph.lastFailureMs === undefined ? '' : `; last failure ${((ph.lastFailureMs - ph.startedMs) / 1000).toFixed(1)} s into the phase`;
    console.log(`${ph.name.padEnd(12)} ${String(xs.length).padStart(7)} ok  p50 ${pct(xs, 50).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(1)} ms  max ${pct(xs, 100).toFixed(0)} ms  failed: ${failed}${lastFailure}`);
    for (const [code, message] of ph.firstMessages ?? []) console.log(`             first ${code}: ${message}`);
  }
} finally {
  await db?.close?.();
  for (const w of workers) {
    try {
      process.kill(w.child.pid, 'SIGCONT');
      process.kill(w.child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
}
