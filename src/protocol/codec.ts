/**
 * The wire protocol between nodes, and the record format on disk. The only
 * cbor-x import. Every message carries a protocol version and a kind; decode
 * validates the whole shape and throws ProtocolError with the reason, so a
 * malformed message is refused with a logged reason, never a crash.
 */
import { Encoder } from 'cbor-x';
import { GodDbError, ErrorCode } from '../core/errors.js';
import { setCounter, type VClock } from '../core/vclock.js';
import type { Version } from '../core/version.js';
import { isValidToken } from './subjects.js';

export const protocolVersion = 1;

/** ONLY APPEND TO THIS LIST: the numbers travel on the wire and sit on disk. */
export const Kind = {
  ReplicaGet: 1,
  ReplicaGetReply: 2,
  ReplicaPut: 3,
  ReplicaPutReply: 4,
  Heartbeat: 5,
  StoredRecord: 6,
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

/** The outcome of one item of a batch: a value, or an error code (for example 507 storage). */
export type ItemResult<T> = ({ ok: true } & T) | { ok: false; code: number; error: string };

/** One result per key, in the order asked: the replica's siblings. */
export interface ReplicaGetReply {
  kind: typeof Kind.ReplicaGetReply;
  results: ItemResult<{ versions: Version[] }>[];
}

export interface ReplicaPutItem {
  key: string;
  versions: Version[];
}

export interface ReplicaPut {
  kind: typeof Kind.ReplicaPut;
  items: ReplicaPutItem[];
}

export interface ReplicaPutReply {
  kind: typeof Kind.ReplicaPutReply;
  results: ItemResult<object>[];
}

export interface Heartbeat {
  kind: typeof Kind.Heartbeat;
  id: string;
  virtualNodes: number;
  heartbeat: number;
  /** Set on a node's first message: peers answer with their own heartbeat at once. */
  hello: boolean;
  /** Random per process start: two processes with one id tell each other apart. */
  incarnation: string;
}

export interface StoredRecord {
  kind: typeof Kind.StoredRecord;
  versions: Version[];
}

export type Message = ReplicaGet | ReplicaGetReply | ReplicaPut | ReplicaPutReply | Heartbeat | StoredRecord;

export class ProtocolError extends GodDbError {
  constructor(reason: string) {
    super(ErrorCode.BadRequest, `malformed message: ${reason}`);
    this.name = 'ProtocolError';
  }
}

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export function encode(msg: Message): Uint8Array {
  return encoder.encode({ v: protocolVersion, ...msg });
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

export function decodeClock(x: unknown): VClock {
  if (!isObj(x)) fail('clock is not a map');
  const out: Record<string, number> = {};
  for (const node of Object.keys(x)) {
    const c = x[node];
    if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0) fail(`clock entry ${node} is not a counter`);
    setCounter(out, node, c);
  }
  return out;
}

function decodeVersion(x: unknown): Version {
  if (!isObj(x)) fail('version is not a map');
  const value = x['value'];
  if (!(value instanceof Uint8Array)) fail('value is not bytes');
  return {
    clock: decodeClock(x['clock']),
    timestampMs: int(x, 'timestampMs'),
    writer: str(x, 'writer'),
    tombstone: bool(x, 'tombstone'),
    value,
  };
}

function decodeVersions(x: unknown): Version[] {
  if (!Array.isArray(x)) fail('versions is not an array');
  return x.map(decodeVersion);
}

function array(o: Obj, field: string): unknown[] {
  const v = o[field];
  return Array.isArray(v) ? v : fail(`${field} is not an array`);
}

function decodeItem<T extends object>(x: unknown, ok: (o: Obj) => T): ItemResult<T> {
  if (!isObj(x)) fail('result is not a map');
  if (bool(x, 'ok')) return { ok: true, ...ok(x) };
  return { ok: false, code: int(x, 'code'), error: str(x, 'error') };
}

function decodePutItem(x: unknown): ReplicaPutItem {
  if (!isObj(x)) fail('item is not a map');
  return { key: str(x, 'key'), versions: decodeVersions(x['versions']) };
}

/** Decodes and validates; `expected` narrows to the kinds the caller accepts. */
export function decode<K extends Kind>(bytes: Uint8Array, expected: K): Extract<Message, { kind: K }> {
  let raw: unknown;
  try {
    raw = encoder.decode(bytes);
  } catch (err) {
    fail(`not CBOR (${(err as Error).message})`);
  }
  if (!isObj(raw)) fail('not a map');
  const v = raw['v'];
  if (v !== protocolVersion) fail(`protocol version ${String(v)}, expected ${protocolVersion}`);
  const kind = raw['kind'];
  if (kind !== expected) fail(`kind ${String(kind)}, expected ${expected}`);
  return decodeKind(raw, expected) as Extract<Message, { kind: K }>;
}

function decodeKind(o: Obj, kind: Kind): Message {
  switch (kind) {
    case Kind.ReplicaGet:
      return { kind, keys: array(o, 'keys').map((k) => (typeof k === 'string' ? k : fail('key is not a string'))) };
    case Kind.ReplicaGetReply:
      return { kind, results: array(o, 'results').map((r) => decodeItem(r, (x) => ({ versions: decodeVersions(x['versions']) }))) };
    case Kind.ReplicaPut:
      return { kind, items: array(o, 'items').map(decodePutItem) };
    case Kind.ReplicaPutReply:
      return { kind, results: array(o, 'results').map((r) => decodeItem(r, () => ({}))) };
    case Kind.Heartbeat: {
      const id = str(o, 'id');
      if (!isValidToken(id)) fail(`node id ${JSON.stringify(id)} is not a valid token`);
      return { kind, id, virtualNodes: int(o, 'virtualNodes'), heartbeat: int(o, 'heartbeat'), hello: bool(o, 'hello'), incarnation: str(o, 'incarnation') };
    }
    case Kind.StoredRecord:
      return { kind, versions: decodeVersions(o['versions']) };
  }
}

/** The causal context as clients see it: base64url of the CBOR clock. */
export function encodeContext(clock: VClock): string {
  return Buffer.from(encoder.encode(clock)).toString('base64url');
}

export function decodeContext(text: string): VClock {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length === 0) fail('context is not base64url');
  try {
    return decodeClock(encoder.decode(Buffer.from(text, 'base64url')));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    fail('context is not a clock');
  }
}
