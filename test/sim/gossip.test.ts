/**
 * Gossip is not trusted (issue 8, defect 5), on a seeded simulated cluster:
 * forged and damaged heartbeats (hundreds of random ids, a million virtual
 * nodes, a real member's id with another incarnation, flipped bits, garbage)
 * leave every node's ring as it was and every key readable; a real new node
 * is still admitted; the refusals are logged at most once per interval per
 * reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { limits } from '../../src/core/limits.js';
import { Membership } from '../../src/node/membership/membership.js';
import { logIntervalMs } from '../../src/node/log_limiter.js';
import { decode, encode, Kind, type Heartbeat, type Message } from '../../src/protocol/codec.js';
import { ClientOp, gossipSubject, replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import { SimBus, seededRandom, type SimTransport } from '../../src/transport/sim.js';
import { FakeClock } from '../helpers/fake_clock.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];
const gossip = gossipSubject('sim');
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Forged traffic, seeded: the same seed publishes the same garbage. */
class Forger {
  private readonly random: () => number;
  constructor(private readonly transport: SimTransport, seed: number) {
    this.random = seededRandom(seed);
  }

  private hex(n: number): string {
    return Array.from({ length: n }, () => Math.floor(this.random() * 16).toString(16)).join('');
  }

  heartbeat(over: Partial<Heartbeat> = {}): Heartbeat {
    return {
      kind: Kind.Heartbeat,
      id: `n-${this.hex(8)}`,
      virtualNodes: 1 + Math.floor(this.random() * limits.virtualNodesMax),
      heartbeat: Math.floor(this.random() * 2 ** 40),
      hello: this.random() < 0.5,
      incarnation: this.hex(32),
      hlc: 0,
      speaks: 2,
      ...over,
    };
  }

  send(msg: Heartbeat | Record<string, unknown>): void {
    this.transport.publish(gossip, encode(msg as Message));
  }

  /** Hundreds of well-formed heartbeats from ids that nobody serves. */
  randomIds(n: number): void {
    for (let i = 0; i < n; i++) this.send(this.heartbeat());
  }

  /** Valid heartbeats with one bit flipped somewhere. */
  flippedBits(n: number, base: Heartbeat): void {
    const bytes = encode(base);
    for (let i = 0; i < n; i++) {
      const copy = bytes.slice();
      const bit = Math.floor(this.random() * copy.length * 8);
      copy[bit >> 3] = copy[bit >> 3]! ^ (1 << (bit & 7));
      this.transport.publish(gossip, copy);
    }
  }

  garbage(n: number): void {
    for (let i = 0; i < n; i++) this.transport.publish(gossip, Uint8Array.from({ length: 1 + Math.floor(this.random() * 64) }, () => Math.floor(this.random() * 256)));
  }
}

function snapshot(c: SimCluster): string {
  return JSON.stringify(
    [...c.nodes.values()].map((n) => ({ id: n.id, members: n.node.membership.members().map(({ synced: _synced, ...m }) => m), ring: n.node.membership.ring().tokens.map((t) => `${t.position}:${t.nodeId}`) })),
  );
}

describe('simulated gossip under forged heartbeats', () => {
  it('sim - forged heartbeat floods (random ids, a million vnodes, a real id with another incarnation, flipped bits) leave every ring unchanged and every key readable; a real new node is still admitted', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids);
    await c.start();
    const keys = Array.from({ length: 40 }, (_, i) => `g.${i}`);
    for (const k of keys) assert.equal((await c.request(ClientOp.Put, k, `v-${k}`, { 'KV-W': '3' })).code, 200);
    const before = snapshot(c);

    // Count what the real nodes publish: forged hellos must not make them answer.
    const spy = c.bus.connect('spy');
    const realBeats = new Map<string, number>();
    spy.subscribe(gossip, (m) => {
      let hb: Heartbeat;
      try {
        hb = decode(m.data, Kind.Heartbeat);
      } catch {
        return;
      }
      // Real incarnations are UUIDs; the forger's are plain hex, and one flipped bit cannot make a dash.
      if (ids.includes(hb.id) && uuid.test(hb.incarnation)) realBeats.set(hb.id, (realBeats.get(hb.id) ?? 0) + 1);
    });

    const forger = new Forger(c.bus.connect('forger'), seed ^ 0xf0f0);
    const n2 = c.node('n2').node.membership;
    for (let round = 0; round < 3; round++) {
      forger.randomIds(300);
      forger.send(forger.heartbeat({ virtualNodes: 1_000_000 }));
      forger.send(forger.heartbeat({ id: 'n2', virtualNodes: 1_000_000 }));
      // A real member's id, well formed, another incarnation and every vnode allowed: n2 itself answers the probe, and not with it.
      forger.send(forger.heartbeat({ id: 'n2', virtualNodes: limits.virtualNodesMax, heartbeat: Number.MAX_SAFE_INTEGER }));
      forger.flippedBits(200, forger.heartbeat({ id: 'n1', virtualNodes: 10 }));
      forger.garbage(100);
      await c.clock.advance(1000);
    }
    await c.clock.advance(3000);

    assert.equal(snapshot(c), before, `seed ${seed}: every node's members and ring are as before the flood`);
    for (const n of c.nodes.values()) {
      assert.deepEqual(n.node.membership.pendingIds(), [], `${n.id} holds no claim once the probes are answered`);
      for (const id of ids) assert.equal(n.node.membership.isUp(id), true, `${n.id} sees ${id} up`);
    }
    assert.ok(n2.unconfirmed > 0, 'claims were refused because nobody confirmed them');
    for (const k of keys) {
      const get = await c.request(ClientOp.Get, k, '', { 'KV-R': '3' });
      assert.equal(get.code, 200, `seed ${seed}: ${k} readable (${get.message})`);
      assert.equal(get.value, `v-${k}`);
    }
    // About one heartbeat per node per second over 6 s (plus hello answers for the new node below, not yet).
    for (const id of ids) assert.ok((realBeats.get(id) ?? 0) <= 8, `${id} sent ${realBeats.get(id)} heartbeats: forged hellos are not answered`);

    // A real node joining during another flood is admitted everywhere, and learns everyone.
    forger.randomIds(300);
    const n4 = await c.clock.run(c.startOne('n4'));
    forger.randomIds(300);
    await c.clock.advance(2000);
    for (const n of c.nodes.values()) {
      assert.deepEqual(n.node.membership.members().map((m) => m.id), [...ids, 'n4'], `seed ${seed}: ${n.id} admitted n4 and nobody else`);
    }
    // Admitted while it joins: in the future ring (it serves once its ranges have arrived).
    assert.equal(n4.node.membership.futureRing().nodeCount, 4);
    await c.stop();
  });
});

describe('simulated gossip logging', () => {
  it('sim - a flood of refused gossip writes at most one log line per reason per interval', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: simSeed(), clock });
    const lines: { msg: string; suppressed?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    const membership = new Membership(
      { self: 'm1', cluster: 'sim', virtualNodes: 8, replication: 3, enabled: true, intervalMs: 1000, failureTimeoutMs: 3000, phiConvictThreshold: 8, peers: [] },
      bus.connect('m1'),
      clock,
      logger,
    );
    membership.start();
    const forger = new Forger(bus.connect('forger'), 7);
    const durationMs = 25_000;
    let sent = 0;
    for (let t = 0; t < durationMs; t += 100) {
      forger.randomIds(5);
      forger.send(forger.heartbeat({ virtualNodes: 1_000_000 }));
      forger.garbage(5);
      forger.send(forger.heartbeat({ id: 'm1' })); // this node's own id, another incarnation
      sent += 12;
      await clock.advance(100);
    }
    await clock.advance(3000);
    membership.stop();

    if (process.env["SHOW_LOGS"]) console.log(lines.map((l) => JSON.stringify(l)).join("\n"));
    const perMessage = new Map<string, number>();
    for (const l of lines) perMessage.set(l.msg, (perMessage.get(l.msg) ?? 0) + 1);
    const bound = Math.ceil((durationMs + 3000) / logIntervalMs) + 1;
    assert.ok(perMessage.size >= 2, `refusals were logged: ${JSON.stringify([...perMessage])}`);
    for (const [msg, n] of perMessage) assert.ok(n <= bound, `"${msg}" logged ${n} times for ${sent} messages, at most ${bound} expected`);
    assert.ok(lines.some((l) => (l.suppressed ?? 0) > 0), 'a later line says how many it stood for');
    assert.deepEqual(membership.members().map((m) => m.id), ['m1']);
    assert.equal(membership.duplicateOf, undefined, 'a forged heartbeat in this node\'s name is not taken for a second process');
    assert.deepEqual(membership.pendingIds(), []);
  });
});

describe('simulated gossip across a rolling upgrade', () => {
  it('sim - a protocol-1 node (no probe subject) is admitted once it answers on its own replica subject; a protocol-1 heartbeat from an id nobody serves is not, and one in an admitted id cannot change its vnodes', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: simSeed(), clock });
    const membership = new Membership(
      { self: 'm1', cluster: 'sim', virtualNodes: 8, replication: 3, enabled: true, intervalMs: 1000, failureTimeoutMs: 3000, phiConvictThreshold: 8, peers: [] },
      bus.connect('m1'),
      clock,
      pino({ level: 'silent' }),
    );
    membership.start();
    const old = bus.connect('old1');
    old.subscribe(replicaSubject('sim', 'old1', ReplicaOp.Get), (m) => m.respond(encode({ kind: Kind.ReplicaGetReply, results: [] }, 1)));
    const v1 = (id: string, virtualNodes = 8, incarnation = 'old-process') =>
      encode({ kind: Kind.Heartbeat, id, virtualNodes, heartbeat: 1, hello: false, incarnation } as unknown as Message, 1);
    old.publish(gossip, v1('old1'));
    old.publish(gossip, v1('ghost'));
    await clock.advance(100);
    assert.deepEqual(membership.members().map((m) => m.id), ['m1', 'old1']);
    assert.deepEqual(membership.pendingIds(), []);
    // A protocol-1 claim cannot be vouched for beyond "someone serves old1": it cannot change old1's vnodes.
    old.publish(gossip, v1('old1', limits.virtualNodesMax, 'forged'));
    await clock.advance(100);
    assert.deepEqual(membership.members().map((m) => [m.id, m.virtualNodes]), [['m1', 8], ['old1', 8]]);
    membership.stop();
  });
});
