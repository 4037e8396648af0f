/**
 * Gossip messages are validated whole on decode (issue 8, defect 5): one
 * flipped bit or a forged heartbeat is refused with a reason, never applied.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { limits } from '../../src/core/limits.js';
import { decode, encode, Kind, ProtocolError, protocolVersion, type Heartbeat, type Message } from '../../src/protocol/codec.js';

const seed = Number(process.env['FC_SEED'] ?? 20_250_105);

const heartbeat: Heartbeat = { kind: Kind.Heartbeat, id: 'n-1a2b', virtualNodes: 64, heartbeat: 1_700_000_000_000, hello: false, incarnation: '0f8c2d4e-1111-4222-8333-944445555666', hlc: 123_456, speaks: 2 };

/** Encodes anything as if it were a message (the codec adds the protocol version). */
const raw = (fields: Record<string, unknown>, v = protocolVersion) => encode(fields as unknown as Message, v);
const refused = (bytes: Uint8Array, reason: RegExp) => assert.throws(() => decode(bytes, Kind.Heartbeat), (e: unknown) => e instanceof ProtocolError && reason.test(e.message));

describe('gossip messages - heartbeat validation', () => {
  it('gossip - a valid heartbeat decodes to itself, hlc included', () => {
    assert.deepEqual(decode(encode(heartbeat), Kind.Heartbeat), heartbeat);
  });

  it('gossip - virtual nodes outside 1..virtualNodesMax are refused (a million would stall every node)', () => {
    for (const bad of [0, -1, limits.virtualNodesMax + 1, 1_000_000, 1.5, '8', null]) {
      refused(raw({ ...heartbeat, virtualNodes: bad }), /virtualNodes .* is not an integer from 1 to virtualNodesMax=1024/);
    }
    assert.equal(decode(raw({ ...heartbeat, virtualNodes: limits.virtualNodesMax }), Kind.Heartbeat).virtualNodes, limits.virtualNodesMax);
    assert.equal(decode(raw({ ...heartbeat, virtualNodes: 1 }), Kind.Heartbeat).virtualNodes, 1);
  });

  it('gossip - an id that is not a node id token is refused', () => {
    for (const bad of ['', 'a.b', 'a b', '*', '>', 'x'.repeat(65), 7]) refused(raw({ ...heartbeat, id: bad }), /node id|id is not a string/);
  });

  it('gossip - an incarnation that is empty, longer than incarnationCharsMax or not a string is refused', () => {
    refused(raw({ ...heartbeat, incarnation: '' }), /incarnation of 0 characters/);
    refused(raw({ ...heartbeat, incarnation: 'x'.repeat(limits.incarnationCharsMax + 1) }), /incarnation of 65 characters/);
    refused(raw({ ...heartbeat, incarnation: 42 }), /incarnation is not a string/);
  });

  it('gossip - a heartbeat counter or hlc that is not a non-negative safe integer is refused', () => {
    for (const bad of [-1, 2 ** 53, 1.5, '1']) {
      refused(raw({ ...heartbeat, heartbeat: bad }), /heartbeat is not a non-negative integer/);
      refused(raw({ ...heartbeat, hlc: bad }), /hlc is not a non-negative integer/);
    }
    const { hlc: _dropped, ...withoutHlc } = heartbeat;
    refused(raw(withoutHlc), /hlc is not a non-negative integer/);
  });

  it('gossip - a protocol-1 heartbeat (no hlc, no speaks) is read with hlc 0; an unknown protocol version is refused', () => {
    const { hlc: _dropped, speaks: _speaks, ...asVersion1 } = heartbeat;
    assert.deepEqual(decode(raw(asVersion1, 1), Kind.Heartbeat), { ...asVersion1, hlc: 0 });
    const { speaks: _s, ...withoutSpeaks } = heartbeat;
    refused(raw(withoutSpeaks), /speaks is missing/);
    refused(raw({ ...heartbeat, speaks: 1 }), /speaks 1, below the version 2/);
    refused(raw({ ...heartbeat }, 99), /protocol version 99/);
    refused(raw({ ...heartbeat }, 0), /protocol version 0/);
  });

  it('gossip - a missing or mistyped hello is refused', () => {
    refused(raw({ ...heartbeat, hello: 'yes' }), /hello is not a boolean/);
  });

  it(`gossip - any single flipped bit of a heartbeat decodes to a valid heartbeat or is refused with ProtocolError (seed ${seed})`, () => {
    const bytes = encode(heartbeat);
    fc.assert(
      fc.property(fc.nat(bytes.length * 8 - 1), (bit) => {
        const flipped = bytes.slice();
        flipped[bit >> 3] = flipped[bit >> 3]! ^ (1 << (bit & 7));
        try {
          const hb = decode(flipped, Kind.Heartbeat);
          assert.ok(hb.virtualNodes >= 1 && hb.virtualNodes <= limits.virtualNodesMax);
          assert.match(hb.id, /^[A-Za-z0-9_-]{1,64}$/);
          assert.ok(hb.incarnation.length >= 1 && hb.incarnation.length <= limits.incarnationCharsMax);
          assert.ok(Number.isSafeInteger(hb.heartbeat) && hb.heartbeat >= 0 && Number.isSafeInteger(hb.hlc) && hb.hlc >= 0);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `not a ProtocolError: ${String(err)}`);
        }
      }),
      { seed, numRuns: bytes.length * 8 },
    );
  });
});

describe('gossip messages - probes', () => {
  it('gossip - a probe and its reply decode to themselves', () => {
    const probe = { kind: Kind.Probe, from: 'n1' } as const;
    assert.deepEqual(decode(encode(probe), Kind.Probe), probe);
    const reply = { kind: Kind.ProbeReply, id: 'n2', incarnation: 'abc', virtualNodes: 10, heartbeat: 5 } as const;
    assert.deepEqual(decode(encode(reply), Kind.ProbeReply), reply);
  });

  it('gossip - a probe reply is held to the same bounds as a heartbeat', () => {
    const reply = { kind: Kind.ProbeReply, id: 'n2', incarnation: 'abc', virtualNodes: 10, heartbeat: 5 };
    assert.throws(() => decode(raw({ ...reply, virtualNodes: 1_000_000 }), Kind.ProbeReply), /virtualNodes/);
    assert.throws(() => decode(raw({ ...reply, id: 'a.b' }), Kind.ProbeReply), /node id/);
    assert.throws(() => decode(raw({ kind: Kind.Probe, from: '' }), Kind.Probe), /from/);
  });

  it('gossip - a heartbeat is not a probe reply (kinds are checked)', () => {
    assert.throws(() => decode(encode(heartbeat), Kind.ProbeReply), /kind 5, expected 8/);
  });
});
