import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ErrorCode } from '../../src/core/errors.js';
import { Metrics } from '../../src/node/api/metrics.js';
import { timeReplicaTraffic, ReplicaTiming } from '../../src/node/api/replica_timing.js';
import { replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import { SimBus } from '../../src/transport/sim.js';
import { FakeClock } from '../helpers/fake_clock.js';

const empty = new Uint8Array(0);

/** `name`'s _count series as { 'op outcome': count }. */
async function counts(timing: ReplicaTiming, which: 'sent' | 'served'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await timing[which].get()).values) {
    if (v.metricName?.endsWith('_count')) out[`${v.labels['op']} ${v.labels['outcome']}`] = v.value;
  }
  return out;
}

describe('replica timing', () => {
  it('replica timing - node requests are timed at both ends by operation and outcome; other subjects pass untimed', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 1, clock });
    const serverTiming = new ReplicaTiming();
    const clientTiming = new ReplicaTiming();
    const server = timeReplicaTraffic(bus.connect('n2'), 'c', serverTiming);
    const client = timeReplicaTraffic(bus.connect('n1'), 'c', clientTiming);
    server.subscribe(replicaSubject('c', 'n2', ReplicaOp.Get), (m) => m.respond(empty));
    server.subscribe(replicaSubject('c', 'n2', ReplicaOp.Put), (m) => m.respondError(ErrorCode.StorageUnavailable, 'disk full'));
    server.subscribe('kv.get.>', (m) => m.respond(empty));
    await clock.run(client.request(replicaSubject('c', 'n2', ReplicaOp.Get), empty, { timeoutMs: 100 }));
    await clock.run(client.request(replicaSubject('c', 'n2', ReplicaOp.Get), empty, { timeoutMs: 100 }));
    await clock.run(client.request(replicaSubject('c', 'n2', ReplicaOp.Put), empty, { timeoutMs: 100 }));
    await assert.rejects(clock.run(client.request(replicaSubject('c', 'n3', ReplicaOp.Aae), empty, { timeoutMs: 100 })));
    await clock.run(client.request('kv.get.k', empty, { timeoutMs: 100 }));
    assert.deepEqual(await counts(clientTiming, 'sent'), { 'get ok': 2, 'put 507': 1, 'aae 503': 1 });
    assert.deepEqual(await counts(serverTiming, 'served'), { 'get ok': 2, 'put 507': 1 });
    assert.deepEqual(await counts(clientTiming, 'served'), {});
  });

  it('replica timing - a request with no reply in time counts as 504; its histograms join a registry once', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 2, clock });
    const timing = new ReplicaTiming();
    bus.connect('n2').subscribe(replicaSubject('c', 'n2', ReplicaOp.Probe), () => undefined);
    const client = timeReplicaTraffic(bus.connect('n1'), 'c', timing);
    await assert.rejects(clock.run(client.request(replicaSubject('c', 'n2', ReplicaOp.Probe), empty, { timeoutMs: 100 })));
    assert.deepEqual(await counts(timing, 'sent'), { 'probe 504': 1 });
    const registry = new Registry();
    timing.sent.register(registry);
    timing.served.register(registry);
    assert.match(await registry.metrics(), /goddb_replica_request_sent_duration_seconds_count\{op="probe",outcome="504"\} 1/);
  });

  it('replica timing - /metrics counts quorum failures by operation and code, and shows store bytes by namespace and both replica histograms', async () => {
    const zero = () => 0;
    const metrics = new Metrics('n1', {
      inflight: zero, membersUp: zero, readRepairs: zero, staleRetries: zero, staleRefusals: zero, skewRefusals: zero,
      malformedReplicaRequests: zero, unconfirmedMembers: zero, hlc: zero, handoffKeysSent: zero, handoffBytesSent: zero, handoffActive: zero,
      keys: async () => 0, ringMembers: zero, ringOwnedRatio: zero, memberStates: () => [], settled: () => true, keysDeleted: zero,
      replicaTiming: new ReplicaTiming(),
      storageBytes: async () => ({ data: 4096, hints: 8192 }),
    });
    metrics.observe('put', 200, 1);
    metrics.observe('put', 503, 1);
    metrics.observe('put', 503, 1);
    metrics.observe('get', 504, 1);
    metrics.observe('get', 404, 1);
    metrics.observe('get', 400, 1);
    const text = await metrics.registry.metrics();
    const failures = text.split('\n').filter((l) => l.startsWith('goddb_quorum_failures_total{')).sort();
    assert.deepEqual(failures, ['goddb_quorum_failures_total{op="get",code="504",node_id="n1"} 1', 'goddb_quorum_failures_total{op="put",code="503",node_id="n1"} 2']);
    assert.match(text, /^goddb_storage_bytes\{namespace="data",node_id="n1"\} 4096$/m);
    assert.match(text, /^goddb_storage_bytes\{namespace="hints",node_id="n1"\} 8192$/m);
    assert.match(text, /^# TYPE goddb_replica_request_sent_duration_seconds histogram$/m);
    assert.match(text, /^# TYPE goddb_replica_request_served_duration_seconds histogram$/m);
  });
});
