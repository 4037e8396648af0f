/**
 * The change feed without a server: per-key ordering and de-duplication
 * (core/change_order.ts), the event's subject and headers both ways
 * (protocol/changes.ts), the subjects a watch listens on, and the node's
 * publisher dropping past its outbound bound (node/changes/change_feed.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pino from 'pino';
import { ChangeOrder, compareStamps } from '../../src/core/change_order.js';
import { changeMessage, parseChangeEvent, type ChangeEvent } from '../../src/protocol/changes.js';
import { changeFilters, changeSubject, changesPrefix, clientEndpoint, Header } from '../../src/protocol/subjects.js';
import { ChangeFeed } from '../../src/node/changes/change_feed.js';
import type { HeaderMap, Transport } from '../../src/transport/transport.js';
import type { Version } from '../../src/core/version.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_130);

function lookup(headers: Record<string, string>): (name: string) => string | undefined {
  return (name) => Object.entries(headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

function version(hlc: number, writer: string, value: string | null, expiresHlc?: number): Version {
  const v: Version = { clock: { [writer]: hlc }, hlc, writer, tombstone: value === null, value: new TextEncoder().encode(value ?? '') };
  if (expiresHlc !== undefined) v.expiresHlc = expiresHlc;
  return v;
}

describe('change order', () => {
  it('change order - later events pass, a duplicate and an older one are dropped', () => {
    const o = new ChangeOrder(10);
    assert.equal(o.admit('k', { hlc: 5, writer: 'n1' }), true);
    assert.equal(o.admit('k', { hlc: 5, writer: 'n1' }), false);
    assert.equal(o.admit('k', { hlc: 4, writer: 'n9' }), false);
    assert.equal(o.admit('k', { hlc: 5, writer: 'n2' }), true, 'an HLC tie breaks on the writer, as last-writer-wins does');
    assert.equal(o.admit('other', { hlc: 1, writer: 'n1' }), true, 'keys are ordered apart');
    assert.deepEqual([o.passed, o.duplicates, o.older], [3, 1, 1]);
  });

  it('change order - any arrival order with repeats delivers an increasing sequence per key, ending at the newest', () => {
    const stamp = fc.record({ key: fc.constantFrom('a', 'b', 'c'), hlc: fc.integer({ min: 1, max: 30 }), writer: fc.constantFrom('n1', 'n2') });
    fc.assert(
      fc.property(fc.array(stamp, { minLength: 1, maxLength: 60 }), (events) => {
        const o = new ChangeOrder(100);
        const delivered = new Map<string, { hlc: number; writer: string }[]>();
        for (const e of [...events, ...events]) {
          if (o.admit(e.key, e)) delivered.set(e.key, [...(delivered.get(e.key) ?? []), e]);
        }
        for (const [key, list] of delivered) {
          for (let i = 1; i < list.length; i++) assert.ok(compareStamps(list[i - 1]!, list[i]!) < 0, `${key} out of order`);
          const newest = events.filter((e) => e.key === key).reduce((a, b) => (compareStamps(a, b) >= 0 ? a : b));
          assert.equal(compareStamps(list.at(-1)!, newest), 0);
        }
      }),
      { seed, numRuns: 300 },
    );
  });

  it('change order - past keysMax the least recently changed key is forgotten', () => {
    const o = new ChangeOrder(2);
    o.admit('a', { hlc: 1, writer: 'n' });
    o.admit('b', { hlc: 1, writer: 'n' });
    o.admit('a', { hlc: 2, writer: 'n' });
    o.admit('c', { hlc: 1, writer: 'n' });
    assert.equal(o.keys, 2);
    assert.equal(o.admit('a', { hlc: 2, writer: 'n' }), false, 'a was changed more recently than b: kept');
    assert.equal(o.admit('b', { hlc: 1, writer: 'n' }), true, 'b was forgotten');
  });
});

describe('change events', () => {
  it('change events - a put travels as kvchanges.<key> with op, hlc, writer, context and the value, and parses back', () => {
    const m = changeMessage('user.42', version(1_700_000_000_000_123, 'n1', 'hello', 1_700_000_030_000_000), 'ctx', 1024 * 1024);
    assert.equal(m.subject, 'kvchanges.user.42');
    assert.equal(m.omitted, false);
    const e = parseChangeEvent(m.subject, lookup(m.headers), m.data) as ChangeEvent;
    assert.deepEqual({ ...e, value: new TextDecoder().decode(e.value) }, {
      key: 'user.42', op: 'put', value: 'hello', context: 'ctx', hlc: 1_700_000_000_000_123, writer: 'n1', expiresHlc: 1_700_000_030_000_000,
    });
  });

  it('change events - a delete has an empty payload; keys that are not tokens go in KV-Key or KV-Key-B64 on the bare subject', () => {
    const del = changeMessage('my key', version(7, 'n2', null), 'c', 1024 * 1024);
    assert.deepEqual([del.subject, del.headers[Header.Key], del.headers[Header.Op], del.data.length], ['kvchanges', 'my key', 'del', 0]);
    const padded = changeMessage(' padded ', version(8, 'n2', 'v'), 'c', 1024 * 1024);
    assert.equal(padded.subject, changesPrefix);
    assert.equal((parseChangeEvent(padded.subject, lookup(padded.headers), padded.data) as ChangeEvent).key, ' padded ');
    const long = 'k'.repeat(300);
    assert.equal(changeMessage(long, version(9, 'n1', 'v'), 'c', 1024 * 1024).headers[Header.Key], long, 'past subjectKeyBytesMax the key goes in a header');
  });

  it('change events - a value that does not fit max_payload with the headers is left out, its size said', () => {
    const big = changeMessage('k', version(1, 'n1', 'x'.repeat(1000)), 'c', 1000);
    assert.equal(big.omitted, true);
    assert.equal(big.data.length, 0);
    const e = parseChangeEvent(big.subject, lookup(big.headers), big.data) as ChangeEvent;
    assert.equal(e.valueOmittedBytes, 1000);
    assert.equal(changeMessage('k', version(1, 'n1', 'x'.repeat(500)), 'c', 1000).omitted, false);
  });

  it('change events - an event without op, timestamp, writer or key is refused, not delivered', () => {
    const good = changeMessage('k', version(1, 'n1', 'v'), 'c', 4096);
    for (const drop of [Header.Op, Header.Hlc, Header.Writer]) {
      const h = { ...good.headers };
      delete h[drop];
      assert.ok('error' in parseChangeEvent(good.subject, lookup(h), good.data), drop);
    }
    assert.ok('error' in parseChangeEvent(changesPrefix, lookup(good.headers), good.data));
    assert.ok('error' in parseChangeEvent(good.subject, lookup({ ...good.headers, [Header.Hlc]: '-1' }), good.data));
  });

  it('change events - the feed is outside kv.>, which every node serves as requests', () => {
    assert.equal(clientEndpoint.subject, 'kv.>');
    for (const key of ['a', 'user.42', 'my key']) assert.ok(!changeSubject(key).subject.startsWith('kv.'));
  });

  it('change events - a watch listens on the whole tokens of its prefix and on the bare subject', () => {
    assert.deepEqual(changeFilters(''), ['kvchanges.>', 'kvchanges']);
    assert.deepEqual(changeFilters('user.'), ['kvchanges.user.>', 'kvchanges']);
    assert.deepEqual(changeFilters('user.4'), ['kvchanges.user.>', 'kvchanges']);
    assert.deepEqual(changeFilters('us'), ['kvchanges.>', 'kvchanges']);
    assert.deepEqual(changeFilters('my key.'), ['kvchanges.>', 'kvchanges']);
    assert.deepEqual(changeFilters(`${'k'.repeat(300)}.`), ['kvchanges']);
  });
});

describe('change feed publisher', () => {
  function fakeTransport(outbound: () => number | undefined, fail = false): { t: Transport; sent: { subject: string; headers?: HeaderMap }[] } {
    const sent: { subject: string; headers?: HeaderMap }[] = [];
    const t = {
      publish: (subject: string, _data: Uint8Array, headers?: HeaderMap) => {
        if (fail) throw new Error('connection closed');
        sent.push({ subject, headers });
      },
      outboundBytes: outbound,
    } as unknown as Transport;
    return { t, sent };
  }

  it('change feed - publishes until the outbound buffer is over its bound, then drops and counts', () => {
    let queued = 0;
    const { t, sent } = fakeTransport(() => queued);
    const feed = new ChangeFeed(t, { payloadBytesMax: 4096, outboundBytesMax: 100 }, pino({ level: 'silent' }), () => 0);
    feed.publish('a', version(1, 'n1', 'v'));
    queued = 101;
    feed.publish('b', version(2, 'n1', 'v'));
    queued = 100;
    feed.publish('c', version(3, 'n1', null));
    assert.deepEqual(sent.map((s) => s.subject), ['kvchanges.a', 'kvchanges.c']);
    assert.deepEqual([feed.published, feed.dropped], [2, 1]);
  });

  it('change feed - a publish that throws is counted, never thrown to the write path', () => {
    const { t } = fakeTransport(() => undefined, true);
    const feed = new ChangeFeed(t, { payloadBytesMax: 4096, outboundBytesMax: 100 }, pino({ level: 'silent' }), () => 0);
    assert.doesNotThrow(() => feed.publish('a', version(1, 'n1', 'v')));
    assert.deepEqual([feed.published, feed.dropped], [0, 1]);
  });
});
