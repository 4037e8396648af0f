/**
 * Issue 11's "measure like for like" pieces of the benchmark, pure: the
 * three-server NATS cluster's arguments, which processes count as each
 * system's servers, and the CPU-per-op arithmetic.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serverCpuUsPerOp, serverLabels } from '../../src/bench/cpu_per_op.js';
import { r3ClusterName, r3Labels, r3ServerArgs } from '../../src/bench/nats_cluster.js';
import { preloadSystems } from '../../src/bench/plan.js';
import { cpuLabels, memoryTable } from '../../src/bench/report.js';
import { System, type Summary } from '../../src/bench/types.js';

const MiB = 1024 * 1024;
const ports = [{ client: 4001, cluster: 6001 }, { client: 4002, cluster: 6002 }, { client: 4003, cluster: 6003 }];
const sampled = ['nats', 'nats-r3-1', 'nats-r3-2', 'nats-r3-3', 'b1', 'b2', 'b3', 'echo', 'redis', 'loadgen'];

describe('bench like for like', () => {
  it('r3 cluster - each server has its own name, listens on its cluster port and routes to the two others', () => {
    assert.deepEqual(r3Labels(), ['nats-r3-1', 'nats-r3-2', 'nats-r3-3']);
    assert.deepEqual(r3ServerArgs(1, ports), [
      '-n', 'nats-r3-2',
      '--cluster_name', r3ClusterName,
      '--cluster', 'nats://127.0.0.1:6002',
      '--routes', 'nats-route://127.0.0.1:6001,nats-route://127.0.0.1:6003',
    ]);
    const names = ports.map((_, i) => r3ServerArgs(i, ports)[1]);
    assert.equal(new Set(names).size, 3, 'JetStream clustering needs unique server names');
    for (const [i] of ports.entries()) {
      const routes = r3ServerArgs(i, ports).at(-1)!.split(',');
      assert.equal(routes.length, 2);
      assert.ok(!routes.includes(`nats-route://127.0.0.1:${ports[i]!.cluster}`), 'no route to itself');
    }
    assert.throws(() => r3ServerArgs(3, ports));
  });

  it('server labels - each system counts its own servers and never the load generator', () => {
    assert.deepEqual(serverLabels(System.GoddbRaw, sampled), ['nats', 'b1', 'b2', 'b3']);
    assert.deepEqual(serverLabels(System.GoddbSdk, sampled), ['nats', 'b1', 'b2', 'b3']);
    assert.deepEqual(serverLabels(System.Echo, sampled), ['nats', 'echo']);
    assert.deepEqual(serverLabels(System.JetstreamKv, sampled), ['nats']);
    assert.deepEqual(serverLabels(System.JetstreamKvR3, sampled), ['nats-r3-1', 'nats-r3-2', 'nats-r3-3']);
    assert.deepEqual(serverLabels(System.Redis, sampled), ['redis']);
    const withPeriodic = [...sampled, 'nats-periodic', 'p1', 'p2', 'p3'];
    assert.deepEqual(serverLabels(System.GoddbPeriodic, withPeriodic), ['nats-periodic', 'p1', 'p2', 'p3']);
    assert.deepEqual(serverLabels(System.GoddbRaw, withPeriodic), ['nats', 'b1', 'b2', 'b3'], 'the periodic cluster is not goddb-raw\'s');
    const withFanout = [...sampled, 'f1', 'f2', 'f3', 'fl1', 'fl2', 'fl3'];
    assert.deepEqual(serverLabels(System.Fanout, withFanout), ['nats', 'f1', 'f2', 'f3']);
    assert.deepEqual(serverLabels(System.FanoutLmdb, withFanout), ['nats', 'fl1', 'fl2', 'fl3']);
    assert.deepEqual(serverLabels(System.Echo, withFanout), ['nats', 'echo'], 'the fan-out responders are not echo\'s');
  });

  it('cpu per op - % of one core summed over the servers, over ops per second, in µs', () => {
    // 150% of a core at 1,000 ops/s: 1.5 CPU-seconds a second over 1,000 ops is 1,500 µs an op.
    const cpu = { 'nats-r3-1': 90, 'nats-r3-2': 30, 'nats-r3-3': 30, nats: 50, loadgen: 99 };
    assert.equal(serverCpuUsPerOp(System.JetstreamKvR3, cpu, 1_000), 1_500);
    assert.equal(serverCpuUsPerOp(System.JetstreamKv, cpu, 10_000), 50);
    assert.equal(serverCpuUsPerOp(System.GoddbRaw, { nats: 20, b1: 30, b2: 30, b3: 20, loadgen: 40 }, 500), 2_000);
    assert.ok(Number.isNaN(serverCpuUsPerOp(System.Redis, cpu, 1_000)), 'redis was not sampled');
    assert.ok(Number.isNaN(serverCpuUsPerOp(System.JetstreamKv, cpu, 0)), 'nothing completed');
  });

  it('plan and report - R3 is preloaded, its servers follow nats in the CPU columns, heap sits beside RSS', () => {
    assert.deepEqual(preloadSystems([System.JetstreamKv, System.JetstreamKvR3, System.Echo]), [System.JetstreamKv, System.JetstreamKvR3]);
    const s = (cpu: Record<string, number>): Summary => ({ system: System.Echo, op: 'put', concurrency: 1, repeats: 1, opsPerSec: 1, p50Ms: 1, p99Ms: 1, errors: 0, cpu, serverCpuUsPerOp: 1 });
    assert.deepEqual(cpuLabels([s({ loadgen: 1, b1: 1, 'nats-r3-2': 1, 'nats-r3-1': 1, nats: 1, redis: 1 })]), ['nats', 'nats-r3-1', 'nats-r3-2', 'b1', 'loadgen', 'redis']);
    const table = memoryTable([{ id: 'b1', baseBytes: 60 * MiB, afterPreloadBytes: 90 * MiB, endBytes: 91 * MiB, afterPreloadHeapUsedBytes: 20 * MiB, endHeapUsedBytes: 21 * MiB }], MiB);
    assert.match(table.split('\n')[0]!, /heap used after preload \| heap used at end/);
    assert.match(table.split('\n')[2]!, /\| +90\.0 MiB \| 91\.0 MiB \| +20\.0 MiB \| +21\.0 MiB \|/);
  });
});
