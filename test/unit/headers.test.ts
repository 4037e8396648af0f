/**
 * Header blocks (src/protocol/headers.ts): the strict parser for what
 * arrives and the sanitizer for what a node sends, tested without a server.
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MsgHdrsImpl } from '@nats-io/nats-core/internal';
import { isHeaderName, parseHeaderBlock, sanitizeHeaderValue, type HeaderBlock } from '../../src/protocol/headers.js';

const seed = Number(process.env['FC_SEED'] ?? 20_250_106);
const runs = (numRuns: number) => ({ seed, numRuns });
const bytes = (s: string | number[]) => (typeof s === 'string' ? new TextEncoder().encode(s) : Uint8Array.from(s));

function parsed(block: string | Uint8Array): HeaderBlock {
  const r = parseHeaderBlock(typeof block === 'string' ? bytes(block) : block);
  if ('error' in r) assert.fail(`unexpected error: ${r.error}`);
  return r;
}

function refused(block: string | Uint8Array): string {
  const r = parseHeaderBlock(typeof block === 'string' ? bytes(block) : block);
  assert.ok('error' in r, `accepted ${JSON.stringify(block)}`);
  return r.error;
}

describe('headers - parseHeaderBlock', () => {
  it('headers - a well-formed block gives its values by lower-cased name, repeats in order', () => {
    const b = parsed('NATS/1.0\r\nKV-Key: a b\r\nkv-r:2\r\nX-Y:  padded \t\r\nX-Y: again\r\nEmpty:\r\n\r\n');
    assert.equal(b.status, 0);
    assert.deepEqual([...b.values], [['kv-key', ['a b']], ['kv-r', ['2']], ['x-y', ['padded', 'again']], ['empty', ['']]]);
    assert.deepEqual([...parsed('NATS/1.0\r\n\r\n').values], []);
  });

  it('headers - a value that lost more than the blank after the colon is marked padded', () => {
    const b = parsed('NATS/1.0\r\nA: one\r\nB:tight\r\nC:\ttab\r\nD:  two\r\nE: trail \r\nF: tab\t\r\nG:\r\nH:  \r\nKV-Key: \t x\r\n\r\n');
    assert.deepEqual([...(b.padded ?? [])].sort(), ['d', 'e', 'f', 'kv-key']);
    assert.deepEqual(b.values.get('kv-key'), ['x'], 'the value itself is still trimmed');
  });

  it('headers - a status line gives code and description (replies have one)', () => {
    assert.deepEqual(parsed('NATS/1.0 503\r\n\r\n').status, 503);
    const timeout = parsed('NATS/1.0 408 Request Timeout\r\nA: b\r\n\r\n');
    assert.equal(timeout.status, 408);
    assert.equal(timeout.description, 'Request Timeout');
  });

  it('headers - every malformed block is refused with what is wrong', () => {
    const cases: [string | Uint8Array, RegExp][] = [
      ['NATS/1.0\r\nKV-R: 2\nX: y\r\n\r\n', /line 2 \(KV-R\) holds a lone LF/],
      ['NATS/1.0\r\nKV-Key: a\rb\r\n\r\n', /holds a lone CR/],
      ['NATS/1.0\r\n KV-R: 2\r\n\r\n', /invalid name/],
      ['NATS/1.0\r\nKV-R : 2\r\n\r\n', /invalid name/],
      ['NATS/1.0\r\n: 2\r\n\r\n', /invalid name/],
      ['NATS/1.0\r\nKV-R 2\r\n\r\n', /no colon/],
      ['NATS/1.0\r\nA: b\r\n\r\nC: d\r\n\r\n', /line 3 is empty/],
      ['NATS/1.0\r\nKV-R: 2', /does not end with an empty line/],
      ['NATS/1.0\r\nKV-R: 2\r\n', /does not end with an empty line/],
      ['', /does not end with an empty line/],
      ['HELLO\r\n\r\n', /does not start with NATS\/1.0: "HELLO"/],
      ['NATS/1.1\r\n\r\n', /does not start with NATS\/1.0/],
      ['NATS/1.0 garbage\r\n\r\n', /does not start with NATS\/1.0/],
      ['NATS/1.0 5033 x\r\n\r\n', /does not start with NATS\/1.0/],
      ['\uFEFFNATS/1.0\r\n\r\n', /does not start with NATS\/1.0/],
      [bytes([...bytes('NATS/1.0\r\nKV-Key: a'), 0xff, ...bytes('\r\n\r\n')]), /not valid UTF-8/],
      [bytes([...bytes('NATS/1.0\r\nKV-Key: a'), 0xc3, ...bytes('\r\n\r\n')]), /not valid UTF-8/],
    ];
    for (const [block, reason] of cases) assert.match(refused(block), reason, JSON.stringify(typeof block === 'string' ? block : [...block]));
  });

  it('headers - an error quotes at most a short prefix of the offending line', () => {
    const error = refused(`NATS/1.0\r\n${'x'.repeat(100_000)}\r\n\r\n`);
    assert.ok(error.length < 200, `${error.length} characters`);
  });

  it('headers - parsing takes linear time: a megabyte of spaces inside a value or a status line is quick', () => {
    const spaces = ' '.repeat(1024 * 1024);
    const started = performance.now();
    assert.equal(parsed(`NATS/1.0\r\nX-A: a${spaces}b\r\n\r\n`).values.get('x-a')?.[0]?.length, spaces.length + 2);
    assert.match(refused(`NATS/1.0 503 a${spaces}b\u0001\n\r\n\r\n`), /does not start/);
    assert.equal(parsed(`NATS/1.0 503 a${spaces}b\r\n\r\n`).status, 503);
    assert.ok(performance.now() - started < 1000, `${Math.round(performance.now() - started)} ms`);
  });

  it(`headers - parsing never throws, whatever the bytes (seed ${seed})`, () => {
    const piece = fc.oneof(
      fc.constantFrom('NATS/1.0', '\r\n', '\r', '\n', ':', ' ', '\t', 'KV-Key', 'KV-R', 'NATS/1.0 503 x', '\u00e9'),
      fc.string({ maxLength: 8 }),
    );
    const blockArb = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.array(piece, { maxLength: 16 }).map((parts) => bytes(parts.join(''))),
    );
    fc.assert(
      fc.property(blockArb, (block) => {
        const r = parseHeaderBlock(block);
        assert.ok('error' in r ? typeof r.error === 'string' : r.values instanceof Map);
      }),
      runs(2_000),
    );
  });

  it(`headers - a block nats.js builds parses back to the same values (seed ${seed})`, () => {
    const name = fc.string({ unit: fc.constantFrom('A', 'b', '-', '_', '9', '!', '~'), minLength: 1, maxLength: 12 });
    const value = fc.string({ maxLength: 24 }).filter((v) => !/[\r\n]/.test(v));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { minLength: 1, maxLength: 6 }), (pairs) => {
        const h = new MsgHdrsImpl();
        for (const [k, v] of pairs) h.append(k, v);
        const back = parsed(h.encode());
        // nats.js trims values as it stores them.
        for (const [k, v] of pairs) assert.ok(back.values.get(k.toLowerCase())?.includes(v.trim()), `${k}: ${JSON.stringify(v)}`);
      }),
      runs(500),
    );
  });
});

describe('headers - sanitizeHeaderValue', () => {
  it('headers - CR, LF and other control characters become visible escapes', () => {
    assert.equal(sanitizeHeaderValue('not found: a\r\nInjected: yes'), 'not found: a\\r\\nInjected: yes');
    assert.equal(sanitizeHeaderValue('nul\u0000 del\u007f tab\t'), 'nul\\x00 del\\x7f tab\t');
    assert.equal(sanitizeHeaderValue('ünïcødé 😀'), 'ünïcødé 😀');
  });

  it('headers - a long value is cut to the byte maximum, never inside a character', () => {
    const cut = sanitizeHeaderValue('😀'.repeat(100), 50);
    assert.ok(Buffer.byteLength(cut) <= 50, `${Buffer.byteLength(cut)} bytes`);
    assert.match(cut, /^(😀)+\.\.\.$/u);
    assert.equal(Buffer.byteLength(sanitizeHeaderValue('x'.repeat(1_000_000))), 4 * 1024);
  });

  it(`headers - nats.js accepts every sanitized value (seed ${seed})`, () => {
    const text = fc.oneof(fc.string({ maxLength: 64 }), fc.string({ unit: fc.constantFrom('\r', '\n', 'a', ' ', '\u0000', '\uD800', '😀'), maxLength: 32 }));
    fc.assert(
      fc.property(text, (t) => {
        const h = new MsgHdrsImpl();
        h.set('Nats-Service-Error', sanitizeHeaderValue(t));
        assert.ok(!('error' in parseHeaderBlock(h.encode())));
      }),
      runs(1_000),
    );
  });

  it('headers - names are printable ASCII without colon or space', () => {
    for (const n of ['KV-Key', 'Nats-Service-Error-Code', 'x', '!#$%&*+.^_`|~']) assert.equal(isHeaderName(n), true, n);
    for (const n of ['', 'a b', 'a:b', 'é', 'a\n', '\u0000']) assert.equal(isHeaderName(n), false, JSON.stringify(n));
  });
});
