/**
 * The fan-out reference's peer messages (src/bench/fanout_batch.ts): a batch
 * of puts or gets decodes to what was encoded, whatever the keys and values,
 * and a get batch's answer keeps each key's value, absent ones included.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeBatch, decodeValues, encodeBatch, encodeValues, PeerOp } from '../../src/bench/fanout_batch.js';

const key = fc.string({ unit: 'grapheme', maxLength: 40 });
const value = fc.uint8Array({ maxLength: 300 });

describe('bench fan-out batches', () => {
  it('puts - every key and value comes back in order (property)', () => {
    fc.assert(fc.property(fc.array(fc.record({ key, value }), { maxLength: 20 }), (items) => {
      const back = decodeBatch(PeerOp.Put, encodeBatch(PeerOp.Put, items));
      assert.deepEqual(back.map((i) => [i.key, [...i.value!]]), items.map((i) => [i.key, [...i.value]]));
    }));
  });

  it('gets - the keys alone come back, and their answer keeps absent values apart from empty ones', () => {
    const items = [{ key: 'a' }, { key: 'ключ' }, { key: '' }];
    assert.deepEqual(decodeBatch(PeerOp.Get, encodeBatch(PeerOp.Get, items)), items);
    const values = [Uint8Array.of(1, 2, 3), undefined, new Uint8Array(0)];
    assert.deepEqual(decodeValues(encodeValues(values), values.length), values);
  });
});
