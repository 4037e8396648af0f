/**
 * The purge candidate rule (core/gc.ts) and the purge message (protocol/codec.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { graceHlc, purgeCandidate, PurgeKind } from '../../src/core/gc.js';
import { afterSeconds, fromWallMs } from '../../src/core/hlc.js';
import type { Version } from '../../src/core/version.js';
import { Metrics } from '../../src/node/api/metrics.js';
import { decode, encode, Kind, ProtocolError } from '../../src/protocol/codec.js';

const grace = 10;
const t0 = fromWallMs(1_700_000_000_000);

function version(hlc: number, fields: Partial<Version> = {}): Version {
  return { clock: { n1: hlc }, hlc, writer: 'n1', tombstone: false, value: Buffer.from('v'), ...fields };
}

const tombstone = (hlc: number): Version => version(hlc, { tombstone: true, value: Buffer.alloc(0) });

describe('gc - the purge candidate rule', () => {
  it('gc - a tombstone is a candidate only once the grace period has passed since it', () => {
    const t = tombstone(t0);
    assert.equal(purgeCandidate([t], t0 + graceHlc(grace) - 1, grace), undefined);
    assert.equal(purgeCandidate([t], t0 + graceHlc(grace), grace), PurgeKind.Tombstone);
  });

  it('gc - a value without a TTL never is, however old', () => {
    assert.equal(purgeCandidate([version(t0)], t0 + graceHlc(10 * grace), grace), undefined);
    assert.equal(purgeCandidate([], t0 + graceHlc(10 * grace), grace), undefined);
  });

  it('gc - an expired value is a candidate a grace period after its expiry, not after its write', () => {
    const v = version(t0, { expiresHlc: afterSeconds(t0, 30) });
    assert.equal(purgeCandidate([v], t0 + graceHlc(grace) + 1, grace), undefined, 'not yet expired');
    assert.equal(purgeCandidate([v], afterSeconds(t0, 30) + graceHlc(grace) - 1, grace), undefined, 'expired, within the grace period');
    assert.equal(purgeCandidate([v], afterSeconds(t0, 30) + graceHlc(grace), grace), PurgeKind.Expired);
  });

  it('gc - the last writer decides: a delete without context shadows its value sibling, a later value saves the key', () => {
    const late = t0 + graceHlc(100);
    const deleted = [version(t0), tombstone(t0 + 5)];
    assert.equal(purgeCandidate(deleted, late, grace), PurgeKind.Tombstone, 'the tombstone outranks the value it deleted');
    const rewritten = [version(t0), tombstone(t0 + 5), version(t0 + 9, { value: Buffer.from('v2') })];
    assert.equal(purgeCandidate(rewritten, late, grace), undefined, 'rewritten after the delete');
    const rewrittenTtl = [tombstone(t0), version(t0 + 9, { expiresHlc: afterSeconds(t0 + 9, 1000) })];
    assert.equal(purgeCandidate(rewrittenTtl, late, grace), undefined, 'rewritten with a TTL not yet past its grace');
  });

  it('gc - a recent tombstone over an old expired value waits for the tombstone grace', () => {
    const versions = [version(t0, { expiresHlc: afterSeconds(t0, 1) }), tombstone(t0 + graceHlc(50))];
    assert.equal(purgeCandidate(versions, t0 + graceHlc(55), grace), undefined);
    assert.equal(purgeCandidate(versions, t0 + graceHlc(60), grace), PurgeKind.Tombstone);
  });
});

describe('gc - the purge message', () => {
  it('gc - a purge and its reply round-trip, and a malformed one is refused with the reason', () => {
    const items = [{ key: 'k', versions: [tombstone(t0)] }];
    const back = decode(encode({ kind: Kind.ReplicaPurge, items }), Kind.ReplicaPurge);
    assert.deepEqual(back.items.map((i) => [i.key, i.versions[0]!.tombstone, i.versions[0]!.hlc]), [['k', true, t0]]);
    const reply = decode(encode({ kind: Kind.ReplicaPurgeReply, results: [{ ok: true, removed: true }, { ok: false, code: 507, error: 'disk' }] }), Kind.ReplicaPurgeReply);
    assert.deepEqual(reply.results, [{ ok: true, removed: true }, { ok: false, code: 507, error: 'disk' }]);
    assert.throws(() => decode(encode({ kind: Kind.ReplicaPurge, items: [{ key: '', versions: [] }] }), Kind.ReplicaPurge), ProtocolError);
    const tooMany = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, versions: [] }));
    assert.throws(() => decode(encode({ kind: Kind.ReplicaPurge, items: tooMany }), Kind.ReplicaPurge), /more than/);
  });
});

describe('gc - metrics', () => {
  it('gc - /metrics counts purges by kind and skips by reason', async () => {
    const zero = () => 0;
    const metrics = new Metrics('n1', {
      inflight: zero, membersUp: zero, readRepairs: zero, staleRetries: zero, staleRefusals: zero, skewRefusals: zero, malformedReplicaRequests: zero, unconfirmedMembers: zero,
      hlc: zero, handoffKeysSent: zero, handoffBytesSent: zero, handoffActive: zero, keys: async () => 0, ringMembers: zero, ringOwnedRatio: zero, memberStates: () => [],
      settled: () => true, keysDeleted: zero,
      gcPurged: () => ({ tombstone: 3, expired: 1 }),
      gcSkipped: () => ({ down: 2, differs: 5 }),
    });
    const text = await metrics.registry.metrics();
    assert.match(text, /goddb_gc_purged_total\{kind="tombstone",node_id="n1"\} 3/);
    assert.match(text, /goddb_gc_purged_total\{kind="expired",node_id="n1"\} 1/);
    assert.match(text, /goddb_gc_skipped_total\{reason="differs",node_id="n1"\} 5/);
  });
});
