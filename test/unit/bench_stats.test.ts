/**
 * The pure parts of the benchmark harness (src/bench/): medians, ratios,
 * target verdicts, table formatting, /proc parsing, options and the plan.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keySpace } from '../../src/bench/closed_loop.js';
import { parseBenchFlags } from '../../src/bench/options.js';
import { measurementPlan, preloadSystems } from '../../src/bench/plan.js';
import { cpuPercent, parseStatCpuTicks, parseStatusBytes } from '../../src/bench/proc.js';
import { formatTable, ratioTable, resultsTable, targetLines } from '../../src/bench/report.js';
import { dataBytesPerNode, formatBytes, likeForLikeTargets, median, ratios, summarize, targets, Verdict, type NodeMemory } from '../../src/bench/stats.js';
import { Engine, Op, System, type BenchConfig, type Sample, type Summary } from '../../src/bench/types.js';

function sample(system: System, op: Op, concurrency: number, repeat: number, opsPerSec: number, p99Ms = 1, errors = 0): Sample {
  return {
    system, op, concurrency, repeat, ops: opsPerSec, opsPerSec, windowMs: 1000,
    p50Ms: p99Ms / 2, p99Ms, p999Ms: p99Ms, maxMs: p99Ms, errors, warmupErrors: 0, cpu: { nats: opsPerSec / 100 }, serverCpuUsPerOp: 10 * repeat, loadgenPid: 1,
  };
}

const withCpu = (s: Summary, cpu: number): Summary => ({ ...s, serverCpuUsPerOp: cpu });

function summary(system: System, op: Op, concurrency: number, opsPerSec: number, p99Ms = 1): Summary {
  return { system, op, concurrency, repeats: 1, opsPerSec, p50Ms: p99Ms / 2, p99Ms, errors: 0, cpu: {}, serverCpuUsPerOp: Number.NaN };
}

const MiB = 1024 * 1024;

describe('bench stats', () => {
  it('median - the middle value, the mean of the two middle ones, NaN for none', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
    assert.ok(Number.isNaN(median([])));
  });

  it('summarize - medians per system, op and concurrency, errors summed over repeats', () => {
    const s = summarize([
      sample(System.Redis, Op.Get, 16, 1, 100, 3, 1),
      sample(System.Redis, Op.Get, 16, 2, 300, 1, 0),
      sample(System.Redis, Op.Get, 16, 3, 200, 2, 2),
      sample(System.Echo, Op.Get, 16, 1, 50),
    ]);
    assert.equal(s.length, 2);
    assert.deepEqual(s[0], { system: System.Redis, op: Op.Get, concurrency: 16, repeats: 3, opsPerSec: 200, p50Ms: 1, p99Ms: 2, errors: 3, cpu: { nats: 2 }, serverCpuUsPerOp: 20 });
    assert.equal(s[1]!.system, System.Echo);
  });

  it('ratios - each GoD-DB client over each reference, where both were measured', () => {
    const list = ratios([
      summary(System.GoddbRaw, Op.Put, 128, 900),
      summary(System.GoddbSdk, Op.Put, 128, 600),
      summary(System.JetstreamKv, Op.Put, 128, 1200),
      summary(System.Redis, Op.Put, 128, 3000),
      summary(System.GoddbRaw, Op.Get, 128, 500),
    ]);
    const find = (system: System, reference: System) => list.find((r) => r.system === system && r.reference === reference && r.op === Op.Put)?.ratio;
    assert.equal(find(System.GoddbRaw, System.JetstreamKv), 0.75);
    assert.equal(find(System.GoddbSdk, System.Redis), 0.2);
    assert.equal(find(System.GoddbRaw, System.Echo), undefined, 'echo was not measured');
    assert.equal(list.filter((r) => r.op === Op.Get).length, 0, 'no reference measured get');
  });

  it('data per node - keys times key and value bytes, times N over the nodes', () => {
    assert.equal(dataBytesPerNode(10_000, 7, 100, 3, 3), 1_070_000);
    assert.equal(dataBytesPerNode(10, 10, 90, 2, 4), 500);
  });

  it('targets - throughput ratio, p99 and memory verdicts with their numbers', () => {
    const memory: NodeMemory[] = [
      { id: 'b1', baseBytes: 60 * MiB, afterPreloadBytes: 61 * MiB, endBytes: 61 * MiB },
      { id: 'b2', baseBytes: 60 * MiB, afterPreloadBytes: 61 * MiB, endBytes: 70 * MiB },
    ];
    const list = targets({
      summaries: [
        summary(System.GoddbRaw, Op.Put, 128, 1500),
        summary(System.JetstreamKv, Op.Put, 128, 1000),
        summary(System.GoddbRaw, Op.Get, 128, 900),
        summary(System.JetstreamKv, Op.Get, 128, 1000),
        summary(System.GoddbRaw, Op.Put, 16, 0, 6),
        summary(System.GoddbRaw, Op.Get, 16, 0, 6.5),
      ],
      memory,
      dataBytesPerNode: 2 * MiB,
      engine: Engine.Lmdb,
    });
    assert.deepEqual(list.map((t) => t.verdict), [Verdict.Met, Verdict.NotMet, Verdict.Met, Verdict.NotMet, Verdict.NotMet]);
    assert.match(list[0]!.detail, /goddb-raw 1,500 ops\/s vs jetstream-kv 1,000 ops\/s = 1\.50x/);
    assert.match(list[3]!.detail, /p99 6\.50 ms/);
    assert.match(list[4]!.detail, /b1 61\.0 MiB \(limit 64\.0 MiB\), b2 70\.0 MiB \(limit 64\.0 MiB\)/);
  });

  it('targets (issue 11) - against jetstream-kv-r3: ops/s and CPU per op at C=128, p99 at C=16, and the stretch against jetstream-kv', () => {
    const list = likeForLikeTargets([
      withCpu(summary(System.GoddbRaw, Op.Put, 128, 1200), 40),
      withCpu(summary(System.JetstreamKvR3, Op.Put, 128, 1000), 50),
      withCpu(summary(System.GoddbRaw, Op.Get, 128, 900), 30),
      withCpu(summary(System.JetstreamKvR3, Op.Get, 128, 1000), 20),
      summary(System.GoddbRaw, Op.Put, 16, 0, 4),
      summary(System.JetstreamKvR3, Op.Put, 16, 0, 5),
      summary(System.GoddbRaw, Op.Get, 16, 0, 6),
      summary(System.JetstreamKvR3, Op.Get, 16, 0, 5),
      summary(System.JetstreamKv, Op.Put, 128, 2400),
    ]);
    assert.deepEqual(list.map((t) => t.verdict), [Verdict.Met, Verdict.NotMet, Verdict.Met, Verdict.NotMet, Verdict.Met, Verdict.NotMet, Verdict.Met, Verdict.NotMeasured]);
    assert.match(list[0]!.detail, /goddb-raw 1,200 ops\/s vs jetstream-kv-r3 1,000 ops\/s = 1\.20x/);
    assert.match(list[3]!.detail, /30 µs vs jetstream-kv-r3 20 µs = 1\.50x/);
    assert.match(list[6]!.detail, /= 0\.50x/);
    assert.equal(list.length, 8, 'no periodic verdicts without goddb-periodic');
  });

  it('targets (issue 11) - goddb-periodic, when measured, gets the same verdicts, named periodic:', () => {
    const list = likeForLikeTargets([
      withCpu(summary(System.GoddbRaw, Op.Put, 128, 800), 60),
      withCpu(summary(System.GoddbPeriodic, Op.Put, 128, 1100), 45),
      withCpu(summary(System.JetstreamKvR3, Op.Put, 128, 1000), 50),
    ]);
    assert.equal(list.length, 16);
    assert.equal(list[0]!.name, 'put throughput at C=128 >= 1.0x jetstream-kv-r3');
    assert.deepEqual([list[0]!.verdict, list[2]!.verdict], [Verdict.NotMet, Verdict.NotMet]);
    assert.equal(list[8]!.name, 'periodic: put throughput at C=128 >= 1.0x jetstream-kv-r3');
    assert.deepEqual([list[8]!.verdict, list[10]!.verdict], [Verdict.Met, Verdict.Met]);
    assert.match(list[8]!.detail, /goddb-periodic 1,100 ops\/s vs jetstream-kv-r3 1,000 ops\/s = 1\.10x/);
    assert.match(list[9]!.detail, /needs goddb-periodic and jetstream-kv-r3 at C=128/);
  });

  it('targets - not measured without the systems or concurrencies they need, and flagged off lmdb', () => {
    const list = targets({ summaries: [summary(System.GoddbRaw, Op.Put, 16, 100, 1)], memory: [], dataBytesPerNode: 0, engine: Engine.Memory });
    assert.deepEqual(list.map((t) => t.verdict), [Verdict.NotMeasured, Verdict.NotMeasured, Verdict.Met, Verdict.NotMeasured, Verdict.NotMeasured]);
    assert.match(list[2]!.detail, /engine memory; the targets are stated for lmdb/);
  });

  it('table - columns padded to line up, numbers aligned right, valid Markdown', () => {
    const text = formatTable(['name', 'ops/s'], [['a', '1,000'], ['longer', '5']], new Set([1]));
    assert.equal(text, [
      '| name   | ops/s |',
      '|--------|------:|',
      '| a      | 1,000 |',
      '| longer |     5 |',
    ].join('\n'));
  });

  it('tables - results with a CPU column per process, ratios, target lines', () => {
    const s: Summary = { ...summary(System.GoddbRaw, Op.Get, 16, 1234.4, 2.5), cpu: { loadgen: 80.4, b2: 30, nats: 45.6, b1: 20 }, serverCpuUsPerOp: 774.6 };
    const lines = resultsTable([s]).split('\n');
    assert.match(lines[0]!, /^\| system +\| op +\| +C \| +ops\/s \| p50 ms \| p99 ms \| server CPU µs\/op \| errors \| nats % \| b1 % \| b2 % \| loadgen % \|$/);
    assert.match(lines[2]!, /^\| goddb-raw \| get \| +16 \| +1,234 \| +1\.25 \| +2\.50 \| +775 \| +0 \| +46 \| +20 \| +30 \| +80 \|$/);
    const r = ratioTable([{ op: Op.Get, concurrency: 16, system: System.GoddbRaw, reference: System.Redis, ratio: 0.25 }]);
    assert.match(r, /raw \/ redis/);
    assert.match(r, /\| get \| +16 \| +0\.25x \|/);
    assert.equal(targetLines([{ name: 'x', verdict: Verdict.Met, detail: 'y' }, { name: 'z', verdict: Verdict.NotMet, detail: 'w' }]), '- MET      x: y\n- NOT MET  z: w');
  });

  it('bytes - KiB below a MiB, MiB above', () => {
    assert.equal(formatBytes(21_400), '20.9 KiB');
    assert.equal(formatBytes(3 * MiB), '3.0 MiB');
  });

  it('proc - utime + stime from a stat line whose command holds spaces and parentheses', () => {
    const line = '4242 (node (bench) x) S 1 4242 4242 0 -1 4194560 12345 0 3 0 1500 250 0 0 20 0 11 0 4000 1234567890 20000 18446744073709551615 1 1 0 0 0 0 0 4096 17922 0 0 0 17 1 0 0 0 0 0\n';
    assert.equal(parseStatCpuTicks(line), 1750);
    assert.throws(() => parseStatCpuTicks('garbage'));
  });

  it('proc - VmRSS and friends from a status text, in bytes', () => {
    const status = 'Name:\tnode\nVmPeak:\t 1000 kB\nVmRSS:\t   81920 kB\nRssAnon:\t   61440 kB\nRssFile:\t   20480 kB\nThreads:\t11\n';
    assert.equal(parseStatusBytes(status, 'VmRSS'), 80 * MiB);
    assert.equal(parseStatusBytes(status, 'RssFile'), 20 * MiB);
    assert.equal(parseStatusBytes(status, 'VmSwap'), undefined);
  });

  it('proc - CPU ticks over a window as % of one core', () => {
    assert.equal(cpuPercent(100, 250, 3000, 100), 50);
    assert.equal(cpuPercent(0, 600, 3000, 100), 200);
    assert.equal(cpuPercent(5, 5, 0, 100), 0);
  });

  it('options - defaults, --quick presets, and explicit options winning over them', () => {
    const full = parseBenchFlags({}) as BenchConfig;
    assert.deepEqual(
      { d: full.durationMs, w: full.warmupMs, r: full.repeats, c: full.concurrency, v: full.valueBytes, k: full.keys, e: full.engine, n: full.systems.length, o: full.outDir, nodes: full.nodes },
      { d: 3000, w: 1000, r: 3, c: [1, 16, 128], v: 100, k: 10_000, e: Engine.Lmdb, n: 10, o: 'bench-results', nodes: 3 },
    );
    const quick = parseBenchFlags({ quick: true, duration: '300', concurrency: '4' }) as BenchConfig;
    assert.deepEqual({ d: quick.durationMs, w: quick.warmupMs, r: quick.repeats, c: quick.concurrency }, { d: 300, w: 200, r: 1, c: [4] });
    const some = parseBenchFlags({ systems: 'redis, goddb-raw', engine: 'memory' }) as BenchConfig;
    assert.deepEqual(some.systems, [System.GoddbRaw, System.Redis], 'canonical order');
    assert.equal(some.engine, Engine.Memory);
    assert.equal(full.ratePerSec, undefined, 'the closed loop unless --rate');
    assert.equal((parseBenchFlags({ rate: '2500' }) as BenchConfig).ratePerSec, 2500);
    assert.deepEqual(full.ops, ['put', 'get'], 'both operations unless --ops');
    assert.deepEqual((parseBenchFlags({ ops: 'get' }) as BenchConfig).ops, ['get']);
    assert.deepEqual((parseBenchFlags({ ops: ' get, put ' }) as BenchConfig).ops, ['put', 'get'], 'canonical order');
  });

  it('options - a bad value is an error that names the option', () => {
    assert.match((parseBenchFlags({ duration: '1.5' }) as { error: string }).error, /--duration must be an integer/);
    assert.match((parseBenchFlags({ concurrency: '1,0' }) as { error: string }).error, /--concurrency/);
    assert.match((parseBenchFlags({ systems: 'mongo' }) as { error: string }).error, /unknown mongo/);
    assert.match((parseBenchFlags({ engine: 'redis' }) as { error: string }).error, /--engine/);
    assert.match((parseBenchFlags({ nodes: '2' }) as { error: string }).error, /--nodes must be an integer from 3/, 'fewer workers than N=3');
    assert.match((parseBenchFlags({ rate: '0' }) as { error: string }).error, /--rate must be an integer from 1/);
    assert.match((parseBenchFlags({ ops: 'put,scan' }) as { error: string }).error, /--ops: unknown scan; choose from put, get/);
    assert.match((parseBenchFlags({ ops: ' , ' }) as { error: string }).error, /--ops needs at least one operation/);
  });

  it('plan - repeats outermost, every system within each (op, C), rotated each repeat', () => {
    const plan = measurementPlan({ systems: [System.GoddbRaw, System.Echo, System.Redis], concurrency: [1, 16], repeats: 2, ops: ['put', 'get'] });
    assert.equal(plan.length, 3 * 2 * 2 * 2);
    assert.deepEqual(plan.slice(0, 3).map((m) => `${m.system} ${m.op} ${m.concurrency} ${m.repeat}`), ['goddb-raw put 1 1', 'echo put 1 1', 'redis put 1 1']);
    assert.deepEqual(plan.slice(12, 15).map((m) => `${m.system} ${m.op} ${m.concurrency} ${m.repeat}`), ['echo put 1 2', 'redis put 1 2', 'goddb-raw put 1 2']);
    assert.deepEqual(preloadSystems([System.GoddbRaw, System.GoddbSdk, System.Echo, System.Redis]), [System.GoddbRaw, System.Redis], 'GoD-DB once; echo holds nothing');
    const gets = measurementPlan({ systems: [System.GoddbRaw, System.Redis], concurrency: [16, 128], repeats: 2, ops: ['get'] });
    assert.deepEqual(gets.map((m) => `${m.system} ${m.op} ${m.concurrency} ${m.repeat}`),
      ['goddb-raw get 16 1', 'redis get 16 1', 'goddb-raw get 128 1', 'redis get 128 1', 'redis get 16 2', 'goddb-raw get 16 2', 'redis get 128 2', 'goddb-raw get 128 2'], '--ops get: no put measured');
  });

  it('keys - one width for the whole key space', () => {
    assert.deepEqual(keySpace(3), ['key0', 'key1', 'key2']);
    assert.deepEqual(keySpace(11).slice(9), ['key09', 'key10']);
    assert.equal(new Set(keySpace(10_000).map((k) => k.length)).size, 1);
  });
});
