/**
 * The anti-entropy wire messages (src/protocol/codec.ts, Kind.Aae*): they
 * round-trip, and malformed ones are refused with a reason.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Encoder } from 'cbor-x';
import { limits } from '../../src/core/limits.js';
import { branchCount, segmentCount } from '../../src/core/tictac.js';
import { differingKeys } from '../../src/node/aae/anti_entropy.js';
import { keyHash } from '../../src/core/ring.js';
import { decode, encode, Kind, ProtocolError, type AaeKeysReply, type AaeKeysRequest, type AaeTreeReply, type AaeTreeRequest } from '../../src/protocol/codec.js';

const raw = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const hex = (x: bigint) => x.toString(16).padStart(16, '0');

describe('anti-entropy messages', () => {
  it('aae messages - tree and key requests and replies round-trip, 64-bit values exact', () => {
    const big = (1n << 64n) - 1n;
    const tree: AaeTreeRequest = { kind: Kind.AaeTreeRequest, from: 'n1', arcStart: big, arcEnd: 5n, branches: [0, 31] };
    assert.deepEqual(decode(encode(tree), Kind.AaeTreeRequest), tree);
    const treeReply: AaeTreeReply = { kind: Kind.AaeTreeReply, ready: true, hashes: [0n, big, 12345n] };
    assert.deepEqual(decode(encode(treeReply), Kind.AaeTreeReply), treeReply);
    const keys: AaeKeysRequest = { kind: Kind.AaeKeysRequest, from: 'n1', arcStart: 1n, arcEnd: 2n, segments: [3, 1023], after: { hash: big, key: 'k' }, bytesMax: 1000 };
    assert.deepEqual(decode(encode(keys), Kind.AaeKeysRequest), keys);
    const keysReply: AaeKeysReply = { kind: Kind.AaeKeysReply, items: [{ key: 'a', digest: big }], next: { hash: 7n, key: 'a' } };
    assert.deepEqual(decode(encode(keysReply), Kind.AaeKeysReply), keysReply);
     // The digest format (core/tictac.ts DigestVersion) travels when given; absent it stays absent (a node of format 1).
    const withFormat: AaeTreeRequest = { ...tree, digest: 2 };
    assert.deepEqual(decode(encode(withFormat), Kind.AaeTreeRequest), withFormat);
    assert.deepEqual(decode(encode({ ...treeReply, digest: 2 }), Kind.AaeTreeReply), { ...treeReply, digest: 2 });
    assert.deepEqual(decode(encode({ ...keys, digest: 2 }), Kind.AaeKeysRequest), { ...keys, digest: 2 });
  });

  it('aae messages - out-of-range, repeated or oversized fields are refused', () => {
    const base = { v: 2, kind: Kind.AaeKeysRequest, from: 'n1', arcStart: hex(1n), arcEnd: hex(2n), bytesMax: 10 };
    const refused = (o: object, kind: Kind) => assert.throws(() => decode(raw.encode(o), kind as typeof Kind.AaeKeysRequest), ProtocolError);
    refused({ ...base, segments: [segmentCount] }, Kind.AaeKeysRequest);
    refused({ ...base, segments: [1, 1] }, Kind.AaeKeysRequest);
    refused({ ...base, segments: [-1] }, Kind.AaeKeysRequest);
    refused({ ...base, segments: Array.from({ length: segmentCount + 1 }, (_, i) => i) }, Kind.AaeKeysRequest);
    refused({ ...base, segments: [1], arcStart: 'zz' }, Kind.AaeKeysRequest);
    refused({ ...base, segments: [1], from: 'not a node' }, Kind.AaeKeysRequest);
    refused({ v: 2, kind: Kind.AaeTreeRequest, from: 'n1', arcStart: hex(1n), arcEnd: hex(2n), branches: [branchCount] }, Kind.AaeTreeRequest);
    refused({ v: 2, kind: Kind.AaeTreeReply, ready: true, hashes: Array.from({ length: segmentCount + 1 }, () => hex(0n)) }, Kind.AaeTreeReply);
    refused({ v: 2, kind: Kind.AaeTreeReply, ready: 'yes', hashes: [] }, Kind.AaeTreeReply);
    refused({ v: 2, kind: Kind.AaeTreeRequest, from: 'n1', arcStart: hex(1n), arcEnd: hex(2n), digest: 0 }, Kind.AaeTreeRequest);
    refused({ v: 2, kind: Kind.AaeTreeReply, ready: true, hashes: [], digest: 256 }, Kind.AaeTreeReply);
    refused({ ...base, segments: [1], digest: 1.5 }, Kind.AaeKeysRequest);
    refused({ v: 2, kind: Kind.AaeKeysReply, items: Array.from({ length: limits.aaeKeysPageItemsMax + 1 }, () => ({ key: 'k', digest: hex(1n) })) }, Kind.AaeKeysReply);
    refused({ v: 2, kind: Kind.AaeKeysReply, items: [{ key: '', digest: hex(1n) }] }, Kind.AaeKeysReply);
  });

  it('aae - the keys to exchange are those whose digests differ or that one side lacks, up to the limit', () => {
    const arc = { start: 0n, end: 0n };
    const item = (key: string, digest: bigint) => ({ key, digest, hash: keyHash(key) });
    const ours = [item('a', 1n), item('b', 2n), item('c', 3n)];
    const theirs = [item('a', 1n), item('b', 9n), item('d', 4n)];
    assert.deepEqual(differingKeys(arc, ours, theirs, undefined).sort(), ['b', 'c', 'd']);
  });
});
