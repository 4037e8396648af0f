/**
 * Seeded inputs for the fuzz test (test/integration/fuzz.test.ts): client
 * requests, well formed or broken in one named way, and messages on the
 * node subjects. Pure: everything comes from the `Gen` it is given, so one
 * seed gives one sequence of inputs.
 *
 * Every client case says what the node must answer: `malformed` cases are
 * broken on purpose (4xx expected), `any` cases may succeed or fail, but
 * never with 500 or silence. Keys are always in the `fz.` namespace (or
 * broken beyond use), so no well-formed fuzzed write touches other data.
 */
import { Encoder } from 'cbor-x';
import { encode, encodeContext, Kind } from '../../src/protocol/codec.js';

export class Gen {
  constructor(private readonly random: () => number) {}

  /** An integer from min to max, both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** Printable ASCII, no spaces. */
  token(min: number, max: number): string {
    const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
    let s = '';
    for (let i = this.int(min, max); i > 0; i--) s += chars[this.int(0, chars.length - 1)];
    return s;
  }
}

export const Expect = { Malformed: 'malformed', Any: 'any' } as const;
export type Expect = (typeof Expect)[keyof typeof Expect];

export interface ClientCase {
  what: string;
  subject: Buffer;
  headerBlock: Buffer | undefined;
  payload: Buffer;
  expect: Expect;
  /** How many times the same request is sent (same reply subject): a duplicated request. */
  copies: number;
}

export interface ClientContext {
  valueBytesMax: number;
  maxPayloadBytes: number;
  /** KV-Context values returned by reads of fuzz keys. */
  contexts: string[];
}

const ops = ['get', 'put', 'del'] as const;
type Op = (typeof ops)[number];

/** A request before rendering: the subject tail, header lines and payload. */
interface Draft {
  op: Op;
  /** Bytes after `kv.<op>.`; undefined for the bare subject. */
  subjectKey: Buffer | undefined;
  status: string;
  lines: Buffer[];
  payload: Buffer;
}

const crlf = Buffer.from('\r\n');
const line = (name: string, value: string | Buffer) => Buffer.concat([Buffer.from(`${name}: `), Buffer.from(value)]);
const unicode = ['é', 'ü', '日本', '😀', 'Ω', 'ß', '\u00a0x'];

function fuzzKeyText(g: Gen): string {
  const parts = ['fz'];
  for (let i = g.int(1, 3); i > 0; i--) parts.push(g.chance(0.2) ? `${g.token(1, 4)}${g.pick(unicode)}` : g.token(1, 12));
  return parts.join('.');
}

/** A well-formed request on a fuzz key, with some valid headers. */
function draft(g: Gen, ctx: ClientContext): Draft {
  const op = g.pick(ops);
  const key = fuzzKeyText(g);
  const byHeader = g.chance(0.3);
  const lines: Buffer[] = [];
  if (byHeader) lines.push(line('KV-Key', g.chance(0.3) ? `${key} with spaces *` : key));
  if (g.chance(0.3)) lines.push(line(op === 'get' ? 'KV-R' : 'KV-W', String(g.int(1, 3))));
  if (op !== 'get' && g.chance(0.2) && ctx.contexts.length > 0) lines.push(line('KV-Context', g.pick(ctx.contexts)));
  if (g.chance(0.2)) lines.push(line(`X-Fuzz-${g.token(1, 6)}`, g.token(0, 20)));
  const payload = op === 'put' ? g.bytes(g.chance(0.05) ? g.int(10_000, 100_000) : g.int(0, 300)) : Buffer.alloc(0);
  return { op, subjectKey: byHeader ? undefined : Buffer.from(key), status: 'NATS/1.0', lines, payload };
}

function render(d: Draft, withBlock = d.lines.length > 0 || d.status !== 'NATS/1.0'): { subject: Buffer; headerBlock: Buffer | undefined } {
  const subject = Buffer.concat([Buffer.from(`kv.${d.op}`), d.subjectKey ? Buffer.concat([Buffer.from('.'), d.subjectKey]) : Buffer.alloc(0)]);
  if (!withBlock) return { subject, headerBlock: undefined };
  const headerBlock = Buffer.concat([Buffer.from(d.status), crlf, ...d.lines.flatMap((l) => [l, crlf]), crlf]);
  return { subject, headerBlock };
}

type Mutation = (g: Gen, d: Draft, ctx: ClientContext) => Omit<ClientCase, 'copies'>;

function finish(d: Draft, what: string, expect: Expect): Omit<ClientCase, 'copies'> {
  return { what, ...render(d), payload: d.payload, expect };
}

/** A block with at least one header line, so that a line can be broken. */
function withALine(g: Gen, d: Draft): Draft {
  return d.lines.length > 0 ? d : { ...d, lines: [line(`X-Fuzz-${g.token(1, 4)}`, g.token(1, 8))] };
}

/** Inserts `bytes` somewhere among the header lines (after the status line, before the closing empty line). */
function insertIntoLines(g: Gen, d: Draft, bytes: Buffer, what: string): Omit<ClientCase, 'copies'> {
  const block = render(withALine(g, d), true).headerBlock!;
  const at = g.int(d.status.length + 2, block.length - 4);
  const broken = Buffer.concat([block.subarray(0, at), bytes, block.subarray(at)]);
  return { what, subject: render(d).subject, headerBlock: broken, payload: d.payload, expect: Expect.Malformed };
}

const invalidUtf8 = [[0xff], [0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x80], [0xf5, 0x80, 0x80, 0x80], [0xc3]];

/** Sequences that are never valid UTF-8 wherever they are inserted into ASCII or whole characters. */
function badUtf8(g: Gen): Buffer {
  return Buffer.from(g.pick(invalidUtf8));
}

const malformed: [string, Mutation][] = [
  ['lone LF', (g, d) => insertIntoLines(g, d, Buffer.from('\n'), 'a lone LF in the header lines')],
  ['lone CR', (g, d) => insertIntoLines(g, d, Buffer.from('\r'), 'a lone CR in the header lines')],
  ['invalid UTF-8 in block', (g, d) => insertIntoLines(g, d, badUtf8(g), 'invalid UTF-8 in the header lines')],
  ['empty line', (g, d) => {
    const block = render(withALine(g, d), true).headerBlock!;
    const at = d.status.length + 2;
    return { what: 'an empty line before the last header', subject: render(d).subject, headerBlock: Buffer.concat([block.subarray(0, at), crlf, block.subarray(at)]), payload: d.payload, expect: Expect.Malformed };
  }],
  ['duplicate KV header', (g, d) => {
    const name = g.pick(['KV-R', 'KV-W', 'KV-Key', 'KV-Context', 'kv-r', 'kv-key']);
    const value = /r|w/i.test(name.slice(3)) ? String(g.int(1, 3)) : name.toLowerCase() === 'kv-context' ? encodeContext({}) : fuzzKeyText(g);
    const twice = [line(name, value), line(g.chance(0.5) ? name.toUpperCase() : name, value)];
    return finish({ ...d, lines: [...d.lines.filter((l) => !l.toString().toLowerCase().startsWith(`${name.toLowerCase()}:`)), ...twice] }, `${name} twice`, Expect.Malformed);
  }],
  ['bad name spacing', (g, d) => {
    const name = g.pick([' KV-R', 'KV-R ', 'KV R', 'KV\tR', '\tX-A', 'X-A ']);
    return finish({ ...d, lines: [...d.lines, line(name, '2')] }, `header name ${JSON.stringify(name)}`, Expect.Malformed);
  }],
  ['missing colon', (g, d) => finish({ ...d, lines: [...d.lines, Buffer.from(g.pick(['KV-R 2', 'X-Fuzz', 'KV-Key fz.a', '']))] }, 'a header line without a colon', Expect.Malformed)],
  ['status line', (g, d) => {
    const status = g.pick(['NATS/1.0 503 garbage', 'NATS/1.0 200', 'NATS/1.0 \u0001', 'NATS/2.0', 'HTTP/1.1 200 OK', 'nats/1.0', 'NATS/1.0 abc', '', `NATS/1.0 ${g.int(100, 999)} ${g.token(1, 30)}`, g.token(1, 40)]);
    return finish({ ...d, status }, `status line ${JSON.stringify(status)}`, Expect.Malformed);
  }],
  ['truncated block', (g, d) => {
    const block = render(d, true).headerBlock!;
    const cut = g.int(0, block.length - 1);
    // Either the block simply ends early, or HPUB's header length cuts it and the rest is read as payload.
    // Cut at 0, the server delivers no header block at all: an ordinary request.
    const rest = g.chance(0.5) ? block.subarray(cut) : Buffer.alloc(0);
    return { what: `header block cut at byte ${cut} of ${block.length}${rest.length > 0 ? ' (the rest as payload)' : ''}`, subject: render(d).subject, headerBlock: block.subarray(0, cut), payload: Buffer.concat([rest, d.payload]), expect: cut === 0 ? Expect.Any : Expect.Malformed };
  }],
  ['bad quorum', (g, d) => {
    const value = g.pick(['0', '4', '-1', 'two', '1.5', '', '2 2', '0x2', '1e0', '9'.repeat(g.int(2, 5000)), '\u0663', '+2']);
    return finish({ ...d, lines: [...d.lines.filter((l) => !/^kv-[rw]:/i.test(l.toString())), line(g.pick(['KV-R', 'KV-W']), value)] }, `quorum ${JSON.stringify(value.slice(0, 20))}`, Expect.Malformed);
  }],
  ['bad context', (g, d) => {
    const bad = [
      () => '%%%',
      () => 'a b',
      () => encodeContext({ n1: -1 } as Record<string, number>),
      () => Buffer.from(new Encoder().encode('not a clock')).toString('base64url'),
      () => Buffer.from(new Encoder().encode({ n1: 1.5 })).toString('base64url'),
      () => Buffer.from(new Encoder().encode({ n1: 2 ** 64 })).toString('base64url'),
      () => Buffer.from(new Encoder().encode([1, 2, 3])).toString('base64url'),
      () => 'A'.repeat(g.int(70_000, 200_000)),
    ];
    const value = g.pick(bad)();
    return finish({ ...d, lines: [...d.lines.filter((l) => !/^kv-context:/i.test(l.toString())), line('KV-Context', value)] }, `KV-Context ${JSON.stringify(value.slice(0, 40))}`, Expect.Malformed);
  }],
  ['bad condition header', (g, d) => {
    const [name, value] = g.pick([
      [g.pick(['KV-If-Absent', 'kv-if-absent', 'KV-Serial']), g.pick(['', 'maybe', '2', 'yes', '\u0661'])],
      ['KV-If-Match', g.pick(['', 'not a context!', '*', Buffer.from([1, 2, 3]).toString('base64url'), 'A'.repeat(g.int(70_000, 100_000))])],
    ] as const);
    return finish({ ...d, lines: [...d.lines, line(name, value)] }, `${name} ${JSON.stringify(value.slice(0, 20))}`, Expect.Malformed);
  }],
  ['bad ttl', (g, d) => {
    const value = g.pick(['0', '-1', '1.5', '', 'true', '30s', '1e3', '315360001', '9'.repeat(g.int(10, 400)), '\u0663']);
    return finish({ ...d, lines: [...d.lines, line(g.pick(['KV-TTL', 'kv-ttl']), value)] }, `KV-TTL ${JSON.stringify(value.slice(0, 20))}`, Expect.Malformed);
  }],
  ['ttl on delete', (g, d) => finish({ ...d, op: 'del', payload: Buffer.alloc(0), lines: [...d.lines, line('KV-TTL', String(g.int(1, 100)))] }, 'a delete with KV-TTL', Expect.Malformed)],
  ['key too long', (g, d) => {
    const key = `fz.${'k'.repeat(g.int(1025, 3000))}`;
    return finish(keyed(g, d, Buffer.from(key)), `key of ${key.length} bytes`, Expect.Malformed);
  }],
  ['key not UTF-8', (g, d) => {
    const key = Buffer.concat([Buffer.from(`fz.${g.token(0, 6)}`), badUtf8(g), Buffer.from(g.token(0, 6))]);
    return finish(keyed(g, d, key), `key bytes ${key.toString('hex')}`, Expect.Malformed);
  }],
  ['key with U+FFFD', (g, d) => finish(keyed(g, d, Buffer.from(`fz.${g.token(0, 4)}\uFFFD`)), 'key holding U+FFFD', Expect.Malformed)],
  ['key twice', (g, d) => finish({ ...d, subjectKey: Buffer.from(fuzzKeyText(g)), lines: [...d.lines.filter((l) => !/^kv-key:/i.test(l.toString())), line('KV-Key', fuzzKeyText(g))] }, 'key in subject and header', Expect.Malformed)],
  ['key missing', (g, d) => finish({ ...d, subjectKey: undefined, lines: [...d.lines.filter((l) => !/^kv-key:/i.test(l.toString())), ...(g.chance(0.5) ? [line('KV-Key', g.pick(['', '   ', '\t']))] : [])] }, 'no key', Expect.Malformed)],
  // Header parsing drops spaces and tabs around a value: a key padded with them would arrive as another key.
  ['key padded with blanks', (g, d) => finish(headerKeyed(d, line('KV-Key', g.pick([' fz.a', 'fz.a ', '\tfz.a', 'fz.a\t', '  fz.a  ']))), 'KV-Key padded with spaces or tabs', Expect.Malformed)],
  ['bad base64 key', (g, d) => {
    const value = g.pick(['%%', 'a', 'ab=c', 'a b', Buffer.from([0xff, 0xfe, 0x41]).toString('base64url'), 'QUFB'.repeat(g.int(400, 2000))]);
    return finish(headerKeyed(d, line('KV-Key-B64', value)), `KV-Key-B64 ${JSON.stringify(value.slice(0, 20))}`, Expect.Malformed);
  }],
  ['value too large', (g, d, ctx) => {
    const size = g.int(ctx.valueBytesMax + 1, ctx.maxPayloadBytes - 2048);
    return finish({ ...d, op: 'put', payload: g.bytes(size) }, `value of ${size} bytes`, Expect.Malformed);
  }],
  ['long blank run in status', (g, d) => finish({ ...d, status: `NATS/1.0 503 a${' '.repeat(g.int(10_000, 500_000))}b\u0001` }, 'a status line with a long run of spaces', Expect.Malformed)],
  ['payload on delete', (g, d) => finish({ ...d, op: 'del', payload: g.bytes(g.int(1, 100)) }, 'a delete with a payload', Expect.Malformed)],
];

/** The draft on the bare subject, with `keyLine` as its only key header. */
function headerKeyed(d: Draft, keyLine: Buffer): Draft {
  return { ...d, subjectKey: undefined, lines: [...d.lines.filter((l) => !/^kv-key(-b64)?:/i.test(l.toString('latin1'))), keyLine] };
}

/** The draft with `key` in the subject (when a subject can hold it) or in KV-Key. */
function keyed(g: Gen, d: Draft, key: Buffer): Draft {
  const lines = d.lines.filter((l) => !/^kv-key:/i.test(l.toString('latin1')));
  const subjectOk = !key.some((b) => b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a) && key.length < 3500;
  if (subjectOk && g.chance(0.6)) return { ...d, subjectKey: key, lines };
  return { ...d, subjectKey: undefined, lines: [...lines, line('KV-Key', key)] };
}

const wellFormed: [string, Mutation][] = [
  ['plain', (_g, d) => finish(d, 'well formed', Expect.Any)],
  ['odd but valid spacing', (g, d) => finish({ ...d, lines: [...d.lines, Buffer.from(g.pick(['X-A:b', 'X-A:\t b \t', 'X-A:', 'X-A:   ']))] }, 'valid odd spacing', Expect.Any)],
  ['repeated unknown header', (_g, d) => finish({ ...d, lines: [...d.lines, line('X-Dup', 'a'), line('x-dup', 'b')] }, 'an unknown header twice', Expect.Any)],
  ['huge unknown header', (g, d) => finish({ ...d, lines: [...d.lines, line('X-Pad', 'p'.repeat(g.int(1000, 300_000)))] }, 'a huge unknown header', Expect.Any)],
  // Quadratic trimming (/[ \t]+$/) takes minutes on this; the answer must still come in seconds.
  ['long blank run in value', (g, d) => finish({ ...d, lines: [...d.lines, line('X-Blank', `a${' '.repeat(g.int(10_000, 500_000))}b`)] }, 'a value with a long run of spaces', Expect.Any)],
  ['wildcard key', (g, d) => finish(keyed(g, d, Buffer.from(`fz.${g.pick(['*', '>', 'a.*.b', '*.>'])}`)), 'a key with wildcards', Expect.Any)],
  ['control characters in key', (g, d) => finish(keyed(g, d, Buffer.from(`fz.${g.token(1, 4)}${g.pick(['\u0001', '\u007f', '\u0000', '\u001b[31m'])}x`)), 'a key with control characters', Expect.Any)],
  // Only spaces and tabs are trimmed: other white space at an end is part of the key.
  ['key with Unicode white space at an end', (g, d) => finish(headerKeyed(d, line('KV-Key', g.pick(['\u00a0fz.a', 'fz.a\u00a0', '\u000bfz.a', 'fz.a\u000c', '\u2028fz']))), 'key with Unicode white space at an end', Expect.Any)],
  ['base64 key', (g, d) => {
    const key = `${g.pick([' ', '\t', '\r\n', ''])}${fuzzKeyText(g)}${g.pick([' ', '\n', '\u0000', ''])}`;
    return finish(headerKeyed(d, line('KV-Key-B64', Buffer.from(key).toString('base64url'))), `KV-Key-B64 of ${JSON.stringify(key)}`, Expect.Any);
  }],
  ['context with huge counters', (g, d) => {
    const counter = g.pick([Number.MAX_SAFE_INTEGER, 2 ** 52, 2 ** 40 * 1000]);
    const ctxValue = encodeContext({ [g.pick(['m1', 'f1', 'zz'])]: counter });
    return finish({ ...d, lines: [...d.lines.filter((l) => !/^kv-context:/i.test(l.toString())), line('KV-Context', ctxValue)] }, `KV-Context with counter ${counter}`, Expect.Any);
  }],
  ['get with payload', (g, d) => finish({ ...d, op: 'get', payload: g.bytes(g.int(1, 50)) }, 'a get with a payload', Expect.Any)],
  ['no header block', (_g, d) => ({ what: 'no header block', ...render(d, false), payload: d.payload, expect: d.subjectKey ? Expect.Any : Expect.Malformed })],
  ['micro-service subject', (g, d, ctx) => {
    // $SRV.PING|INFO|STATS[.goddb] are answered by nats.js's service code, whatever the header block.
    const [, broken] = g.pick(malformed);
    const c = broken(g, d, ctx);
    const subject = Buffer.from(`$SRV.${g.pick(['PING', 'INFO', 'STATS'])}${g.chance(0.7) ? '.goddb' : ''}`);
    return { ...c, what: `${subject.toString()} with ${c.what}`, subject, expect: Expect.Any };
  }],
];

export const clientMutationNames = [...malformed, ...wellFormed].map(([name]) => name);

export function clientCase(g: Gen, ctx: ClientContext): ClientCase {
  const d = draft(g, ctx);
  const [, mutate] = g.chance(0.65) ? g.pick(malformed) : g.pick(wellFormed);
  return { ...mutate(g, d, ctx), copies: g.chance(0.05) ? 2 : 1 };
}

/* ---------------- node subjects ---------------- */

export interface InternalCase {
  what: string;
  subject: string;
  payload: Buffer;
  /** Replica subjects answer; gossip is publish-only. */
  reply: boolean;
}

export interface InternalContext {
  cluster: string;
  ids: readonly string[];
  /** Messages seen on the node subjects while fuzz keys were written, by last subject token (get, put, probe, gossip). */
  samples: ReadonlyMap<string, readonly Buffer[]>;
  fuzzKeys: readonly string[];
  /** A fuzz key with a large value: a batch asking for it many times makes a reply over max_payload. */
  bigKey: string;
}

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

function randomValue(g: Gen, depth = 0): unknown {
  const leaf = [
    () => g.int(-1000, 1000),
    () => g.pick([2 ** 53, 2 ** 64, -(2 ** 63), 1e308, Number.NaN, Infinity, -0, 0.5]),
    () => g.token(0, 12),
    () => g.bytes(g.int(0, 16)),
    () => g.chance(0.5),
    () => null,
    () => undefined,
  ];
  if (depth > 3 || g.chance(0.5)) return g.pick(leaf)();
  if (g.chance(0.5)) return Array.from({ length: g.int(0, 5) }, () => randomValue(g, depth + 1));
  const keys = ['v', 'kind', 'keys', 'items', 'key', 'versions', 'id', 'virtualNodes', 'heartbeat', 'hello', 'incarnation', 'hlc', 'clock', 'value', 'from', g.token(1, 6)];
  const out: Record<string, unknown> = {};
  for (let i = g.int(0, 6); i > 0; i--) out[g.pick(keys)] = randomValue(g, depth + 1);
  return out;
}

/** Raw CBOR a decoder must refuse without allocating what it claims: huge lengths, deep nesting. */
function hostileCbor(g: Gen): Buffer {
  const depth = g.int(1_000, 200_000);
  const choices = [
    () => Buffer.concat([Buffer.from([0x9b]), Buffer.from('00000000ffffffff', 'hex')]), // array of 2^32-1 items
    () => Buffer.concat([Buffer.from([0x5a]), Buffer.from('7fffffff', 'hex'), g.bytes(8)]), // byte string of 2 GiB
    () => Buffer.concat([Buffer.from([0xba]), Buffer.from('ffffffff', 'hex')]), // map of 2^32-1 pairs
    () => Buffer.concat([Buffer.alloc(depth, 0x81), Buffer.from([0xf6])]), // nested arrays
    () => Buffer.concat([Buffer.alloc(depth, 0xc6), Buffer.from([0x00])]), // nested tags
    // { v: 2, kind: 1, keys: [[[...]]] }: a replica get whose keys are nested arrays.
    () => Buffer.concat([Buffer.from([0xa3]), cbor.encode('v'), cbor.encode(2), cbor.encode('kind'), cbor.encode(1), cbor.encode('keys'), Buffer.alloc(depth, 0x81), Buffer.from([0xf6])]),
  ];
  return g.pick(choices)();
}

function structural(g: Gen, sample: Buffer): { payload: Buffer; what: string } {
  let raw: unknown;
  try {
    raw = cbor.decode(sample);
  } catch {
    return { payload: sample, what: 'sample (not CBOR)' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { payload: sample, what: 'sample' };
  const obj = raw as Record<string, unknown>;
  const fields = Object.keys(obj);
  const a = g.pick(fields);
  const b = g.pick(fields);
  const change = g.pick([
    () => {
      [obj[a], obj[b]] = [obj[b], obj[a]];
      return `swap ${a} and ${b}`;
    },
    () => {
      obj[a] = g.pick([2 ** 53, 2 ** 64, -1, 1e308, Number.NaN, -(2 ** 63), 2 ** 31]);
      return `${a} = ${String(obj[a])}`;
    },
    () => {
      obj[a] = randomValue(g);
      return `${a} = random`;
    },
    () => {
      delete obj[a];
      return `without ${a}`;
    },
    () => {
      obj['v'] = g.pick([0, 1, 2, 3, 99, -1, '2']);
      return `v = ${String(obj['v'])}`;
    },
    () => {
      obj['kind'] = g.int(0, 25);
      return `kind = ${String(obj['kind'])}`;
    },
    () => {
      deepen(g, obj);
      return 'a field nested deep';
    },
  ])();
  return { payload: Buffer.from(cbor.encode(obj)), what: change };
}

/** Replaces one leaf deep inside `obj` by itself wrapped in many arrays (encodable: cbor-x recursion stays under the stack). */
function deepen(g: Gen, obj: Record<string, unknown>): void {
  let v: unknown = obj[g.pick(Object.keys(obj))];
  for (let i = g.int(50, 500); i > 0; i--) v = [v];
  obj[g.pick(Object.keys(obj))] = v;
}

function bitFlips(g: Gen, sample: Buffer): Buffer {
  const out = Buffer.from(sample);
  for (let i = g.int(1, 8); i > 0 && out.length > 0; i--) out[g.int(0, out.length - 1)]! ^= 1 << g.int(0, 7);
  return out;
}

export function internalCase(g: Gen, ctx: InternalContext): InternalCase {
  const target = g.pick(['get', 'get', 'put', 'put', 'probe', 'gossip', 'paxos']);
  const subject = target === 'gossip' ? `god.${ctx.cluster}.gossip` : `god.${ctx.cluster}.node.${g.pick(ctx.ids)}.${target}`;
  const reply = target !== 'gossip';
  const samples = ctx.samples.get(target) ?? [];
  // A valid Paxos message is a prepare with a low ballot: a commit would overwrite the values the fuzz test reads back.
  const valid = (): Buffer =>
    target === 'paxos'
      ? Buffer.from(encode({ kind: Kind.PaxosPrepare, key: g.pick(ctx.fuzzKeys), ballot: { hlc: g.int(1, 1000), node: g.pick(ctx.ids) } }))
      : target === 'get' || samples.length === 0
        ? Buffer.from(encode({ kind: Kind.ReplicaGet, keys: Array.from({ length: g.int(1, 8) }, () => g.pick(ctx.fuzzKeys)) }))
        : g.pick(samples);
  const kinds: (() => { payload: Buffer; what: string })[] = [
    () => ({ payload: g.bytes(g.int(0, 2000)), what: 'random bytes' }),
    () => ({ payload: Buffer.from(cbor.encode(randomValue(g))), what: 'random CBOR' }),
    () => ({ payload: hostileCbor(g), what: 'hostile CBOR' }),
    () => ({ payload: bitFlips(g, valid()), what: 'bit flips' }),
    () => {
      const v = valid();
      const cut = g.int(0, Math.max(0, v.length - 1));
      return { payload: v.subarray(0, cut), what: `truncated at ${cut} of ${v.length}` };
    },
    () => ({ payload: Buffer.concat([valid(), g.bytes(g.int(1, 64))]), what: 'trailing garbage' }),
    () => structural(g, valid()),
    () => {
      // Under max_payload (1 MiB): a larger message is the server's to refuse, and it closes the connection.
      const n = g.pick([257, 1000, 50_000]);
      return { payload: Buffer.from(cbor.encode({ v: 2, kind: Kind.ReplicaGet, keys: Array.from({ length: n }, (_, i) => `fz.${i.toString(36)}`) })), what: `a get batch of ${n} keys` };
    },
    () => {
      const n = g.int(2, 64);
      return { payload: Buffer.from(encode({ kind: Kind.ReplicaGet, keys: Array.from({ length: n }, () => ctx.bigKey) })), what: `a get batch asking ${n} times for the big key` };
    },
    () => ({ payload: valid(), what: 'a valid sample' }),
  ];
  const { payload, what } = g.pick(kinds)();
  return { what: `${target}: ${what}`, subject, payload, reply };
}
