/**
 * MD5 in JavaScript (src/core/md5.ts) against node:crypto's, and the ring
 * position built on it (src/core/hash.ts hash64) against MD5 of the UTF-8
 * bytes as node:crypto encodes a string.
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { md5High64 } from '../../src/core/md5.js';
import { hash64 } from '../../src/core/hash.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_201);
const runs = (numRuns: number) => ({ seed, numRuns });

const reference = (bytes: Uint8Array) => createHash('md5').update(bytes).digest().readBigUInt64BE(0);

describe('md5High64', () => {
  it('is the first 8 bytes of RFC 1321 test suite digests', () => {
    const suite: [string, bigint][] = [
      ['', 0xd41d8cd98f00b204n],
      ['a', 0x0cc175b9c0f1b6a8n],
      ['abc', 0x900150983cd24fb0n],
      ['message digest', 0xf96b697d7cb7938dn],
      ['abcdefghijklmnopqrstuvwxyz', 0xc3fcd3d76192e400n],
      ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', 0x57edf4a22be3c955n],
    ];
    for (const [text, head] of suite) assert.equal(md5High64(Buffer.from(text, 'latin1')), head, text);
  });

  it('equals node:crypto on every length around the padding edges', () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
    for (const n of [0, 1, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 121, 127, 128, 129, 183, 184, 191, 192, 255, 256, 300]) {
      assert.equal(md5High64(bytes, n), reference(bytes.subarray(0, n)), `length ${n}`);
    }
  });

  it('equals node:crypto on random bytes, of the whole array or a prefix', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), fc.nat(), (bytes, cut) => {
        const n = bytes.length === 0 ? 0 : cut % (bytes.length + 1);
        assert.equal(md5High64(bytes), reference(bytes));
        assert.equal(md5High64(bytes, n), reference(bytes.subarray(0, n)));
      }),
      runs(500),
    );
  });

  it('does not carry anything from one call to the next (a long input, then a short one)', () => {
    const long = new Uint8Array(1000).fill(0xab);
    const short = Uint8Array.of(1, 2, 3);
    const before = md5High64(short);
    md5High64(long);
    assert.equal(md5High64(short), before);
    assert.equal(before, reference(short));
  });

  it('refuses a length outside the array', () => {
    assert.throws(() => md5High64(new Uint8Array(4), 5), RangeError);
    assert.throws(() => md5High64(new Uint8Array(4), -1), RangeError);
    assert.throws(() => md5High64(new Uint8Array(4), 1.5), RangeError);
  });
});

describe('hash64 through md5High64', () => {
  it('equals MD5 of the string as UTF-8 (as Buffer.from writes it), for any string, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 })), (text) => {
        assert.equal(hash64(text), reference(Buffer.from(text, 'utf8')));
      }),
      runs(1000),
    );
  });

  it('equals it for strings longer than its scratch buffer, and after them for short ones', () => {
    for (const text of ['k'.repeat(2048), 'k'.repeat(2049), 'é'.repeat(3000), '😀'.repeat(1500), 'short']) {
      assert.equal(hash64(text), reference(Buffer.from(text, 'utf8')), `length ${text.length}`);
    }
  });
});
