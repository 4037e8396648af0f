import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, GodDbError } from '../../src/core/errors.js';
import { limits } from '../../src/core/limits.js';
import type { Version } from '../../src/core/version.js';
import { decode, encode, Kind } from '../../src/protocol/codec.js';
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
