/**
 * The ring the nodes publish on `kv.ring` (protocol/ring_map.ts,
 * node/api/ring_api.ts) and the SDK's 'direct' routing by it
 * (client/ring_router.ts): the preference list the SDK computes from the
 * published ring is the one the nodes' placement gives, over random rings;
 * an unchanged ring is answered without tokens; malformed answers are
 * refused and the ring held is kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RingRouter } from '../../src/client/ring_router.js';
import { limits } from '../../src/core/limits.js';
import { ringFingerprint } from '../../src/core/moves.js';
import { placement } from '../../src/core/placement.js';
import { buildRing, keyHash, type Ring } from '../../src/core/ring.js';
import { RingPublisher } from '../../src/node/api/ring_api.js';
import { decodeRingMap, encodeRingMap } from '../../src/protocol/ring_map.js';
import { Header, ringSubject } from '../../src/protocol/subjects.js';
import { seededRandom } from '../../src/transport/sim.js';
import type { InboundMessage, Reply, Transport } from '../../src/transport/transport.js';

/** A seeded generator, so a failing seed replays. */
const rng = seededRandom;

function randomToken(next: () => number): bigint {
  return (BigInt(Math.floor(next() * 2 ** 32)) << 32n) | BigInt(Math.floor(next() * 2 ** 32));
}

/** A ring of 1..10 members with 1..40 tokens each; some positions shared between members (ties sort by id). */
function randomRing(next: () => number): Ring {
  const members = 1 + Math.floor(next() * 10);
  const shared: bigint[] = [];
  const list = Array.from({ length: members }, (_, i) => {
    const count = 1 + Math.floor(next() * 40);
    const tokens = Array.from({ length: count }, () => {
      if (shared.length > 0 && next() < 0.1) return shared[Math.floor(next() * shared.length)]!;
      const t = randomToken(next);
      shared.push(t);
      return t;
    });
    return { id: `n${Math.floor(next() * 1000)}-${i}`, virtualNodes: count, tokens: [...new Set(tokens)] };
  });
  return buildRing(list);
}

function request(headers: Record<string, string> = {}, subject = ringSubject, data = new Uint8Array(0)): InboundMessage {
  return { subject, data, expectsReply: true, header: (n: string) => headers[n], headerPadded: () => false, respond() {}, respondError() {} };
}

/** A transport whose `kv.ring` requests the publisher answers (and whose pings nobody answers). */
function transportFor(publisher: () => RingPublisher | undefined, answer?: () => Uint8Array): Transport {
  return {
    request: async (subject: string, _data: Uint8Array, opts: { headers?: Record<string, string> }) => {
      assert.equal(subject, ringSubject);
      const data = answer?.() ?? publisher()!.answer(request(opts.headers ?? {}), subject);
      return { data, header: () => undefined } satisfies Reply;
    },
    gather: async () => [],
  } as unknown as Transport;
}

describe('ring map', () => {
  it('ring map - the replicas the SDK computes from the published ring are the nodes\' placement, over 200 random rings', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = rng(seed);
      const ring = randomRing(next);
      const n = 1 + Math.floor(next() * 5);
      const down = new Set([...new Set(ring.tokens.map((t) => t.nodeId))].filter(() => next() < 0.3));
      const publisher = new RingPublisher({ ring: () => ring, isUp: (id) => !down.has(id), replication: n });
      const router = new RingRouter(transportFor(() => publisher));
      await router.poll();
      assert.equal(router.ringFingerprint(), ringFingerprint(ring), `seed ${seed}`);
      for (let k = 0; k < 50; k++) {
        const key = `key-${seed}-${k}-${Math.floor(next() * 1e9)}`;
        const expected = placement(ring, keyHash(key), n, () => true).replicas.map((r) => r.node);
        assert.deepEqual(router.replicasOf(key), expected, `seed ${seed}, key ${key}`);
        const firstUp = expected.find((id) => !down.has(id));
        const routed = router.route(`kv.get.${key}`, new Set(), key);
        if (firstUp === undefined) assert.equal(routed?.node, undefined, `seed ${seed}: no replica up, the queue group`);
        else assert.deepEqual(routed, { subject: `kvn.${firstUp}.get.${key}`, node: firstUp, ring: ringFingerprint(ring) }, `seed ${seed}`);
      }
    }
  });

  it('ring map - a client holding the fingerprint gets liveness only; a new ring is fetched whole', async () => {
    const next = rng(7);
    let ring = randomRing(next);
    const down = new Set<string>();
    const publisher = new RingPublisher({ ring: () => ring, isUp: (id) => !down.has(id), replication: 3 });
    const full = publisher.answer(request(), ringSubject);
    const fp = ringFingerprint(ring);
    const short = publisher.answer(request({ [Header.Ring]: fp }), ringSubject);
    assert.ok(short.length < full.length, 'no tokens');
    const decoded = decodeRingMap(short);
    assert.ok(!('error' in decoded) && !decoded.withTokens && decoded.fingerprint === fp);

    const router = new RingRouter(transportFor(() => publisher));
    await router.poll();
    const key = 'user.42';
    const [first, second] = router.replicasOf(key);
    assert.equal(router.route(`kv.get.${key}`, new Set(), key)?.node, first);
    if (second !== undefined) {
      down.add(first!);
      await router.poll(); // unchanged ring: liveness only
      assert.equal(router.route(`kv.get.${key}`, new Set(), key)?.node, second, 'a replica down is skipped');
      down.clear();
      await router.poll();
      assert.equal(router.route(`kv.get.${key}`, new Set([first!]), key)?.node, second, 'a replica tried is skipped');
    }
    ring = randomRing(rng(8));
    await router.poll();
    assert.equal(router.ringFingerprint(), ringFingerprint(ring), 'the new ring');
    assert.deepEqual(router.replicasOf(key), placement(ring, keyHash(key), 3, () => true).replicas.map((r) => r.node));
  });

  it('ring map - requests without a key, or before a ring is known, route as \'any\' (the queue group with no live node)', () => {
    const router = new RingRouter(transportFor(() => undefined));
    assert.deepEqual(router.route('kv.get.k', new Set(), 'k'), { subject: 'kv.get.k', node: undefined });
    assert.deepEqual(router.route('kv.keys'), { subject: 'kv.keys', node: undefined });
  });

  it('ring map - malformed answers are refused and the ring held is kept', async () => {
    const ring = randomRing(rng(3));
    const publisher = new RingPublisher({ ring: () => ring, isUp: () => true, replication: 3 });
    const good = publisher.answer(request(), ringSubject);
    const router = new RingRouter(transportFor(() => publisher));
    await router.poll();
    const fp = router.ringFingerprint();
    const refuse = (data: Uint8Array, why: string): void => {
      assert.ok('error' in decodeRingMap(data), why);
      assert.equal(router.accept(data), false, why);
      assert.equal(router.ringFingerprint(), fp, `${why}: the ring held stays`);
    };
    for (let len = 0; len < good.length; len += Math.max(1, Math.floor(good.length / 97))) refuse(good.subarray(0, len), `truncated at ${len}`);
    refuse(new Uint8Array([...good, 0]), 'a byte past the end');
    const mutate = (at: number, value: number): Uint8Array => {
      const copy = new Uint8Array(good);
      copy[at] = value;
      return copy;
    };
    refuse(mutate(0, 2), 'unknown format');
    refuse(mutate(1, 3), 'unknown flags');
    refuse(mutate(2, 0), 'replication 0');
    refuse(mutate(2, limits.replicationMax + 1), 'replication past the maximum');
    refuse(mutate(3, 'g'.charCodeAt(0)), 'a fingerprint that is not hex');
    refuse(mutate(good.length - 1, good[good.length - 1]! ^ 1), 'a token bit flipped: not the fingerprint its tokens give');
    const idStart = 3 + 16 + 2 + 1;
    refuse(mutate(idStart, '*'.charCodeAt(0)), 'an id that is not a token');
    const members = (id: string, up: number, tokens: number): number[] => [id.length, ...[...id].map((c) => c.charCodeAt(0)), up, tokens >> 8, tokens & 0xff, ...Array(8 * tokens).fill(1)];
    const header = (count: number): number[] => [1, 1, 3, ...[...'0123456789abcdef'].map((c) => c.charCodeAt(0)), count >> 8, count & 0xff];
    refuse(new Uint8Array([...header(2), ...members('a', 1, 1), ...members('a', 1, 1)]), 'a member twice');
    refuse(new Uint8Array([...header(1), ...members('a', 2, 1)]), 'liveness 2');
    refuse(new Uint8Array([...header(1), ...members('a', 1, 0)]), 'a member without tokens');
    refuse(new Uint8Array([...header(0)]), 'no members');
    refuse(new Uint8Array([...header(1), ...members('a', 1, limits.virtualNodesMax + 1)]), 'more tokens than a member may have');
    for (let seed = 1; seed <= 300; seed++) {
      const next = rng(seed);
      const copy = new Uint8Array(good);
      const at = Math.floor(next() * copy.length);
      copy[at] = copy[at]! ^ (1 << Math.floor(next() * 8));
      const decoded = decodeRingMap(copy);
      // A flipped bit either is refused or changes only a liveness byte (which the fingerprint does not cover).
      if (!('error' in decoded)) assert.equal(decoded.fingerprint, fp, `seed ${seed}`);
    }
  });

  it('ring map - kv.ring refuses a payload or a key; a ring too large to send answers 503', () => {
    const ring = randomRing(rng(4));
    const publisher = new RingPublisher({ ring: () => ring, isUp: () => true, replication: 3 });
    assert.throws(() => publisher.answer(request({}, ringSubject, new Uint8Array([1])), ringSubject), { code: 400 });
    assert.throws(() => publisher.answer(request({}, `${ringSubject}.x`), `${ringSubject}.x`), { code: 400 });
    const huge = buildRing(Array.from({ length: Math.ceil(limits.ringMapTokensMax / 1000) + 1 }, (_, i) => ({ id: `m${i}`, virtualNodes: 1000, tokens: Array.from({ length: 1000 }, (_, k) => BigInt(i * 1000 + k)) })));
    const big = new RingPublisher({ ring: () => huge, isUp: () => true, replication: 3 });
    assert.throws(() => big.answer(request(), ringSubject), { code: 503 });
    const empty = new RingPublisher({ ring: () => buildRing([]), isUp: () => true, replication: 3 });
    assert.throws(() => empty.answer(request(), ringSubject), { code: 503 });
    assert.deepEqual(decodeRingMap(encodeRingMap({ replication: 2, fingerprint: ringFingerprint(ring), members: [], withTokens: false })), { error: '0 members, not 1 to 1024' });
  });
});
