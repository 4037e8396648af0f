/**
 * The SDK sends a request again, to another node, only when that is safe
 * (client/client.ts send): after "no responders" (nothing was delivered)
 * for any operation, and for a read waiting on a node that stops answering
 * pings (killed or paused: the router noticed before the timeout). A write
 * waiting on such a node is not sent again (it may still take effect when
 * the node resumes): it times out, its outcome unknown. Found by the chaos
 * test (test/integration/chaos.test.ts): without this every kill failed one
 * or two requests at once and every in-flight read to the victim timed out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientOverTransport } from '../../src/client/client.js';
import { NoRespondersError, RequestTimeoutError, type Reply, type RequestOptions, type Transport } from '../../src/transport/transport.js';

const encoder = new TextEncoder();
const answer = (nodeId: string): Reply => ({ data: encoder.encode(JSON.stringify({ name: 'goddb', metadata: { node_id: nodeId, cluster: 'c' } })), header: () => undefined });
const ok = (text: string): Reply => ({ data: encoder.encode(text), header: () => undefined });

interface Fake {
  transport: Transport;
  /** The node-addressed subjects asked, in order. */
  asked: string[];
  answering: string[];
}

/** A transport whose nodes answer pings when in `answering`; `handle` answers the requests. */
function fakeTransport(handle: (subject: string, opts: RequestOptions) => Promise<Reply>): Fake {
  const fake: Fake = {
    asked: [],
    answering: ['a', 'b', 'c'],
    transport: {
      gather: async () => fake.answering.map(answer),
      request: (subject: string, _data: Uint8Array, opts: RequestOptions) => {
        fake.asked.push(subject);
        return handle(subject, opts);
      },
      close: async () => undefined,
    } as unknown as Transport,
  };
  return fake;
}

/** A request that no one answers: it fails when its timeout passes, as the NATS client's does. */
const silent = (subject: string, opts: RequestOptions) => new Promise<Reply>((_resolve, reject) => setTimeout(() => reject(new RequestTimeoutError(subject, opts.timeoutMs)), opts.timeoutMs));

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`not within 5 s: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('SDK - sending a request again to another node', () => {
  it('client reroute - a put that finds no responders on its node is sent to the next one, which is left out from then on', async () => {
    const fake = fakeTransport(async (subject) => {
      if (subject.startsWith('kvn.a.')) throw new NoRespondersError(subject);
      return ok('');
    });
    const db = clientOverTransport(fake.transport, { timeoutMs: 2_000, routing: 'nodes', routeProbeMs: 60_000 });
    try {
      await until(() => db.liveNodes().length === 3, 'the router knows the nodes');
      await db.put('k', 'v');
      assert.equal(fake.asked.length, 2);
      assert.equal(fake.asked[0], 'kvn.a.put.k');
      assert.match(fake.asked[1]!, /^kvn\.[bc]\.put\.k$/);
      assert.deepEqual(db.liveNodes(), ['b', 'c'], 'a is skipped until it answers a ping');
    } finally {
      await db.close();
    }
  });

  it('client reroute - no node left to ask: the error of the last one', async () => {
    const fake = fakeTransport(async (subject) => {
      throw new NoRespondersError(subject);
    });
    const db = clientOverTransport(fake.transport, { timeoutMs: 2_000, routing: 'nodes', routeProbeMs: 60_000 });
    try {
      await until(() => db.liveNodes().length === 3, 'the router knows the nodes');
      await assert.rejects(db.put('k', 'v'), (err: Error & { code?: number }) => err.code === 503 && /no responders/.test(err.message));
      assert.equal(fake.asked.length, 3, 'each node once');
    } finally {
      await db.close();
    }
  });

  it('client reroute - a read waiting on a node that stops answering pings is sent to another and answered long before the timeout; a write is not', async () => {
    const timeoutMs = 1_500;
    const fake = fakeTransport((subject, opts) => (subject.startsWith('kvn.a.') ? silent(subject, opts) : Promise.resolve(ok(`from ${subject.split('.')[1]}`))));
    const db = clientOverTransport(fake.transport, { timeoutMs, routing: 'nodes', routeProbeMs: 20 });
    try {
      await until(() => db.liveNodes().length === 3, 'the router knows the nodes');
      // The router goes round robin from a: the first request of each kind goes to a.
      const startedMs = performance.now();
      const read = db.get('k');
      fake.answering = ['b', 'c'];
      const got = await read;
      assert.match(got!.text(), /^from [bc]$/);
      assert.ok(performance.now() - startedMs < timeoutMs, 'answered before the timeout');
      assert.equal(fake.asked[0], 'kvn.a.get.k');

      fake.answering = ['a', 'b', 'c'];
      await until(() => db.liveNodes().length === 3, 'a answers again');
      fake.asked.length = 0;
      // Round robin: send reads until the next request goes to a, then a write.
      while (!fake.asked.at(-1)?.startsWith('kvn.c.')) await db.get('k');
      const write = db.put('k', 'v');
      fake.answering = ['b', 'c'];
      await assert.rejects(write, (err: Error & { code?: number }) => err.code === 504);
      assert.equal(fake.asked.filter((s) => s.includes('.put.')).length, 1, 'the write was sent once');
    } finally {
      await db.close();
    }
  });
});
