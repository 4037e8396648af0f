import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, GodDbError, StaleWriteError, TooLargeError } from '../../src/core/errors.js';
import { limits } from '../../src/core/limits.js';
import type { Version } from '../../src/core/version.js';
import { askAloneCode, decode, encode, Kind } from '../../src/protocol/codec.js';
import { ReplicaClient } from '../../src/node/coordinator/replica_client.js';
import { RequestTimeoutError, ServiceErrorHeader, type Reply, type RequestOptions, type Transport } from '../../src/transport/transport.js';

const version = (value: string): Version => ({ clock: { n1: 1 }, hlc: 1, writer: 'n1', tombstone: false, value: Buffer.from(value) });

/** A transport that records requests and answers each with `answer`. */
function fakeTransport(answer: (subject: string, data: Uint8Array) => Reply | Error): Transport & { sent: { subject: string; data: Uint8Array }[] } {
  const sent: { subject: string; data: Uint8Array }[] = [];
  return {
    sent,
    async request(subject: string, data: Uint8Array, _opts: RequestOptions): Promise<Reply> {
      sent.push({ subject, data });
      const r = answer(subject, data);
      if (r instanceof Error) throw r;
      return r;
    },
    gather: async () => [],
    publish: () => undefined,
    subscribe: () => ({ unsubscribe: () => undefined, drain: async () => undefined }),
    serve: async () => ({ unsubscribe: () => undefined, drain: async () => undefined }),
    maxPayloadBytes: () => undefined,
    flush: async () => undefined,
    close: async () => undefined,
  };
}

const reply = (data: Uint8Array, headers: Record<string, string> = {}): Reply => ({ data, header: (n) => headers[n] });

describe('replica client batching', () => {
  it('replica client - reads for one replica in one turn travel as one message, answered item by item', async () => {
    const t = fakeTransport((_s, data) => {
      const { keys } = decode(data, Kind.ReplicaGet);
      return reply(encode({
        kind: Kind.ReplicaGetReply,
        results: keys.map((k) => (k === 'bad' ? { ok: false as const, code: ErrorCode.StorageUnavailable, error: 'disk' } : { ok: true as const, versions: [version(k)] })),
      }));
    });
    const c = new ReplicaClient(t, 'c', 1000);
    const [a, b, bad, other] = await Promise.allSettled([c.get('n2', 'a'), c.get('n2', 'b'), c.get('n2', 'bad'), c.get('n3', 'a')]);
    assert.equal(t.sent.length, 2, 'one message per replica');
    assert.deepEqual(t.sent.map((s) => s.subject).sort(), ['god.c.node.n2.get', 'god.c.node.n3.get']);
    assert.equal(a.status === 'fulfilled' && Buffer.from(a.value[0]!.value).toString(), 'a');
    assert.equal(b.status === 'fulfilled' && Buffer.from(b.value[0]!.value).toString(), 'b');
    assert.ok(bad.status === 'rejected' && (bad.reason as GodDbError).code === ErrorCode.StorageUnavailable);
    assert.equal(other.status, 'fulfilled');
  });

  it('replica client - a batch never exceeds the item maximum', async () => {
    const t = fakeTransport((_s, data) => reply(encode({ kind: Kind.ReplicaPutReply, results: decode(data, Kind.ReplicaPut).items.map(() => ({ ok: true as const })) })));
    const c = new ReplicaClient(t, 'c', 1000);
    const n = limits.replicaBatchItemsMax * 2 + 1;
    await Promise.all(Array.from({ length: n }, (_, i) => c.put('n2', `k${i}`, [version('v')])));
    assert.deepEqual(t.sent.map((s) => decode(s.data, Kind.ReplicaPut).items.length), [limits.replicaBatchItemsMax, limits.replicaBatchItemsMax, 1]);
  });

  it('replica client - a large value travels in its own batch', async () => {
    const t = fakeTransport((_s, data) => reply(encode({ kind: Kind.ReplicaPutReply, results: decode(data, Kind.ReplicaPut).items.map(() => ({ ok: true as const })) })));
    const c = new ReplicaClient(t, 'c', 1000);
    const big = { ...version(''), value: new Uint8Array(limits.replicaBatchBytesMax) };
    await Promise.all([c.put('n2', 'small', [version('v')]), c.put('n2', 'big', [big]), c.put('n2', 'small2', [version('v')])]);
    assert.deepEqual(t.sent.map((s) => decode(s.data, Kind.ReplicaPut).items.map((i) => i.key)), [['small'], ['big'], ['small2']]);
  });

  it('replica client - items that fit the request bound are sent, and one over it alone fails with 413 unsent', async () => {
    const t = fakeTransport((_s, data) => reply(encode({ kind: Kind.ReplicaPutReply, results: decode(data, Kind.ReplicaPut).items.map(() => ({ ok: true as const })) })));
    const c = new ReplicaClient(t, 'c', 1000, { requestBytesMax: 2_000 });
    const item = (n: number) => ({ ...version(''), value: new Uint8Array(n) });
    await Promise.all([c.put('n2', 'a', [item(900)]), c.put('n2', 'b', [item(900)])]);
    assert.ok(t.sent.every((m) => m.data.length <= 2_000), 'nothing sent over the bound');
    assert.deepEqual(t.sent.flatMap((m) => decode(m.data, Kind.ReplicaPut).items.map((i) => i.key)).sort(), ['a', 'b']);
    const before = t.sent.length;
    await assert.rejects(c.put('n2', 'huge', [item(5_000)]), (e: unknown) => e instanceof TooLargeError);
    assert.equal(t.sent.length, before, 'the oversized item was never sent');
  });

  it('replica client - a read the replica could not fit in its batch reply is asked again alone, and a stale refusal keeps its floor', async () => {
    const t = fakeTransport((subject, data) => {
      if (subject.endsWith('.put')) {
        return reply(encode({ kind: Kind.ReplicaPutReply, results: decode(data, Kind.ReplicaPut).items.map(() => ({ ok: false as const, code: ErrorCode.ConditionFailed, error: 'stale', floor: 42 })) }));
      }
      const { keys } = decode(data, Kind.ReplicaGet);
      // Only the first item of a batch fits: the rest are "ask alone".
      return reply(encode({
        kind: Kind.ReplicaGetReply,
        results: keys.map((k, i) => (i === 0 ? { ok: true as const, versions: [version(k)] } : { ok: false as const, code: askAloneCode, error: 'reply full: ask for this key alone' })),
      }));
    });
    const c = new ReplicaClient(t, 'c', 1000);
    const got = await Promise.all(['a', 'b', 'c'].map((k) => c.get('n2', k)));
    assert.deepEqual(got.map((vs) => Buffer.from(vs[0]!.value).toString()), ['a', 'b', 'c']);
    assert.deepEqual(t.sent.map((m) => decode(m.data, Kind.ReplicaGet).keys), [['a', 'b', 'c'], ['b'], ['c']]);
    await assert.rejects(c.put('n2', 'k', [version('v')], true), (e: unknown) => e instanceof StaleWriteError && e.floor === 42);
  });

  it('replica client - a failed request, a refused batch or a short reply fails every item', async () => {
    for (const answer of [
      () => new RequestTimeoutError('x', 1000),
      () => reply(new Uint8Array(0), { [ServiceErrorHeader.Code]: '400', [ServiceErrorHeader.Message]: 'malformed' }),
      () => reply(encode({ kind: Kind.ReplicaGetReply, results: [] })),
    ]) {
      const c = new ReplicaClient(fakeTransport(answer), 'c', 1000);
      const results = await Promise.allSettled([c.get('n2', 'a'), c.get('n2', 'b')]);
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    }
  });
});
