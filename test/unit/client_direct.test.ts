/**
 * The SDK's 'direct' routing end to end over a fake transport
 * (client/client.ts send with client/ring_router.ts): a request goes to the
 * first live replica of its key and names the ring it was routed by
 * (KV-Ring); after "no responders" it goes to the key's next replica; a
 * write that reached a replica which then went quiet is still sent once
 * only; a reply naming another ring makes the SDK fetch the ring at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientOverTransport } from '../../src/client/client.js';
import { buildRing, keyHash, preferenceList, type Ring } from '../../src/core/ring.js';
import { RingPublisher } from '../../src/node/api/ring_api.js';
import { Header, ringSubject } from '../../src/protocol/subjects.js';
import { NoRespondersError, RequestTimeoutError, type InboundMessage, type Reply, type RequestOptions, type Transport } from '../../src/transport/transport.js';

const encoder = new TextEncoder();
const ping = (nodeId: string): Reply => ({ data: encoder.encode(JSON.stringify({ name: 'goddb', metadata: { node_id: nodeId, cluster: 'c' } })), header: () => undefined });
const ok = (headers: Record<string, string> = {}): Reply => ({ data: new Uint8Array(0), header: (n) => headers[n] });
const ids = ['a', 'b', 'c', 'd', 'e'];

function ringOf(members: readonly string[]): Ring {
  return buildRing(members.map((id) => ({ id, virtualNodes: 8 })));
}

interface Fake {
  transport: Transport;
  /** Node-addressed requests, in order, with the KV-Ring they carried. */
  asked: { subject: string; ring: string | undefined }[];
  ringRequests: number;
  ring: Ring;
}

function fakeCluster(handle: (subject: string, opts: RequestOptions) => Promise<Reply>): Fake {
  const fake: Fake = {
    asked: [],
    ringRequests: 0,
    ring: ringOf(ids.slice(0, 4)),
    transport: {
      gather: async () => ids.map(ping),
      request: (subject: string, data: Uint8Array, opts: RequestOptions) => {
        if (subject === ringSubject) {
          fake.ringRequests++;
          const publisher = new RingPublisher({ ring: () => fake.ring, isUp: () => true, replication: 3 });
          const msg = { subject, data, expectsReply: true, header: (n: string) => opts.headers?.[n], headerPadded: () => false, respond() {}, respondError() {} } as InboundMessage;
          return Promise.resolve({ data: publisher.answer(msg, subject), header: () => undefined });
        }
        fake.asked.push({ subject, ring: opts.headers?.[Header.Ring] });
        return handle(subject, opts);
      },
      close: async () => undefined,
    } as unknown as Transport,
  };
  return fake;
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`not within 5 s: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const replicas = (ring: Ring, key: string) => preferenceList(ring, keyHash(key), 3);

describe('SDK - direct routing', () => {
  it('client direct - a put goes to the key\'s first replica with the ring\'s fingerprint; after no responders, to its second', async () => {
    const fake = fakeCluster(async () => ok());
    const db = clientOverTransport(fake.transport, { timeoutMs: 2_000, routing: 'direct', routeProbeMs: 60_000, ringPollMs: 60_000 });
    try {
      await until(() => db.replicasOf('k').length === 3 && db.liveNodes().length === 5, 'the ring and the live nodes');
      for (const key of ['k', 'user.1', 'user.2', 'x.y.z']) {
        const [first] = replicas(fake.ring, key);
        fake.asked.length = 0;
        await db.put(key, 'v');
        assert.equal(fake.asked.length, 1);
        assert.equal(fake.asked[0]!.subject, `kvn.${first}.put.${key}`);
        assert.match(fake.asked[0]!.ring ?? '', /^[0-9a-f]{16}$/);
      }
      const [first, second] = replicas(fake.ring, 'k');
      const gone = fakeCluster(async (subject) => {
        if (subject.startsWith(`kvn.${first}.`)) throw new NoRespondersError(subject);
        return ok();
      });
      const db2 = clientOverTransport(gone.transport, { timeoutMs: 2_000, routing: 'direct', routeProbeMs: 60_000, ringPollMs: 60_000 });
      try {
        await until(() => db2.replicasOf('k').length === 3 && db2.liveNodes().length === 5, 'the ring and the live nodes');
        await db2.put('k', 'v');
        assert.deepEqual(gone.asked.map((a) => a.subject), [`kvn.${first}.put.k`, `kvn.${second}.put.k`]);
        await db2.get('k');
        assert.equal(gone.asked.at(-1)!.subject, `kvn.${second}.get.k`, 'the first replica is skipped until it answers a ping');
      } finally {
        await db2.close();
      }
    } finally {
      await db.close();
    }
  });

  it('client direct - a put whose replica stays silent is sent once and times out', async () => {
    const fake = fakeCluster((subject, opts) => new Promise<Reply>((_resolve, reject) => setTimeout(() => reject(new RequestTimeoutError(subject, opts.timeoutMs)), opts.timeoutMs)));
    const db = clientOverTransport(fake.transport, { timeoutMs: 300, routing: 'direct', routeProbeMs: 60_000, ringPollMs: 60_000 });
    try {
      await until(() => db.replicasOf('k').length === 3 && db.liveNodes().length === 5, 'the ring and the live nodes');
      await assert.rejects(db.put('k', 'v'), (err: Error & { code?: number }) => err.code === 504);
      assert.equal(fake.asked.length, 1, 'sent once');
    } finally {
      await db.close();
    }
  });

  it('client direct - a reply naming another ring makes the SDK fetch the ring at once, and route by the new one', async () => {
    let theirs = '';
    const fake = fakeCluster(async () => ok(theirs === '' ? {} : { [Header.Ring]: theirs }));
    const db = clientOverTransport(fake.transport, { timeoutMs: 2_000, routing: 'direct', routeProbeMs: 60_000, ringPollMs: 60_000 });
    try {
      await until(() => db.replicasOf('k').length === 3 && db.liveNodes().length === 5, 'the ring and the live nodes');
      const fetched = fake.ringRequests;
      fake.ring = ringOf(ids); // e joins
      theirs = 'ffffffffffffffff';
      await db.get('k');
      await until(() => fake.ringRequests > fetched, 'a ring request');
      const keys = Array.from({ length: 40 }, (_, i) => `j.${i}`);
      await until(() => keys.every((k) => JSON.stringify(db.replicasOf(k)) === JSON.stringify(replicas(fake.ring, k))), 'the new ring');
      assert.ok(keys.some((k) => db.replicasOf(k).includes('e')), 'e is among the replicas of some keys');
    } finally {
      await db.close();
    }
  });
});
