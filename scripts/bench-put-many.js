#!/usr/bin/env node
// How long storing a range pull of N keys takes on LMDB, a page at a time as
// node/handoff/moves.ts stores them: before (every item of a page through
// Replica.put at once) and after (one Replica.putMany per page), and the same
// at the engine (engine.put of a page at once vs engine.putMany). Not a test:
// it prints figures. Build first (npx tsc ... --outDir <dist>).
//
//   node scripts/bench-put-many.js [--keys 50000] [--page 512] [--value 100] [--rounds 3] [--dist dist]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '50000' },
    page: { type: 'string', default: '512' },
    value: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    dist: { type: 'string', default: process.env.GODDB_DIST ?? 'dist' },
  },
});
const keys = Number(values.keys);
const page = Number(values.page);
const valueBytes = Number(values.value);
const rounds = Number(values.rounds);
const load = (path) => import(pathToFileURL(resolve(values.dist, path)).href);
const { LmdbEngine } = await load('src/storage/lmdb.js');
const { Replica } = await load('src/node/replica/replica.js');
const { HybridClock } = await load('src/node/clock/hybrid_clock.js');
const { realClock } = await load('src/node/clock/real_clock.js');
const { MemoryMetaStore } = await load('src/storage/meta.js');
const { encodeRecord } = await load('src/protocol/codec.js');
const { pino } = await import('pino');

const now = realClock.nowMs() * 1000;
const items = Array.from({ length: keys }, (_, i) => ({
  key: `bench/${i}`,
  versions: [{ clock: { src: 1 }, hlc: now, writer: 'src', tombstone: false, value: new Uint8Array(valueBytes).fill(i & 0xff) }],
}));
const pages = [];
for (let i = 0; i < items.length; i += page) pages.push(items.slice(i, i + page));

const ways = {
  'engine.put (a page at once)': (engine) => async (p) => void (await Promise.all(p.map((i) => engine.put(i.key, encodeRecord(i.versions))))),
  'engine.putMany (one per page)': (engine) => async (p) => engine.putMany(p.map((i) => ({ key: i.key, record: encodeRecord(i.versions) }))),
  'Replica.put (a page at once: before)': (_, replica) => async (p) => void (await Promise.all(p.map((i) => replica.put(i.key, i.versions)))),
  'Replica.putMany (one per page: after)': (_, replica) => async (p) => replica.putMany(p),
};

// Rounds interleave the ways, so a machine whose load drifts does not favour one of them.
const times = new Map(Object.keys(ways).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, make] of Object.entries(ways)) {
    const path = await mkdtemp(join(tmpdir(), 'goddb-bench-put-many-'));
    const engine = new LmdbEngine({ path, mapSizeBytes: 1024 * 1024 * 1024 });
    await engine.open();
    const hlc = new HybridClock(realClock, new MemoryMetaStore(), 60_000);
    const replica = new Replica(engine, hlc, { conflictPolicy: 'lww', recordBytesMax: 1 << 20, replyBytesMax: 1 << 20, protocolMax: 2 }, pino({ level: 'silent' }));
    const store = make(engine, replica);
    const started = performance.now();
    for (const p of pages) await store(p);
    times.get(name).push(performance.now() - started);
    if ((await engine.count()) !== keys) throw new Error(`${name}: ${await engine.count()} keys stored, expected ${keys}`);
    await engine.close();
    await rm(path, { recursive: true, force: true });
  }
}
for (const [name, ts] of times) {
  const median = [...ts].sort((a, b) => a - b)[Math.floor(ts.length / 2)];
  console.log(`${name.padEnd(40)} ${keys} keys, pages of ${page}: median ${median.toFixed(0)} ms (${((keys / median) * 1000).toFixed(0)} keys/s); ${ts.map((t) => t.toFixed(0)).join(', ')} ms`);
}
