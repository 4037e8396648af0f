/**
 * The serving ring as a client needs it to place keys (`kv.ring`, issue 12
 * item 6): replication N, the ring's fingerprint, and each member with its
 * liveness (as the answering node sees it) and its tokens. The SDK's
 * 'direct' routing computes a key's preference list from it (core/ring.ts,
 * the same function the coordinator calls) and sends the request to a
 * replica, so the coordinator is one of them.
 *
 * A fixed binary layout, big-endian, because the tokens dominate (64
 * members of 256 virtual nodes: 16,384 tokens, about 130 KiB, where JSON of
 * decimal 64-bit numbers would take three times that):
 *
 *   u8  format (1)
 *   u8  flags: bit 0 set when the tokens are included
 *   u8  replication N (1..replicationMax)
 *   16  fingerprint, ASCII lowercase hex (core/moves.ts ringFingerprint of the serving ring)
 *   u16 members (1..membersMax)
 *   per member: u8 id length, id (a subject token, ASCII), u8 up (0 or 1),
 *               with tokens: u16 count (1..virtualNodesMax), count x u64 position
 *
 * Without tokens (the client already holds this fingerprint) the answer is a
 * few bytes a member: what a poll every second costs. Decoding is the SDK's
 * untrusted input: every bound is checked, trailing bytes are refused, and
 * the fingerprint must be the one the tokens give, so a garbled ring is
 * refused rather than routed by.
 */
import { limits } from '../core/limits.js';
import { ringFingerprint } from '../core/moves.js';
import { buildRing, type Ring } from '../core/ring.js';
import { isValidToken } from './subjects.js';

export const ringMapFormat = 1;
const flagTokens = 1;
const fingerprintBytes = 16;

export interface RingMapMember {
  id: string;
  up: boolean;
  /** Absent when the answer left the tokens out (unchanged fingerprint). */
  tokens?: readonly bigint[];
}

export interface RingMap {
  replication: number;
  fingerprint: string;
  members: RingMapMember[];
  /** True when every member carries its tokens. */
  withTokens: boolean;
}

/** The members of `ring`, each with its tokens in ring order. */
export function ringMembers(ring: Ring): Map<string, bigint[]> {
  const byId = new Map<string, bigint[]>();
  for (const t of ring.tokens) {
    let list = byId.get(t.nodeId);
    if (list === undefined) byId.set(t.nodeId, (list = []));
    list.push(t.position);
  }
  return byId;
}

export function encodeRingMap(map: RingMap): Uint8Array {
  let size = 3 + fingerprintBytes + 2;
  for (const m of map.members) size += 2 + m.id.length + (map.withTokens ? 2 + 8 * (m.tokens?.length ?? 0) : 0);
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  buf[0] = ringMapFormat;
  buf[1] = map.withTokens ? flagTokens : 0;
  buf[2] = map.replication;
  buf.set(new TextEncoder().encode(map.fingerprint), 3);
  let at = 3 + fingerprintBytes;
  view.setUint16(at, map.members.length);
  at += 2;
  for (const m of map.members) {
    buf[at++] = m.id.length;
    for (let i = 0; i < m.id.length; i++) buf[at++] = m.id.charCodeAt(i);
    buf[at++] = m.up ? 1 : 0;
    if (!map.withTokens) continue;
    const tokens = m.tokens ?? [];
    view.setUint16(at, tokens.length);
    at += 2;
    for (const t of tokens) {
      view.setBigUint64(at, t);
      at += 8;
    }
  }
  return buf;
}

/** The ring map in `data`, or a reason it is not one. */
export function decodeRingMap(data: Uint8Array): RingMap | { error: string } {
  try {
    return decode(data);
  } catch (err) {
    return { error: err instanceof RangeError ? 'truncated' : String(err) };
  }
}

function decode(data: Uint8Array): RingMap | { error: string } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 3 + fingerprintBytes + 2) return { error: `too short (${data.length} bytes)` };
  if (data[0] !== ringMapFormat) return { error: `unknown format ${data[0]}` };
  const flags = data[1]!;
  if ((flags & ~flagTokens) !== 0) return { error: `unknown flags ${flags}` };
  const withTokens = (flags & flagTokens) !== 0;
  const replication = data[2]!;
  if (replication < 1 || replication > limits.replicationMax) return { error: `replication ${replication} is not 1 to ${limits.replicationMax}` };
  const fingerprint = String.fromCharCode(...data.subarray(3, 3 + fingerprintBytes));
  if (!/^[0-9a-f]{16}$/.test(fingerprint)) return { error: 'the fingerprint is not 16 hex digits' };
  let at = 3 + fingerprintBytes;
  const count = view.getUint16(at);
  at += 2;
  if (count < 1 || count > limits.membersMax) return { error: `${count} members, not 1 to ${limits.membersMax}` };
  const members: RingMapMember[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (let i = 0; i < count; i++) {
    const idLength = view.getUint8(at++);
    if (at + idLength > data.length) return { error: 'truncated' };
    const id = String.fromCharCode(...data.subarray(at, at + idLength));
    at += idLength;
    if (!isValidToken(id)) return { error: `member ${i} has no valid id` };
    if (seen.has(id)) return { error: `member ${id} appears twice` };
    seen.add(id);
    const up = view.getUint8(at++);
    if (up > 1) return { error: `member ${id}: liveness ${up} is not 0 or 1` };
    const member: RingMapMember = { id, up: up === 1 };
    if (withTokens) {
      const n = view.getUint16(at);
      at += 2;
      if (n < 1 || n > limits.virtualNodesMax) return { error: `member ${id} has ${n} tokens, not 1 to ${limits.virtualNodesMax}` };
      total += n;
      if (total > limits.ringMapTokensMax) return { error: `more than ${limits.ringMapTokensMax} tokens` };
      if (at + 8 * n > data.length) return { error: 'truncated' };
      const tokens: bigint[] = [];
      for (let k = 0; k < n; k++, at += 8) tokens.push(view.getBigUint64(at));
      member.tokens = tokens;
    }
    members.push(member);
  }
  if (at !== data.length) return { error: `${data.length - at} bytes past the end` };
  const map: RingMap = { replication, fingerprint, members, withTokens };
  if (withTokens && ringFingerprint(ringOfMap(map)) !== fingerprint) return { error: 'the fingerprint is not the one its tokens give' };
  return map;
}

/** The ring a map with tokens describes (the same sort as the nodes' buildRing, so the same placement). */
export function ringOfMap(map: RingMap): Ring {
  return buildRing(map.members.map((m) => ({ id: m.id, virtualNodes: m.tokens?.length ?? 0, tokens: m.tokens ?? [] })));
}
