/**
 * The wire protocol between nodes, and the record format on disk. The only
 * cbor-x import. Every message carries a protocol version and a kind; decode
 * validates the whole shape against named limits and throws ProtocolError
 * with the reason, so a malformed message is refused with a logged reason,
 * never a crash.
 *
 * Protocol versions (a node speaks the newest both sides know, and accepts
 * the previous one, so a cluster upgrades one node at a time):
 *   1  versions carry `timestampMs` (wall-clock ms); counters were wall-clock microseconds.
 *   2  versions carry `hlc` (core/hlc.ts); put items may be `fresh` (a coordinator's new
 *      version, checked for staleness); a failed item may carry `floor`; heartbeats carry `hlc`.
 *      A version-2 node writing to a version-1 node adds `timestampMs` (what version 1 reads);
 *      version 1 ignores fields it does not know. A version may carry `expiresHlc` (a put
 *      with a TTL; optional, so older version-2 nodes and records read on without it;
 *      a version-1 node drops it, and the key then lives on there). Under the `siblings`
 *      policy a version may carry `pastCounter` (its writer's entry in its causal past: a
 *      dotted version vector, core/version.ts); optional, so a node that does not know it
 *      reads the version as a plain vector clock (siblings it keeps may then collapse).
 *      Member claims (heartbeats, probe replies) may carry `state`, `stateVersion` and
 *      `synced` (issue 9; optional: a member without them is up, at version 0), and four
 *      kinds move ranges and member records: RangeRequest/RangeReply (a page of an arc, in
 *      key-hash order) and MemberSync/Members (a digest answered with the newer records).
 *
 * The disk record has its own format number, apart from the protocol:
 *   1  (written by protocol-1 nodes) `{ v: 1, kind: 6, versions }` with `timestampMs`;
 *   2  `{ f: 2, versions }` with `hlc`, and `expiresHlc` on versions with a TTL (optional),
 *      `pastCounter` on dotted versions (optional; written only under `siblings`).
 *      Both are read; 2 is written.
 */
import { Encoder } from 'cbor-x';
import { GodDbError, ErrorCode } from '../core/errors.js';
import { fromWallMs, physicalMs } from '../core/hlc.js';
import { limits } from '../core/limits.js';
import { counterOf, setCounter, type VClock } from '../core/vclock.js';
import type { Version } from '../core/version.js';
import { recentCommitsMax, type Acceptance, type Ballot, type PaxosPromise, type PaxosState, type RecentCommit } from '../core/paxos.js';
import { isValidToken } from './subjects.js';
import { memberStates, type MemberState } from '../core/membership.js';
import { branchCount as tictacBranchCount, segmentCount as tictacSegmentCount } from '../core/tictac.js';

export const protocolVersion = 2;
/** The oldest protocol version this node still reads and speaks. */
export const protocolVersionMin = 1;
export const recordFormat = 2;

/** ONLY APPEND TO THIS LIST: the numbers travel on the wire and sit on disk. */
export const Kind = {
  ReplicaGet: 1,
  ReplicaGetReply: 2,
  ReplicaPut: 3,
  ReplicaPutReply: 4,
  Heartbeat: 5,
  /** Disk record format 1 only; format 2 records carry no kind. */
  StoredRecord: 6,
  Probe: 7,
  ProbeReply: 8,
  RangeRequest: 9,
  RangeReply: 10,
  MemberSync: 11,
  Members: 12,
  /** Tombstone and TTL purge (node/gc): delete these keys if they still hold exactly these versions. */
  ReplicaPurge: 13,
  ReplicaPurgeReply: 14,
  /** Anti-entropy (node/aae, issue 10): a tree's branch or segment hashes, and the (key, digest) pairs of segments. */
  AaeTreeRequest: 15,
  AaeTreeReply: 16,
  AaeKeysRequest: 17,
  AaeKeysReply: 18,
  /** Conditional writes (node/paxos, issue 12): single-decree Paxos per key among its replicas. */
  PaxosPrepare: 19,
  PaxosPrepareReply: 20,
  PaxosPropose: 21,
  PaxosProposeReply: 22,
  PaxosCommit: 23,
  PaxosCommitReply: 24,
  /** Key listing (node/keys, issue 12): a page of the keys (with their versions, values left out) of a span after a cursor. */
  KeysRequest: 25,
  KeysReply: 26,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/**
 * Replica messages carry batches: a coordinator sends every read (or write)
 * it has for one replica in one event-loop turn as one message, which cuts
 * the messages per operation at high concurrency (issue 4).
 */
export interface ReplicaGet {
  kind: typeof Kind.ReplicaGet;
  keys: string[];
}

/**
 * The outcome of one item of a batch: a value, or an error code (for example
 * 507 storage); a stale write (409) says the floor the writer's clock must pass.
 */
export type ItemFailure = { ok: false; code: number; error: string; floor?: number };

/** The code of a batch item whose result did not fit in the reply: the coordinator asks for it alone. */
export const askAloneCode = ErrorCode.TooLarge;
export type ItemResult<T> = ({ ok: true } & T) | ItemFailure;

/** One result per key, in the order asked: the replica's siblings. */
export interface ReplicaGetReply {
  kind: typeof Kind.ReplicaGetReply;
  results: ItemResult<{ versions: Version[] }>[];
}

export interface ReplicaPutItem {
  key: string;
  versions: Version[];
  /** A coordinator's new version (one), refused when it would not take effect (core/version.ts staleFloor). */
  fresh?: boolean;
  /**
   * A hinted write (sloppy quorum, issue 10): the receiver is a fallback
   * standing in for this member, which is down; it keeps the versions as a
   * hint for it instead of storing them as its own. Optional: a node without
   * hinted handoff refuses the item (503).
   */
  hintFor?: string;
}

export interface ReplicaPut {
  kind: typeof Kind.ReplicaPut;
  items: ReplicaPutItem[];
}

export interface ReplicaPutReply {
  kind: typeof Kind.ReplicaPutReply;
  results: ItemResult<object>[];
}

export interface Heartbeat extends StateClaim {
  kind: typeof Kind.Heartbeat;
  id: string;
  virtualNodes: number;
  heartbeat: number;
  /** Set on a node's first message: peers answer with their own heartbeat at once. */
  hello: boolean;
  /** Random per process start: two processes with one id tell each other apart. */
  incarnation: string;
  /** The sender's hybrid logical clock when it sent this (0 from a protocol-1 sender). */
  hlc: number;
  /**
   * The newest protocol version the sender speaks. Heartbeats are broadcast
   * in the oldest version any member speaks, so the version a heartbeat came
   * in says only that; this says what to speak to its sender. Absent from
   * protocol-1 nodes.
   */
  speaks?: number;
}

/** "Who are you?", on a node's own subject: gossip admits no member on hearsay. */
export interface Probe {
  kind: typeof Kind.Probe;
  /** The asking node, for the answerer's logs. */
  from: string;
}

/** A member's state as it says it, or as others relay it (core/membership.ts). */
export interface StateClaim {
  state?: MemberState;
  stateVersion?: number;
  /** Fingerprint of the ring it holds every key of (core/moves.ts ringFingerprint); '' when none yet. */
  synced?: string;
  /** Fingerprint of the future ring it writes for now; a puller waits until every member plans the same. */
  plans?: string;
}

/** A position in key-hash order: after it come larger hashes, and the same hash with larger keys. */
export interface WireCursor {
  hash: bigint;
  key: string;
}

/** "Send me a page of what you hold in these hashes" (both inclusive), after `after`. */
export interface RangeRequest {
  kind: typeof Kind.RangeRequest;
  from: string;
  fromHash: bigint;
  toHash: bigint;
  after?: WireCursor;
  /** Most payload bytes the reply may carry (the sender's pacing and the message bound). */
  bytesMax: number;
}

export interface RangeItem {
  key: string;
  versions: Version[];
}

/** A page of a range; `next` is where the following page starts, absent when the range is done. */
export interface RangeReply {
  kind: typeof Kind.RangeReply;
  items: RangeItem[];
  next?: WireCursor;
}

/** What a node knows of each member, so a peer can answer with newer records. */
export interface DigestEntry {
  id: string;
  incarnation: string;
  stateVersion: number;
  heartbeat: number;
}

export interface MemberSync {
  kind: typeof Kind.MemberSync;
  from: string;
  digest: DigestEntry[];
}

/** A member record as gossiped (tokens only when the member announced them). */
export interface MemberRecord {
  id: string;
  incarnation: string;
  virtualNodes: number;
  heartbeat: number;
  state: MemberState;
  stateVersion: number;
  synced: string;
  tokens?: bigint[];
}

export interface Members {
  kind: typeof Kind.Members;
  records: MemberRecord[];
}

/** A node's answer to a probe: who it is, in its own words. */
export interface ProbeReply extends StateClaim {
  kind: typeof Kind.ProbeReply;
  id: string;
  incarnation: string;
  virtualNodes: number;
  heartbeat: number;
  /** The member's ring positions, one per virtual node (16 hex digits each on the wire); absent: derived from its id. */
  tokens?: bigint[];
}

export interface StoredRecord {
  kind: typeof Kind.StoredRecord;
  versions: Version[];
}

/**
 * A purge (node/gc, issue 10 part 3): each key is deleted by its receiver only
 * when it still holds exactly `versions` and they are purgeable by its own clock.
 */
export interface ReplicaPurge {
  kind: typeof Kind.ReplicaPurge;
  items: RangeItem[];
}

/** One result per item, in order: whether the receiver deleted the key. */
export interface ReplicaPurgeReply {
  kind: typeof Kind.ReplicaPurgeReply;
  results: ItemResult<{ removed: boolean }>[];
}

export type Message = ReplicaGet | ReplicaGetReply | ReplicaPut | ReplicaPutReply | Heartbeat | StoredRecord | Probe | ProbeReply | RangeRequest | RangeReply | MemberSync | Members | ReplicaPurge | ReplicaPurgeReply | AaeMessage | PaxosMessage | KeysMessage;

/**
 * Key listing (node/keys/key_listing.ts): "the keys you hold with hashes
 * fromHash to toHash (inclusive, not wrapping), after `after`, that start
 * with `prefix`". The reply carries each key's versions with empty values
 * (liveness is decided on the union across replicas) and `next`, where the
 * replica stopped, absent when it reached toHash.
 */
export interface KeysRequest {
  kind: typeof Kind.KeysRequest;
  from: string;
  fromHash: bigint;
  toHash: bigint;
  after?: WireCursor;
  prefix: string;
  itemsMax: number;
  bytesMax: number;
}

export interface KeysReply {
  kind: typeof Kind.KeysReply;
  items: RangeItem[];
  next?: WireCursor;
}

export type KeysMessage = KeysRequest | KeysReply;

/**
 * Conditional writes (node/paxos, core/paxos.ts): prepare a ballot for a key
 * (answered with the promise, what the replica accepted and committed, and
 * the key's versions), propose a version under it, commit it.
 */
export interface PaxosPrepare {
  kind: typeof Kind.PaxosPrepare;
  key: string;
  ballot: Ballot;
}

export interface PaxosPrepareReply extends PaxosPromise {
  kind: typeof Kind.PaxosPrepareReply;
}

export interface PaxosPropose {
  kind: typeof Kind.PaxosPropose;
  key: string;
  ballot: Ballot;
  version: Version;
}

export interface PaxosProposeReply extends Acceptance {
  kind: typeof Kind.PaxosProposeReply;
}

export interface PaxosCommit {
  kind: typeof Kind.PaxosCommit;
  key: string;
  ballot: Ballot;
  version: Version;
}

export interface PaxosCommitReply {
  kind: typeof Kind.PaxosCommitReply;
}

export type PaxosMessage = PaxosPrepare | PaxosPrepareReply | PaxosPropose | PaxosProposeReply | PaxosCommit | PaxosCommitReply;

/**
 * Anti-entropy (node/aae, issue 10): "your tree of this arc (start, end]":
 * its branch hashes, or with `branches` the segment hashes of those branches
 * (core/tictac.ts). The arc names a tree only when both sides serve the same ring.
 */
export interface AaeTreeRequest {
  kind: typeof Kind.AaeTreeRequest;
  from: string;
  arcStart: bigint;
  arcEnd: bigint;
  branches?: number[];
  /** The asker's digest format (core/tictac.ts DigestVersion); absent: 1, from nodes that knew only that one. */
  digest?: number;
}

/**
 * `ready` false: no tree of that arc here yet (building, or another ring), or
 * one of another digest format: nothing to compare.
 */
export interface AaeTreeReply {
  kind: typeof Kind.AaeTreeReply;
  ready: boolean;
  hashes: bigint[];
  /** The answerer's digest format; absent: 1. */
  digest?: number;
}

/** "The (key, digest) pairs you hold in these segments of this arc", a page in key-hash order after `after`. */
export interface AaeKeysRequest {
  kind: typeof Kind.AaeKeysRequest;
  from: string;
  arcStart: bigint;
  arcEnd: bigint;
  segments: number[];
  after?: WireCursor;
  bytesMax: number;
  /** The digest format the pairs are wanted in; absent: 1. */
  digest?: number;
}

export interface AaeKeyDigest {
  key: string;
  digest: bigint;
}

/** A page; `next` is where the following one starts, absent when the arc is done. */
export interface AaeKeysReply {
  kind: typeof Kind.AaeKeysReply;
  items: AaeKeyDigest[];
  next?: WireCursor;
}

export type AaeMessage = AaeTreeRequest | AaeTreeReply | AaeKeysRequest | AaeKeysReply;

export class ProtocolError extends GodDbError {
  constructor(reason: string) {
    super(ErrorCode.BadRequest, `malformed message: ${reason}`);
    this.name = 'ProtocolError';
  }
}

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

/** Encodes `msg` in protocol version `v` (the newest by default; 1 for a peer that speaks only 1). */
export function encode(msg: Message, v: number = protocolVersion): Uint8Array {
  const wire = toWire(msg);
  return encoder.encode(v === 1 ? { v, ...asVersion1(wire as Message) } : { v, ...wire });
}

/** Bigints travel as 16 hex digits: CBOR has no portable 64-bit unsigned integer in JavaScript. */
function toWire(msg: Message): object {
  switch (msg.kind) {
    case Kind.ProbeReply:
      return msg.tokens === undefined ? msg : { ...msg, tokens: tokensToWire(msg.tokens) };
    case Kind.RangeRequest: {
      const { after, ...rest } = msg;
      return { ...rest, fromHash: hex16(msg.fromHash), toHash: hex16(msg.toHash), ...(after ? { after: { hash: hex16(after.hash), key: after.key } } : {}) };
    }
    case Kind.RangeReply: {
      const { next, ...rest } = msg;
      return next ? { ...rest, next: { hash: hex16(next.hash), key: next.key } } : rest;
    }
    case Kind.AaeTreeRequest:
    case Kind.AaeTreeReply:
    case Kind.AaeKeysRequest:
    case Kind.AaeKeysReply:
      return aaeToWire(msg);
    case Kind.KeysRequest: {
      const { after, ...rest } = msg;
      return { ...rest, fromHash: hex16(msg.fromHash), toHash: hex16(msg.toHash), ...(after ? { after: { hash: hex16(after.hash), key: after.key } } : {}) };
    }
    case Kind.KeysReply: {
      const { next, ...rest } = msg;
      return next ? { ...rest, next: { hash: hex16(next.hash), key: next.key } } : rest;
    }
    case Kind.Members:
      return { ...msg, records: msg.records.map((r) => (r.tokens === undefined ? r : { ...r, tokens: tokensToWire(r.tokens) })) };
    default:
      return msg;
  }
}

function hex16(x: bigint): string {
  return x.toString(16).padStart(16, '0');
}

/** Version 1 reads `timestampMs` in versions and ignores the fields it does not know. */
function asVersion1(msg: Message): Message {
  const withMs = (vs: Version[]) => vs.map((x) => ({ ...x, timestampMs: physicalMs(x.hlc) }));
  switch (msg.kind) {
    case Kind.ReplicaPut:
      return { ...msg, items: msg.items.map((i) => ({ ...i, versions: withMs(i.versions) })) };
    case Kind.ReplicaGetReply:
      return { ...msg, results: msg.results.map((r) => (r.ok ? { ...r, versions: withMs(r.versions) } : r)) };
    default:
      return msg;
  }
}

/** A key's stored siblings as a disk record (format 2). */
export function encodeRecord(versions: Version[]): Uint8Array {
  return encoder.encode({ f: recordFormat, versions });
}

/** Reads a disk record of format 2, or of format 1 as written by protocol-1 nodes. */
export function decodeRecord(bytes: Uint8Array): Version[] {
  const raw = decodeCbor(bytes);
  if (raw['f'] === recordFormat) return decodeVersions(raw['versions'], 2);
  if (raw['f'] === undefined && raw['v'] === 1 && raw['kind'] === Kind.StoredRecord) return decodeVersions(raw['versions'], 1);
  fail(`record format ${String(raw['f'] ?? `v${String(raw['v'])}`)}, expected ${recordFormat} or 1`);
}

type Obj = Record<string, unknown>;

function fail(reason: string): never {
  throw new ProtocolError(reason);
}

function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function str(o: Obj, field: string): string {
  const v = o[field];
  return typeof v === 'string' ? v : fail(`${field} is not a string`);
}

function int(o: Obj, field: string): number {
  const v = o[field];
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(`${field} is not a non-negative integer`);
}

function bool(o: Obj, field: string): boolean {
  const v = o[field];
  return typeof v === 'boolean' ? v : fail(`${field} is not a boolean`);
}

/** A node id as it appears in clocks and versions: a subject token. */
function nodeId(s: string, what: string): string {
  return isValidToken(s) ? s : fail(`${what} ${JSON.stringify(s.slice(0, 80))} is not a node id (1 to 64 of A-Z a-z 0-9 _ -)`);
}

export function decodeClock(x: unknown): VClock {
  if (!isObj(x)) fail('clock is not a map');
  const nodes = Object.keys(x);
  if (nodes.length > limits.clockEntriesDecodeMax) fail(`clock has ${nodes.length} entries, more than clockEntriesDecodeMax=${limits.clockEntriesDecodeMax}`);
  const out: Record<string, number> = {};
  for (const node of nodes) {
    nodeId(node, 'clock entry');
    const c = x[node];
    if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 1) fail(`clock entry ${node} is not a counter (a positive safe integer)`);
    setCounter(out, node, c);
  }
  return out;
}

function decodeVersion(x: unknown, v: number): Version {
  if (!isObj(x)) fail('version is not a map');
  const value = x['value'];
  if (!(value instanceof Uint8Array)) fail('value is not bytes');
  const tombstone = bool(x, 'tombstone');
  if (tombstone && value.length > 0) fail('a tombstone with a value');
  const version: Version = {
    clock: decodeClock(x['clock']),
    hlc: v === 1 ? fromWallMs(int(x, 'timestampMs')) : int(x, 'hlc'),
    writer: nodeId(str(x, 'writer'), 'writer'),
    tombstone,
    value,
  };
  if (x['expiresHlc'] !== undefined) {
    const expires = int(x, 'expiresHlc');
    if (tombstone) fail('a tombstone with an expiry');
    if (expires <= version.hlc) fail(`expiresHlc ${expires} is not above the version's hlc ${version.hlc}`);
    version.expiresHlc = expires;
  }
  if (x['pastCounter'] !== undefined) {
    const past = int(x, 'pastCounter');
    const dot = counterOf(version.clock, version.writer);
    if (past >= dot) fail(`pastCounter ${past} is not below the writer's clock entry ${dot} (the version's dot)`);
    version.pastCounter = past;
  }
  return version;
}

function decodeVersions(x: unknown, v: number): Version[] {
  if (!Array.isArray(x)) fail('versions is not an array');
  if (x.length > limits.siblingsMax) fail(`${x.length} versions, more than siblingsMax=${limits.siblingsMax}`);
  return x.map((e) => decodeVersion(e, v));
}

function array(o: Obj, field: string, max: number): unknown[] {
  const v = o[field];
  if (!Array.isArray(v)) fail(`${field} is not an array`);
  if (v.length > max) fail(`${field} has ${v.length} entries, more than ${max}`);
  return v;
}

function key(x: unknown): string {
  if (typeof x !== 'string' || x.length === 0) fail('key is not a non-empty string');
  if (Buffer.byteLength(x, 'utf8') > limits.keyBytesMax) fail(`key is over keyBytesMax=${limits.keyBytesMax}`);
  return x;
}

function decodeItem<T extends object>(x: unknown, ok: (o: Obj) => T): ItemResult<T> {
  if (!isObj(x)) fail('result is not a map');
  if (bool(x, 'ok')) return { ok: true, ...ok(x) };
  const failure: ItemFailure = { ok: false, code: int(x, 'code'), error: str(x, 'error') };
  if (x['floor'] !== undefined) failure.floor = int(x, 'floor');
  return failure;
}

function decodePutItem(x: unknown, v: number): ReplicaPutItem {
  if (!isObj(x)) fail('item is not a map');
  const item: ReplicaPutItem = { key: key(x['key']), versions: decodeVersions(x['versions'], v) };
  if (x['fresh'] === true) {
    if (item.versions.length !== 1) fail('a fresh item carries exactly one version');
    item.fresh = true;
  }
  if (x['hintFor'] !== undefined) item.hintFor = nodeId(str(x, 'hintFor'), 'hintFor');
  return item;
}

function decodeCbor(bytes: Uint8Array): Obj {
  let raw: unknown;
  try {
    raw = encoder.decode(bytes);
  } catch (err) {
    fail(`not CBOR (${(err as Error).message})`);
  }
  if (!isObj(raw)) fail('not a map');
  return raw;
}

/** The kind a message says it is, unvalidated otherwise (to choose what to decode it as). */
export function decodeKindOnly(bytes: Uint8Array): unknown {
  return decodeCbor(bytes)['kind'];
}

/** Decodes and validates; `expected` narrows to the kinds the caller accepts. */
export function decode<K extends Kind>(bytes: Uint8Array, expected: K): Extract<Message, { kind: K }> {
  return decodeVersioned(bytes, expected).msg;
}

/** Like decode, and says which protocol version the sender spoke (a reply goes back in the same one). */
export function decodeVersioned<K extends Kind>(bytes: Uint8Array, expected: K, accepted = protocolVersion): { v: number; msg: Extract<Message, { kind: K }> } {
  const raw = decodeCbor(bytes);
  const v = raw['v'];
  if (typeof v !== 'number' || v < protocolVersionMin || v > accepted) {
    fail(`protocol version ${String(v)}, expected ${protocolVersionMin} to ${accepted}`);
  }
  const kind = raw['kind'];
  if (kind !== expected) fail(`kind ${String(kind)}, expected ${expected}`);
  return { v, msg: decodeKind(raw, expected, v) as Extract<Message, { kind: K }> };
}

function decodeKind(o: Obj, kind: Kind, v: number): Message {
  switch (kind) {
    case Kind.ReplicaGet:
      return { kind, keys: array(o, 'keys', limits.replicaBatchItemsMax).map(key) };
    case Kind.ReplicaGetReply:
      return { kind, results: array(o, 'results', limits.replicaBatchItemsMax).map((r) => decodeItem(r, (x) => ({ versions: decodeVersions(x['versions'], v) }))) };
    case Kind.ReplicaPut:
      return { kind, items: array(o, 'items', limits.replicaBatchItemsMax).map((x) => decodePutItem(x, v)) };
    case Kind.ReplicaPutReply:
      return { kind, results: array(o, 'results', limits.replicaBatchItemsMax).map((r) => decodeItem(r, () => ({}))) };
    case Kind.Heartbeat: {
      // A protocol-2 node writing version 1 still sends hlc and speaks; a protocol-1 node sends neither.
      const hb: Heartbeat = { kind, ...memberClaim(o), ...stateClaim(o), hello: bool(o, 'hello'), hlc: v === 1 && o['hlc'] === undefined ? 0 : int(o, 'hlc') };
      if (o['speaks'] !== undefined) {
        const speaks = int(o, 'speaks');
        if (speaks < v) fail(`speaks ${speaks}, below the version ${v} it was sent in`);
        hb.speaks = speaks;
      } else if (v > 1) fail('speaks is missing');
      return hb;
    }
    case Kind.Probe:
      return { kind, from: nodeId(str(o, 'from'), 'from') };
    case Kind.ProbeReply: {
      const reply: ProbeReply = { kind, ...memberClaim(o), ...stateClaim(o) };
      if (o['tokens'] !== undefined) reply.tokens = decodeTokens(o['tokens'], reply.virtualNodes);
      return reply;
    }
    case Kind.StoredRecord:
      return { kind, versions: decodeVersions(o['versions'], v) };
    case Kind.RangeRequest: {
      const req: RangeRequest = { kind, from: nodeId(str(o, 'from'), 'from'), fromHash: hash(o['fromHash'], 'fromHash'), toHash: hash(o['toHash'], 'toHash'), bytesMax: int(o, 'bytesMax') };
      if (req.fromHash > req.toHash) fail('fromHash is above toHash');
      if (o['after'] !== undefined) req.after = cursor(o['after']);
      return req;
    }
    case Kind.RangeReply: {
      const reply: RangeReply = {
        kind,
        items: array(o, 'items', limits.rangeItemsMax).map((x) => {
          if (!isObj(x)) fail('item is not a map');
          return { key: key(x['key']), versions: decodeVersions(x['versions'], v) };
        }),
      };
      if (o['next'] !== undefined) reply.next = cursor(o['next']);
      return reply;
    }
    case Kind.MemberSync:
      return {
        kind,
        from: nodeId(str(o, 'from'), 'from'),
        digest: array(o, 'digest', limits.membersMax).map((x) => {
          if (!isObj(x)) fail('digest entry is not a map');
          return { id: nodeId(str(x, 'id'), 'node id'), incarnation: incarnationOf(x), stateVersion: int(x, 'stateVersion'), heartbeat: int(x, 'heartbeat') };
        }),
      };
    case Kind.Members:
      return {
        kind,
        records: array(o, 'records', limits.membersMax).map((x) => {
          if (!isObj(x)) fail('record is not a map');
          const claim = memberClaim(x);
          const st = stateClaim(x);
          const record: MemberRecord = { ...claim, state: st.state ?? fail('state is missing'), stateVersion: st.stateVersion ?? 0, synced: st.synced ?? '' };
          if (x['tokens'] !== undefined) record.tokens = decodeTokens(x['tokens'], claim.virtualNodes);
          return record;
        }),
      };
    case Kind.ReplicaPurge:
      return {
        kind,
        items: array(o, 'items', limits.replicaBatchItemsMax).map((x) => {
          if (!isObj(x)) fail('item is not a map');
          return { key: key(x['key']), versions: decodeVersions(x['versions'], v) };
        }),
      };
    case Kind.ReplicaPurgeReply:
      return { kind, results: array(o, 'results', limits.replicaBatchItemsMax).map((r) => decodeItem(r, (x) => ({ removed: bool(x, 'removed') }))) };
    case Kind.AaeTreeRequest:
    case Kind.AaeTreeReply:
    case Kind.AaeKeysRequest:
    case Kind.AaeKeysReply:
      return decodeAae(o, kind);
    case Kind.PaxosPrepare:
      return { kind, key: key(o['key']), ballot: ballot(o['ballot']) };
    case Kind.PaxosPrepareReply: {
      const reply: PaxosPrepareReply = { kind, promised: bool(o, 'promised'), versions: decodeVersions(o['versions'], v) };
      if (o['refusedFor'] !== undefined) reply.refusedFor = ballot(o['refusedFor']);
      if (o['accepted'] !== undefined) reply.accepted = acceptedProposal(o['accepted']);
      if (o['committed'] !== undefined) reply.committed = ballot(o['committed']);
      if (o['recent'] !== undefined) reply.recent = recentCommits(o, 'recent');
      return reply;
    }
    case Kind.PaxosPropose:
    case Kind.PaxosCommit:
      return { kind, key: key(o['key']), ballot: ballot(o['ballot']), version: decodeVersion(o['version'], 2) };
    case Kind.PaxosProposeReply: {
      const reply: PaxosProposeReply = { kind, accepted: bool(o, 'accepted') };
      if (o['refusedFor'] !== undefined) reply.refusedFor = ballot(o['refusedFor']);
      return reply;
    }
    case Kind.PaxosCommitReply:
      return { kind };
    case Kind.KeysRequest:
    case Kind.KeysReply:
      return decodeKeys(o, kind, v);
  }
}

function decodeKeys(o: Obj, kind: KeysMessage['kind'], v: number): KeysMessage {
  if (kind === Kind.KeysRequest) {
    const prefix = str(o, 'prefix');
    if (Buffer.byteLength(prefix, 'utf8') > limits.keyBytesMax) fail(`prefix is over keyBytesMax=${limits.keyBytesMax}`);
    const itemsMax = int(o, 'itemsMax');
    if (itemsMax < 1 || itemsMax > limits.keysPageItemsMax) fail(`itemsMax ${itemsMax} is not from 1 to keysPageItemsMax=${limits.keysPageItemsMax}`);
    const req: KeysRequest = { kind, from: nodeId(str(o, 'from'), 'from'), fromHash: hash(o['fromHash'], 'fromHash'), toHash: hash(o['toHash'], 'toHash'), prefix, itemsMax, bytesMax: int(o, 'bytesMax') };
    if (req.fromHash > req.toHash) fail('fromHash is above toHash');
    if (o['after'] !== undefined) req.after = cursor(o['after']);
    return req;
  }
  const reply: KeysReply = {
    kind,
    items: array(o, 'items', limits.keysPageItemsMax).map((x) => {
      if (!isObj(x)) fail('item is not a map');
      return { key: key(x['key']), versions: decodeVersions(x['versions'], v) };
    }),
  };
  if (o['next'] !== undefined) reply.next = cursor(o['next']);
  return reply;
}

function ballot(x: unknown): Ballot {
  if (!isObj(x)) fail('ballot is not a map');
  return { hlc: int(x, 'hlc'), node: nodeId(str(x, 'node'), 'ballot node') };
}

function recentCommits(o: Obj, field: string): RecentCommit[] {
  return array(o, field, recentCommitsMax).map((x) => {
    if (!isObj(x)) fail(`${field} entry is not a map`);
    return { writer: nodeId(str(x, 'writer'), 'writer'), hlc: int(x, 'hlc'), ballot: ballot(x['ballot']) };
  });
}

function acceptedProposal(x: unknown): { ballot: Ballot; version: Version } {
  if (!isObj(x)) fail('accepted is not a map');
  return { ballot: ballot(x['ballot']), version: decodeVersion(x['version'], 2) };
}

/** Format of a key's Paxos state on disk (node/paxos), apart from the data records'. */
const paxosStateFormat = 1;

export function encodePaxosState(state: PaxosState): Uint8Array {
  return encoder.encode({ f: paxosStateFormat, ...state });
}

export function decodePaxosState(bytes: Uint8Array): PaxosState {
  const raw = decodeCbor(bytes);
  if (raw['f'] !== paxosStateFormat) fail(`paxos state format ${String(raw['f'])}, expected ${paxosStateFormat}`);
  const state: PaxosState = {};
  if (raw['promised'] !== undefined) state.promised = ballot(raw['promised']);
  if (raw['accepted'] !== undefined) state.accepted = acceptedProposal(raw['accepted']);
  if (raw['committed'] !== undefined) state.committed = ballot(raw['committed']);
  if (raw['recent'] !== undefined) state.recent = recentCommits(raw, 'recent');
  return state;
}

// Anti-entropy messages (node/aae), kept together.

function aaeToWire(msg: AaeMessage): object {
  switch (msg.kind) {
    case Kind.AaeTreeRequest:
    case Kind.AaeKeysRequest: {
      const { after, ...rest } = msg as AaeKeysRequest;
      return { ...rest, arcStart: hex16(msg.arcStart), arcEnd: hex16(msg.arcEnd), ...(after ? { after: { hash: hex16(after.hash), key: after.key } } : {}) };
    }
    case Kind.AaeTreeReply:
      return { ...msg, hashes: msg.hashes.map(hex16) };
    case Kind.AaeKeysReply: {
      const { next, ...rest } = msg;
      return { ...rest, items: msg.items.map((i) => ({ key: i.key, digest: hex16(i.digest) })), ...(next ? { next: { hash: hex16(next.hash), key: next.key } } : {}) };
    }
  }
}

/** A list of distinct indices below `count` (branches or segments of core/tictac.ts). */
function indices(o: Obj, field: string, count: number): number[] {
  const out = array(o, field, count).map((x) => (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < count ? x : fail(`${field} holds ${String(x).slice(0, 20)}, not an index below ${count}`)));
  if (new Set(out).size !== out.length) fail(`${field} repeats`);
  return out;
}

function decodeAae(o: Obj, kind: AaeMessage['kind']): AaeMessage {
  switch (kind) {
    case Kind.AaeTreeRequest: {
      const req: AaeTreeRequest = { kind, from: nodeId(str(o, 'from'), 'from'), arcStart: hash(o['arcStart'], 'arcStart'), arcEnd: hash(o['arcEnd'], 'arcEnd') };
      if (o['branches'] !== undefined) req.branches = indices(o, 'branches', tictacBranchCount);
      if (o['digest'] !== undefined) req.digest = digestFormat(o);
      return req;
    }
    case Kind.AaeTreeReply: {
      const reply: AaeTreeReply = { kind, ready: bool(o, 'ready'), hashes: array(o, 'hashes', tictacSegmentCount).map((x) => hash(x, 'hash')) };
      if (o['digest'] !== undefined) reply.digest = digestFormat(o);
      return reply;
    }
    case Kind.AaeKeysRequest: {
      const req: AaeKeysRequest = {
        kind,
        from: nodeId(str(o, 'from'), 'from'),
        arcStart: hash(o['arcStart'], 'arcStart'),
        arcEnd: hash(o['arcEnd'], 'arcEnd'),
        segments: indices(o, 'segments', tictacSegmentCount),
        bytesMax: int(o, 'bytesMax'),
      };
      if (o['after'] !== undefined) req.after = cursor(o['after']);
      if (o['digest'] !== undefined) req.digest = digestFormat(o);
      return req;
    }
    case Kind.AaeKeysReply: {
      const reply: AaeKeysReply = {
        kind,
        items: array(o, 'items', limits.aaeKeysPageItemsMax).map((x) => {
          if (!isObj(x)) fail('item is not a map');
          return { key: key(x['key']), digest: hash(x['digest'], 'digest') };
        }),
      };
      if (o['next'] !== undefined) reply.next = cursor(o['next']);
      return reply;
    }
  }
}

/** A digest format number (core/tictac.ts DigestVersion): a small positive integer, one this node may not know. */
function digestFormat(o: Obj): number {
  const n = int(o, 'digest');
  return n >= 1 && n <= digestFormatMax ? n : fail(`digest format ${n} is not from 1 to ${digestFormatMax}`);
}

/** The largest digest format number a message may carry (formats this node does not know are compared as different). */
const digestFormatMax = 255;

function hash(x: unknown, what: string): bigint {
  return typeof x === 'string' && /^[0-9a-f]{16}$/.test(x) ? BigInt(`0x${x}`) : fail(`${what} is not 16 hex digits`);
}

function cursor(x: unknown): WireCursor {
  if (!isObj(x)) fail('cursor is not a map');
  return { hash: hash(x['hash'], 'cursor hash'), key: key(x['key']) };
}

/** The state fields of a member claim, each optional (absent from older members). */
function stateClaim(o: Obj): StateClaim {
  const out: StateClaim = {};
  if (o['state'] !== undefined) {
    const s = o['state'];
    if (typeof s !== 'string' || !(memberStates as readonly string[]).includes(s)) fail(`state ${String(s).slice(0, 40)} is not one of ${memberStates.join(', ')}`);
    out.state = s as MemberState;
  }
  if (o['stateVersion'] !== undefined) out.stateVersion = int(o, 'stateVersion');
  if (o['synced'] !== undefined) {
    const synced = str(o, 'synced');
    if (!/^[0-9a-f]{0,16}$/.test(synced)) fail('synced is not a ring fingerprint');
    out.synced = synced;
  }
  if (o['plans'] !== undefined) {
    const plans = str(o, 'plans');
    if (!/^[0-9a-f]{0,16}$/.test(plans)) fail('plans is not a ring fingerprint');
    out.plans = plans;
  }
  return out;
}

function incarnationOf(o: Obj): string {
  const incarnation = str(o, 'incarnation');
  if (incarnation.length === 0 || incarnation.length > limits.incarnationCharsMax) {
    fail(`incarnation of ${incarnation.length} characters, expected 1 to incarnationCharsMax=${limits.incarnationCharsMax}`);
  }
  return incarnation;
}

/**
 * What a node says about itself in a heartbeat or a probe reply, within
 * bounds: one flipped bit or a forged message must not announce a million
 * virtual nodes (a ring that size stalls every node).
 */
function memberClaim(o: Obj): { id: string; virtualNodes: number; heartbeat: number; incarnation: string } {
  const id = nodeId(str(o, 'id'), 'node id');
  const vnodes = o['virtualNodes'];
  if (typeof vnodes !== 'number' || !Number.isInteger(vnodes) || vnodes < 1 || vnodes > limits.virtualNodesMax) {
    fail(`virtualNodes ${String(vnodes).slice(0, 40)} is not an integer from 1 to virtualNodesMax=${limits.virtualNodesMax}`);
  }
  return { id, virtualNodes: vnodes, heartbeat: int(o, 'heartbeat'), incarnation: incarnationOf(o) };
}

/** Tokens travel as 16 hex digits each: CBOR has no portable 64-bit unsigned integer in JavaScript. */
export function tokensToWire(tokens: readonly bigint[]): string[] {
  return tokens.map((t) => t.toString(16).padStart(16, '0'));
}

function decodeTokens(x: unknown, virtualNodes: number): bigint[] {
  if (!Array.isArray(x) || x.length !== virtualNodes) fail(`tokens is not an array of virtualNodes=${virtualNodes} entries`);
  const out = x.map((t) => (typeof t === 'string' && /^[0-9a-f]{16}$/.test(t) ? BigInt(`0x${t}`) : fail('a token is not 16 hex digits')));
  if (new Set(out).size !== out.length) fail('tokens repeat');
  return out;
}

/** The causal context as clients see it: base64url of the CBOR clock. */
export function encodeContext(clock: VClock): string {
  return Buffer.from(encoder.encode(clock)).toString('base64url');
}

export function decodeContext(text: string): VClock {
  if (text.length > limits.contextCharsMax) fail(`context of ${text.length} characters is over contextCharsMax=${limits.contextCharsMax}`);
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length === 0) fail('context is not base64url');
  try {
    return decodeClock(encoder.decode(Buffer.from(text, 'base64url')));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    fail('context is not a clock');
  }
}
