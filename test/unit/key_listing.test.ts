/**
 * Key listing, the pure parts (issue 12 item 4): spans of the hash space
 * (core/key_listing.ts), merging the replicas' pages, cutting a page to size,
 * the KV-Keys-After cursor and page payload (protocol/keys_page.ts) and the
 * KeysRequest/KeysReply codec.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareHashed, mergeKeyPages, pastSpan, spanAt, takeWithin, type HashedKey, type ReplicaKeysPage } from '../../src/core/key_listing.js';
import { hashMax } from '../../src/core/moves.js';
import { buildRing, keyHash } from '../../src/core/ring.js';
import type { Version } from '../../src/core/version.js';
import { decode, encode, Kind, ProtocolError, type KeysReply } from '../../src/protocol/codec.js';
import { decodeKeysCursor, decodeKeysPage, encodeKeysCursor, encodeKeysPage, prefixTag } from '../../src/protocol/keys_page.js';

const ring = buildRing(['a', 'b', 'c'].map((id) => ({ id, virtualNodes: 4 })));

function live(node: string, hlc: number, extra: Partial<Version> = {}): Version {
  return { clock: { [node]: hlc }, hlc, writer: node, tombstone: false, value: new Uint8Array(0), ...extra };
}
function dead(node: string, hlc: number, clock: Record<string, number>): Version {
  return { clock, hlc, writer: node, tombstone: true, value: new Uint8Array(0) };
}
function hashed(key: string): HashedKey {
  return { key, hash: keyHash(key) };
}
function item(key: string, versions: Version[]): ReplicaKeysPage['items'][number] {
  return { ...hashed(key), versions };
}

describe('key listing spans', () => {
  it('spans - walking span by span from 0 covers every hash once, each span inside one arc', () => {
    const positions = [...new Set(ring.tokens.map((t) => t.position))];
    let pos: bigint | undefined = 0n;
    let spans = 0;
    let covered = 0n;
    while (pos !== undefined) {
      const span = spanAt(ring, pos);
      assert.equal(span.fromHash, pos);
      // No token strictly inside: one preference list for the whole span.
      assert.ok(positions.every((p) => p < span.fromHash || p >= span.toHash));
      covered += span.toHash - span.fromHash + 1n;
      spans++;
      pos = pastSpan(span)?.hash;
    }
    assert.equal(covered, hashMax + 1n);
    assert.equal(spans, positions.length + 1, 'one span per arc, and the arc wrapping past zero in two');
  });

  it('spans - any hash lies in the span spanAt gives for it', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: hashMax }), (h) => {
      const span = spanAt(ring, h);
      return span.fromHash <= h && h <= span.toHash;
    }));
  });

  it('spans - an empty ring is one span of the whole hash space', () => {
    assert.deepEqual(spanAt(buildRing([]), 42n), { fromHash: 0n, toHash: hashMax });
    assert.equal(pastSpan({ fromHash: 0n, toHash: hashMax }), undefined);
  });
});

describe('key listing merge', () => {
  it('merge - a key live on one replica and deleted by a later write on the other is not listed', () => {
    const a: ReplicaKeysPage = { items: [item('x', [live('a', 10)]), item('y', [live('a', 11)])] };
    const b: ReplicaKeysPage = { items: [item('x', [dead('b', 20, { a: 10, b: 20 })])] };
    assert.deepEqual(mergeKeyPages([a, b], 1000, 16).live.map((k) => k.key), ['y']);
  });

  it('merge - a key that only one replica holds is listed (a write acknowledged by W reaches one of R when R + W > N)', () => {
    const a: ReplicaKeysPage = { items: [] };
    const b: ReplicaKeysPage = { items: [item('only-b', [live('b', 5)])] };
    assert.deepEqual(mergeKeyPages([a, b], 1000, 16).live.map((k) => k.key), ['only-b']);
  });

  it('merge - an expired version hides its key at the HLC time given, not before', () => {
    const page: ReplicaKeysPage = { items: [item('t', [live('a', 10, { expiresHlc: 50 })])] };
    assert.equal(mergeKeyPages([page], 49, 16).live.length, 1);
    assert.equal(mergeKeyPages([page], 50, 16).live.length, 0);
  });

  it('merge - only entries up to the earliest stop count, and the stop is where the listing goes on', () => {
    const keys = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'].map(hashed).sort(compareHashed);
    const a: ReplicaKeysPage = { items: keys.slice(0, 2).map((k) => ({ ...k, versions: [live('a', 1)] })), next: keys[1]! };
    const b: ReplicaKeysPage = { items: keys.map((k) => ({ ...k, versions: [live('b', 1)] })) };
    const merged = mergeKeyPages([a, b], 100, 16);
    assert.deepEqual(merged.live.map((k) => k.key), keys.slice(0, 2).map((k) => k.key));
    assert.deepEqual(merged.stop, keys[1]);
    assert.equal(mergeKeyPages([b], 100, 16).stop, undefined, 'a replica that reached the span end leaves no stop');
  });

  it('merge - keys come out in hash order, each once, whatever the order of the answers', () => {
    fc.assert(fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 30 }), fc.boolean(), (names, swap) => {
      const a: ReplicaKeysPage = { items: names.map((k) => item(k, [live('a', 1)])).sort(compareHashed) };
      const b: ReplicaKeysPage = { items: names.slice(0, names.length >> 1).map((k) => item(k, [live('b', 2)])).sort(compareHashed) };
      const out = mergeKeyPages(swap ? [b, a] : [a, b], 100, 16).live;
      assert.equal(new Set(out.map((k) => k.key)).size, names.length);
      for (let i = 1; i < out.length; i++) assert.ok(compareHashed(out[i - 1]!, out[i]!) < 0);
    }));
  });

  it('take - a page takes keys while they fit in count and bytes, and says when some were left', () => {
    const keys = ['a', 'bb', 'ccc'].map(hashed);
    assert.deepEqual(takeWithin(keys, 10, 100, (k) => k.length), { taken: keys, complete: true });
    assert.deepEqual(takeWithin(keys, 2, 100, (k) => k.length), { taken: keys.slice(0, 2), complete: false });
    assert.deepEqual(takeWithin(keys, 10, 3, (k) => k.length), { taken: keys.slice(0, 2), complete: false });
    assert.deepEqual(takeWithin(keys, 10, 0, (k) => k.length), { taken: [], complete: false });
  });
});

describe('key listing cursor and page', () => {
  it('cursor - round-trips a position, with and without a last key, and any key text', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: hashMax }), fc.option(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), { nil: undefined }), fc.nat({ max: 1e9 }), (hash, afterKey, listed) => {
      const c = { listed, position: afterKey === undefined ? { hash } : { hash, afterKey }, prefixTag: prefixTag('p') };
      assert.deepEqual(decodeKeysCursor(encodeKeysCursor(c)), c);
    }));
  });

  it('cursor - refuses what no page answered', () => {
    for (const bad of ['', 'k1', 'k2.0.0000000000000000.00000000.', 'k1.0.000000000000000g.00000000.', 'k1.0.0000000000000000.00000000.a', 'k1.-1.0000000000000000.00000000.', `k1.0.0000000000000000.00000000.${'A'.repeat(5000)}`]) {
      assert.ok('error' in decodeKeysCursor(bad), bad);
    }
    assert.notEqual(prefixTag('user.'), prefixTag('user'));
  });

  it('page - one key a line, and every key base64url when one holds a line break', () => {
    const plain = encodeKeysPage(['a b', 'user.1', 'ü']);
    assert.equal(plain.encoding, undefined);
    assert.equal(Buffer.from(plain.data).toString(), 'a b\nuser.1\nü');
    assert.deepEqual(decodeKeysPage(plain.data, undefined), ['a b', 'user.1', 'ü']);
    const odd = encodeKeysPage(['line\nbreak', 'cr\r', 'plain']);
    assert.equal(odd.encoding, 'base64url');
    assert.deepEqual(decodeKeysPage(odd.data, odd.encoding), ['line\nbreak', 'cr\r', 'plain']);
    assert.deepEqual(decodeKeysPage(new Uint8Array(0), undefined), []);
  });
});

describe('key listing codec', () => {
  it('codec - a KeysRequest and a KeysReply round-trip', () => {
    const req = { kind: Kind.KeysRequest, from: 'n1', fromHash: 5n, toHash: hashMax, after: { hash: 7n, key: 'k' }, prefix: 'user.', itemsMax: 10, bytesMax: 4096 } as const;
    assert.deepEqual(decode(encode(req), Kind.KeysRequest), req);
    const reply: KeysReply = { kind: Kind.KeysReply, items: [{ key: 'user.1', versions: [live('n1', 3)] }], next: { hash: 9n, key: 'user.1' } };
    const back = decode(encode(reply), Kind.KeysReply);
    const plain = (r: KeysReply) => ({ ...r, items: r.items.map((i) => ({ ...i, versions: i.versions.map((v) => ({ ...v, value: [...v.value] })) })) });
    assert.deepEqual(plain(back), plain(reply));
  });

  it('codec - refuses a request with reversed hashes, no room for a key, or a prefix over the key size', () => {
    const base = { kind: Kind.KeysRequest, from: 'n1', fromHash: 5n, toHash: 9n, prefix: '', itemsMax: 10, bytesMax: 4096 } as const;
    assert.throws(() => decode(encode({ ...base, fromHash: 10n }), Kind.KeysRequest), ProtocolError);
    assert.throws(() => decode(encode({ ...base, itemsMax: 0 }), Kind.KeysRequest), ProtocolError);
    assert.throws(() => decode(encode({ ...base, itemsMax: 100_000 }), Kind.KeysRequest), ProtocolError);
    assert.throws(() => decode(encode({ ...base, prefix: 'p'.repeat(2000) }), Kind.KeysRequest), ProtocolError);
  });
});
