import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Encoder } from 'cbor-x';
import { afterSeconds, fromWallMs } from '../../src/core/hlc.js';
import { limits } from '../../src/core/limits.js';
import type { Version } from '../../src/core/version.js';
import { decode, decodeRecord, encode, encodeRecord, Kind } from '../../src/protocol/codec.js';
import { parseTtlHeader, ttlSecondsOf } from '../../src/protocol/ttl.js';

const hlc = fromWallMs(1_700_000_000_000) + 7;
const live: Version = { clock: { n1: hlc }, hlc, writer: 'n1', tombstone: false, value: Buffer.from('x'), expiresHlc: afterSeconds(hlc, 30) };
const raw = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

function record(version: Record<string, unknown>): Uint8Array {
  return raw.encode({ f: 2, versions: [{ clock: { n1: hlc }, hlc, writer: 'n1', tombstone: false, value: Buffer.from('x'), ...version }] });
}

describe('ttl', () => {
  it('ttl - an expiry is the timestamp plus the seconds in HLC units (ms x 1000)', () => {
    assert.equal(afterSeconds(hlc, 30) - hlc, 30_000_000);
    assert.ok(Number.isSafeInteger(afterSeconds(fromWallMs(Date.UTC(2200, 0, 1)), limits.ttlSecondsMax)), 'ten years past the year 2200 is still a safe integer');
  });

  it('ttl - KV-TTL takes whole seconds from 1 to ttlSecondsMax, and nothing else', () => {
    assert.equal(parseTtlHeader('30'), 30);
    assert.equal(parseTtlHeader(' 1 '), 1);
    assert.equal(parseTtlHeader(String(limits.ttlSecondsMax)), limits.ttlSecondsMax);
    for (const bad of ['0', '-1', '1.5', '', ' ', '30s', '1e3', '0x10', '+5', '\u0663', String(limits.ttlSecondsMax + 1), '9'.repeat(400)]) {
      const r = parseTtlHeader(bad);
      assert.equal(typeof r, 'object', JSON.stringify(bad));
      assert.match((r as { error: string }).error, /whole number of seconds from 1 to 315360000/);
    }
  });

  it('ttl - the SDK and the CLI take seconds or a duration with one unit', () => {
    assert.equal(ttlSecondsOf(30), 30);
    assert.equal(ttlSecondsOf('30'), 30);
    assert.equal(ttlSecondsOf('30s'), 30);
    assert.equal(ttlSecondsOf('5m'), 300);
    assert.equal(ttlSecondsOf('1h'), 3600);
    assert.equal(ttlSecondsOf('2d'), 172_800);
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, limits.ttlSecondsMax + 1, '', '0s', '1.5s', '500ms', '1m30s', 'soon', '3651d']) {
      assert.equal(ttlSecondsOf(bad), undefined, JSON.stringify(bad));
    }
  });

  it('codec - a version with an expiry round trips in a record and in protocol 2; one without reads as before', () => {
    const [read] = decodeRecord(encodeRecord([live]));
    assert.equal(read!.expiresHlc, live.expiresHlc);
    const [plain] = decodeRecord(record({}));
    assert.equal('expiresHlc' in plain!, false, 'an older record has none');
    const put = decode(encode({ kind: Kind.ReplicaPut, items: [{ key: 'k', versions: [live], fresh: true }] }), Kind.ReplicaPut);
    assert.equal(put.items[0]!.versions[0]!.expiresHlc, live.expiresHlc);
    const reply = decode(encode({ kind: Kind.ReplicaGetReply, results: [{ ok: true, versions: [live] }] }, 1), Kind.ReplicaGetReply);
    assert.ok(reply.results[0]!.ok);
  });

  it('codec - a bad expiry is refused with the reason', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ expiresHlc: hlc }, /expiresHlc \d+ is not above the version's hlc/],
      [{ expiresHlc: hlc - 1 }, /not above/],
      [{ expiresHlc: -5 }, /expiresHlc is not a non-negative integer/],
      [{ expiresHlc: 1.5 + hlc }, /expiresHlc is not a non-negative integer/],
      [{ expiresHlc: 2 ** 60 }, /expiresHlc is not a non-negative integer/],
      [{ expiresHlc: 'soon' }, /expiresHlc is not a non-negative integer/],
      [{ expiresHlc: hlc + 1, tombstone: true, value: Buffer.alloc(0) }, /a tombstone with an expiry/],
    ];
    for (const [fields, reason] of cases) assert.throws(() => decodeRecord(record(fields)), reason, JSON.stringify(fields));
  });
});
