import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { visibleValue } from '../../src/core/version.js';
import { ClientOp, replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import { replyError } from '../../src/transport/transport.js';
import { seededRandom } from '../../src/transport/sim.js';
import pino from 'pino';
import { QuorumNotMetError } from '../../src/core/errors.js';
import { Coordinator } from '../../src/node/coordinator/coordinator.js';
import { startNode } from '../../src/node/node.js';
import { MemoryEngine } from '../../src/storage/memory.js';
import { SimCluster, simConfig, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

async function stored(c: SimCluster, id: string, key: string): Promise<string | undefined> {
  const v = visibleValue(await c.node(id).node.replica.get(key), 0);
  return v ? text(v.value) : undefined;
}

describe('simulated three-node cluster', () => {
  it('sim - puts and gets succeed with one node dropped, before and after it is marked down', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    for (let i = 0; i < 20; i++) assert.equal((await c.request(ClientOp.Put, `k.${i}`, `v${i}`)).code, 200);
    c.bus.kill('n3');
    for (let i = 0; i < 20; i++) {
      const put = await c.request(ClientOp.Put, `k.${i}`, `w${i}`, { 'KV-W': '2' });
      assert.equal(put.code, 200, put.message);
      const get = await c.request(ClientOp.Get, `k.${i}`, '', { 'KV-R': '2' });
      assert.equal(get.code, 200, get.message);
      assert.equal(get.value, `w${i}`);
    }
    await c.clock.advance(5000);
    assert.equal(c.node('n1').node.membership.isUp('n3'), false, 'n3 is marked down after the failure timeout');
    assert.deepEqual(c.node('n1').node.membership.members().map((m) => m.id), ids, 'a down node stays in the ring');
    const put = await c.request(ClientOp.Put, 'after', 'x');
    assert.equal(put.code, 200);
    assert.equal(put.header('KV-Acks'), '2/2', 'the down node is skipped, not asked');
    assert.equal((await c.request(ClientOp.Get, 'after')).value, 'x');
    const three = await c.request(ClientOp.Put, 'after', 'y', { 'KV-W': '3' });
    assert.equal(three.code, 503);
    assert.match(three.message, /2 of 3 replicas up, W=3 needed/);
    c.bus.kill('n2');
    const lone = await c.request(ClientOp.Get, 'after');
    assert.equal(lone.code, 503, 'R=2 cannot be met by one node');
    await c.stop();
  });

  it('sim - read repair brings a stale replica up to date', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    await c.crash('n3');
    for (let i = 0; i < 10; i++) assert.equal((await c.request(ClientOp.Put, `r.${i}`, `v${i}`)).code, 200);
    for (let i = 0; i < 10; i++) assert.equal(await stored(c, 'n3', `r.${i}`), undefined, 'n3 missed the writes');
    await c.revive('n3');
    for (let i = 0; i < 10; i++) {
      const get = await c.request(ClientOp.Get, `r.${i}`, '', { 'KV-R': '3' });
      assert.equal(get.value, `v${i}`);
    }
    await c.clock.advance(100); // repairs are sent after the reply
    for (let i = 0; i < 10; i++) assert.equal(await stored(c, 'n3', `r.${i}`), `v${i}`, `n3 repaired r.${i}`);
    assert.ok([...c.nodes.values()].reduce((s, n) => s + n.node.coordinator.readRepairs, 0) >= 10);
    await c.stop();
  });

  it('sim - a replica behind that answers a read after its quorum (a speculative retry won it) is repaired', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids);
    await c.start();
    await c.crash('n3');
    const keys = Array.from({ length: 12 }, (_, i) => `late.${i}`);
    for (const key of keys) assert.equal((await c.request(ClientOp.Put, key, `v-${key}`)).code, 200);
    await c.revive('n3');
    const coordinator = c.node('n1').node.coordinator;
    // Keys whose second target from n1 is n3 (n1 reads itself first): with n3's replica reads held
    // past the speculative delay, n2 is asked too and the quorum is n1's and n2's; n3 answers later.
    const late = keys.filter((key) => coordinator.placementOf(key).replicas.map((r) => r.node).filter((n) => n !== 'n1')[0] === 'n3');
    assert.ok(late.length > 0, `seed ${seed}: some key has n3 as its second target`);
    for (const key of late) assert.equal(await stored(c, 'n3', key), undefined, 'n3 missed the writes');
    c.bus.stall('n3', (subject) => subject === replicaSubject('sim', 'n3', ReplicaOp.Get));
    for (const key of late) {
      const r = await c.clock.run(coordinator.read(key, 2));
      assert.equal(text(visibleValue(r.versions, r.nowHlc)!.value), `v-${key}`);
      assert.equal(r.acks, 2);
    }
    c.bus.unstall('n3');
    await c.clock.advance(100); // n3's answers arrive, then the repairs
    for (const key of late) assert.equal(await stored(c, 'n3', key), `v-${key}`, `seed ${seed}: n3 repaired ${key} from its late answer`);
    await c.stop();
  });

  it('sim - a delete is a tombstone: reads give 404 and read repair spreads it', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    assert.equal((await c.request(ClientOp.Put, 'gone', 'here', { 'KV-W': '3' })).code, 200, 'on all three replicas before n1 crashes');
    await c.crash('n1');
    assert.equal((await c.request(ClientOp.Del, 'gone')).code, 200);
    await c.revive('n1');
    assert.equal(await stored(c, 'n1', 'gone'), 'here', 'n1 missed the delete');
    const get = await c.request(ClientOp.Get, 'gone', '', { 'KV-R': '3' });
    assert.equal(get.code, 404);
    await c.clock.advance(100);
    const held = await c.node('n1').node.replica.get('gone');
    assert.ok(held.some((v) => v.tombstone), 'the tombstone reached n1');
    assert.equal(visibleValue(held, 0), undefined, 'n1 alone now reads the key as deleted');
    await c.stop();
  });

  it('sim - a storage failure on one replica is a failed replica, not a failed request', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    c.node('n2').engine.setFailing(true);
    for (let i = 0; i < 10; i++) {
      assert.equal((await c.request(ClientOp.Put, `s.${i}`, 'v')).code, 200);
      assert.equal((await c.request(ClientOp.Get, `s.${i}`)).value, 'v');
    }
    const all = await c.request(ClientOp.Put, 's.0', 'v', { 'KV-W': '3' });
    assert.equal(all.code, 503);
    assert.match(all.message, /^quorum not reached: [0-2] of 3 replicas answered ok, 1 failed, W=3 needed/);
    c.node('n2').engine.setFailing(false);
    assert.equal((await c.request(ClientOp.Put, 's.0', 'v2', { 'KV-W': '3' })).code, 200);
    await c.stop();
  });

  it('sim - no acknowledged write is lost under drops and partitions (seeded schedule)', async () => {
    const seed = simSeed();
    const random = seededRandom(seed ^ 0x5eed);
    const c = new SimCluster(seed, ids);
    await c.start();
    c.bus.dropRate = 0.05;
    const keys = Array.from({ length: 8 }, (_, i) => `inv.${i}`);
    /** Per key: the last acknowledged value and every value whose put failed after it. */
    const model = new Map<string, { acked: string | undefined; maybe: Set<string> }>(keys.map((k) => [k, { acked: undefined, maybe: new Set() }]));
    for (let step = 0; step < 300; step++) {
      if (step % 50 === 10) c.bus.isolate(ids[Math.floor(random() * 3)]!, [...ids]);
      if (step % 50 === 30) c.bus.heal();
      const key = keys[Math.floor(random() * keys.length)]!;
      const value = `s${step}`;
      const put = await c.request(ClientOp.Put, key, value);
      const m = model.get(key)!;
      if (put.code === 200) model.set(key, { acked: value, maybe: new Set() });
      else m.maybe.add(value);
    }
    c.bus.heal();
    c.bus.dropRate = 0;
    await c.clock.advance(5000);
    for (const [key, m] of model) {
      if (m.acked === undefined) continue;
      const get = await c.request(ClientOp.Get, key, '', { 'KV-R': '2' });
      assert.equal(get.code, 200, `seed ${seed}: ${key} readable`);
      assert.ok(get.value === m.acked || m.maybe.has(get.value), `seed ${seed}: ${key} read ${get.value}, last acknowledged ${m.acked}`);
    }
    await c.stop();
  });
});

describe('simulated membership', () => {
  it('sim - a second process with a node id already in use is reported by both', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const before = c.node('n1').node;
    assert.equal(before.membership.duplicateOf, undefined);
    const impostor = c.bus.connect('n1-again');
    const second = await c.clock.run(startNode(simConfig('n1', ids), { logger: pino({ level: 'silent' }), transport: impostor, engine: new MemoryEngine(), clock: c.clock, http: false }));
    await c.clock.advance(1500);
    assert.notEqual(before.membership.duplicateOf, undefined, 'the first process noticed');
    assert.notEqual(second.membership.duplicateOf, undefined, 'the second process noticed');
    await c.clock.run(second.stop());
    await c.stop();
  });
});

/** A second coordinator on n1's transport, membership and replica, with its own limits. */
function limitedCoordinator(c: SimCluster, limitsOverride: { inflightRequestsMax?: number; inflightBytesMax?: number }): Coordinator {
  const n1 = c.node('n1');
  return new Coordinator(
    { self: 'n1', cluster: 'sim', replication: 3, requestTimeoutMs: 2000, readSpeculativeMs: 50, conflictPolicy: 'lww', recordBytesMax: 1 << 20, ...limitsOverride },
    n1.transport, n1.node.membership, n1.node.replica, c.clock, n1.node.hlc, pino({ level: 'silent' }),
  );
}

describe('simulated coordinator limits', () => {
  it('sim - a coordinator refuses writes past its in-flight value bytes with 503, and takes them again once they finish', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const coordinator = limitedCoordinator(c, { inflightBytesMax: 150 });
    const value = new Uint8Array(100);
    const first = coordinator.write('big.1', value, 2);
    await assert.rejects(coordinator.write('big.2', value, 2), (e: unknown) => e instanceof QuorumNotMetError && /bytes of values in flight/.test(e.message));
    await c.clock.run(first);
    assert.equal((await c.clock.run(coordinator.write('big.2', value, 2))).acks, 2, 'room again once the first finished');
    await c.stop();
  });

  it('sim - a coordinator refuses requests past its in-flight maximum with 503', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const coordinator = limitedCoordinator(c, { inflightRequestsMax: 1 });
    const first = coordinator.read('busy', 2);
    await assert.rejects(coordinator.read('busy', 2), (e: unknown) => e instanceof QuorumNotMetError && /1 requests in flight/.test(e.message));
    await c.clock.run(first);
    await c.clock.run(coordinator.read('busy', 2));
    await c.stop();
  });

  it('sim - a replica refuses a malformed request whole, with 400, and keeps serving', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const probe = c.bus.connect('probe');
    const reply = await c.clock.run(probe.request(replicaSubject('sim', 'n2', ReplicaOp.Put), new Uint8Array([0xff, 0x00]), { timeoutMs: 1000 }));
    const err = replyError(reply);
    assert.equal(err?.code, 400);
    assert.match(err!.message, /malformed message/);
    assert.equal((await c.request(ClientOp.Put, 'after.garbage', 'v', { 'KV-W': '3' })).code, 200);
    await c.stop();
  });
});

describe('simulated read repair of siblings', () => {
  it('sim - concurrent blind writes are collapsed by LWW on every replica (lww), replicas that agree are not rewritten by reads, and a write with the read context supersedes', async () => {
    const c = new SimCluster(simSeed(), ids);
    await c.start();
    const bytes = (s: string) => new TextEncoder().encode(s);
    await c.clock.run(c.node('n1').node.coordinator.write('sib', bytes('from n1'), 3));
    await c.clock.advance(5);
    await c.clock.run(c.node('n2').node.coordinator.write('sib', bytes('from n2'), 3));
    for (const id of ids) {
      // Under lww a replica stores what every read would answer: one version, the later write's
      // value, with a clock that covers both writes.
      const held = await c.node(id).node.replica.get('sib');
      assert.equal(held.length, 1, `${id} collapsed the two blind writes`);
      assert.equal(new TextDecoder().decode(held[0]!.value), 'from n2');
      assert.deepEqual(Object.keys(held[0]!.clock).sort(), ['n1', 'n2'], `${id}'s version covers both writes`);
    }
    const repairsBefore = [...c.nodes.values()].reduce((s, n) => s + n.node.coordinator.readRepairs, 0);
    const get = await c.request(ClientOp.Get, 'sib', '', { 'KV-R': '3' });
    assert.equal(get.value, 'from n2', 'the later write wins');
    await c.clock.advance(100);
    const repairsAfter = [...c.nodes.values()].reduce((s, n) => s + n.node.coordinator.readRepairs, 0);
    assert.equal(repairsAfter, repairsBefore, 'no replica was behind, so none was written');
    const ctx = get.header('KV-Context')!;
    assert.equal((await c.request(ClientOp.Put, 'sib', 'resolved', { 'KV-Context': ctx, 'KV-W': '3' })).code, 200);
    for (const id of ids) assert.equal((await c.node(id).node.replica.get('sib')).length, 1, `a write with the read's context supersedes both on ${id}`);
    await c.stop();
  });
});
