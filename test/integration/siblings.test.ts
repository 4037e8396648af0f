/**
 * Issue 12, item 3 on real workers started with `--conflict-policy siblings`:
 * a plain NATS client (nats.js, no SDK) reads concurrent values in the
 * multipart form (KV-Siblings, KV-Sibling-Lengths, the values back to back)
 * and resolves them with a put carrying the read's KV-Context; the SDK gives
 * them as `values`, the newest as `value`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { rawConnect, rawRequest } from '../helpers/nats_raw.js';
import { startWireCluster, type WireCluster } from '../helpers/wire_cluster.js';

/** Slices a multipart reply by its lengths header, as a reader in any language would. */
function parts(payload: string, lengths: string): string[] {
  const bytes = Buffer.from(payload, 'utf8');
  let at = 0;
  return lengths.split(',').map((n) => {
    const part = bytes.subarray(at, at + Number(n)).toString('utf8');
    at += Number(n);
    return part;
  });
}

describe('siblings on real workers', () => {
  let cluster: WireCluster;
  let nc: NatsConnection;
  const clients: GodDbClient[] = [];

  before(async () => {
    cluster = await startWireCluster('sibs', ['s1', 's2', 's3'], 'memory', { conflictPolicy: 'siblings' });
    nc = await rawConnect(cluster.nats.url);
    for (let i = 0; i < 2; i++) clients.push(await connect({ servers: cluster.nats.url, timeoutMs: 10_000 }));
  });
  after(async () => {
    for (const c of clients) await c.close();
    await nc?.close();
    await cluster?.stop();
  });

  it('siblings - through a plain NATS client: blind puts are siblings in the multipart form; a put with the context resolves them', async () => {
    // Twice through s1 (one coordinator) and once through s2, none with a context.
    for (const [node, value] of [['s1', 'héllo'], ['s1', 'world'], ['s2', '']] as const) {
      const r = await rawRequest(nc, `kvn.${node}.put.wire.k`, value);
      assert.equal(r.code, 200, r.message);
    }
    const read = await rawRequest(nc, 'kv.get.wire.k', '', { 'KV-R': '3' });
    assert.equal(read.code, 200, read.message);
    assert.equal(read.header('KV-Siblings'), '3');
    const lengths = read.header('KV-Sibling-Lengths')!;
    assert.deepEqual(lengths.split(',').map(Number).sort(), [0, 5, 6], 'lengths in bytes: héllo is 6');
    assert.deepEqual(parts(read.value, lengths), ['', 'world', 'héllo'], 'newest first');
    assert.ok(read.header('KV-Context'));

    const resolved = await rawRequest(nc, 'kv.put.wire.k', 'héllo world', { 'KV-Context': read.header('KV-Context')! });
    assert.equal(resolved.code, 200, resolved.message);
    for (const node of ['s1', 's2', 's3']) {
      const after = await rawRequest(nc, `kvn.${node}.get.wire.k`, '', { 'KV-R': '3' });
      assert.equal(after.value, 'héllo world', `through ${node}`);
      assert.equal(after.header('KV-Siblings'), undefined, 'one value: the plain form, as under lww');
      assert.equal(after.header('KV-Sibling-Lengths'), undefined);
    }
  });

  it('siblings - the SDK: values holds every sibling, value the newest; a put with the context leaves one', async () => {
    const [a, b] = clients as [GodDbClient, GodDbClient];
    await a.put('sdk.k', 'from-a');
    await b.put('sdk.k', 'from-b');
    const got = await a.get('sdk.k', { r: 3 });
    assert.ok(got);
    assert.equal(got.siblings, 2);
    assert.deepEqual(got.values.map((v) => Buffer.from(v).toString()), ['from-b', 'from-a']);
    assert.equal(got.text(), 'from-b', 'value is the newest, as lww would answer');
    await b.put('sdk.k', 'merged', { context: got.context });
    const after = await a.get('sdk.k', { r: 3 });
    assert.equal(after?.siblings, 1);
    assert.deepEqual(after?.values.map((v) => Buffer.from(v).toString()), ['merged']);
  });
});
