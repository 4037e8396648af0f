/**
 * Seeded fuzzing of three real workers (issue 8): `goddb worker` processes
 * on one nats-server, N=3, R=W=2, spoken to with the raw protocol client
 * (test/helpers/nats_wire.ts), so that header blocks, subjects and
 * payloads can be anything at all. Inputs come from test/helpers/fuzz_inputs.ts.
 *
 *  1. Protected keys are written through the SDK (acknowledged).
 *  2. Fuzz keys (`fz.`) are written and read with the raw client while the
 *     node subjects are watched: those messages are the samples that the
 *     node-subject fuzzing mutates.
 *  3. Client subjects: well-formed requests and requests broken in one
 *     named way (lone CR or LF, repeated or badly spaced names, missing
 *     colons, status lines, cut blocks, bytes that are not UTF-8, bad keys,
 *     quorums and contexts, oversized values, duplicated requests).
 *  4. Node subjects (`god.<cluster>.node.<id>.get|put|probe`, gossip):
 *     random bytes, random and hostile CBOR, and bit flips, truncations and
 *     field changes of the samples. Well-formed writes to the protected
 *     keys and well-formed forged heartbeats are not sent: they are an
 *     authorization matter, not malformed input.
 *
 * Passes when every request with a reply subject was answered within
 * `answerTimeoutMs`, none with 500, every malformed client request with a
 * 4xx, every worker is alive and answers on its own subject, and every
 * protected key reads back its value with R=3.
 *
 * Environment:
 *   GODDB_FUZZ_SEED=<n>            replay a run (every run prints its seed; a failure prints the inputs)
 *   GODDB_FUZZ_ITERATIONS=<n>      client requests (default 3000, about 20 s in all on a 2-core machine here); node-subject
 *                                  messages are half as many. A long run: GODDB_FUZZ_ITERATIONS=50000.
 *   GODDB_FUZZ_ENGINE=lmdb|memory  the workers' storage engine (default lmdb)
 *   GODDB_FUZZ_FORGE=1             also send well-formed forged heartbeats (fake members, odd vnode counts)
 *
 * Not sent: subjects holding a CR byte. nats-server delivers them, but the
 * nats.js parser throws on them and the receiving node stops reading until
 * its ping check reconnects it (malformed_requests.test.ts covers that), so
 * every request routed to it meanwhile would go unanswered.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { limits } from '../../src/core/limits.js';
import { decode, encode, Kind } from '../../src/protocol/codec.js';
import { seededRandom } from '../../src/transport/sim.js';
import { clientCase, Expect, Gen, internalCase, type ClientCase, type InternalCase } from '../helpers/fuzz_inputs.js';
import { headerBlock, WireClient, type WireReply } from '../helpers/nats_wire.js';
import { engineNames, startWireCluster, type EngineName, type WireCluster } from '../helpers/wire_cluster.js';

const seed = Number(process.env['GODDB_FUZZ_SEED'] ?? randomInt(2 ** 31));
const iterations = Number(process.env['GODDB_FUZZ_ITERATIONS'] ?? 3000);
const engine = (process.env['GODDB_FUZZ_ENGINE'] ?? 'lmdb') as EngineName;
if (!engineNames.includes(engine)) throw new Error(`GODDB_FUZZ_ENGINE=${engine}: one of ${engineNames.join(', ')}`);
const forge = process.env['GODDB_FUZZ_FORGE'] === '1';
const ids = ['z1', 'z2', 'z3'];
const cluster = 'fuzz';
/** Longer than a coordinator's request timeout (2 s), so a 504 still counts as an answer. */
const answerTimeoutMs = 8_000;
/** Requests in flight at once. */
const clientWindow = 16;
const internalWindow = 8;
const protectedCount = 24;
/** Failures printed in full; the rest are counted. */
const failuresShownMax = 25;
/** A phase stops early after this many failures (each silence costs answerTimeoutMs). */
const failuresStopAt = 100;

interface Failure {
  i: number;
  what: string;
  subject: string;
  header: string;
  payloadBytes: number;
  got: string;
}

const show = (b: Buffer | undefined, max = 300) => (b === undefined ? '(none)' : JSON.stringify(b.length > max ? `${b.subarray(0, max).toString('latin1')}... (${b.length} bytes)` : b.toString('latin1')));

function describeReply(r: WireReply | undefined): string {
  return r === undefined ? 'no reply' : `${r.code} ${r.message.slice(0, 200)}`;
}

/** Runs `count` tasks, `window` at a time, in order of start, until `stop()` says so. */
async function windowed(count: number, window: number, stop: () => boolean, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count && !stop()) await task(next++);
  };
  await Promise.all(Array.from({ length: window }, lane));
}

describe(`fuzz - three ${engine} workers, seed ${seed} (GODDB_FUZZ_SEED=${seed} replays)`, () => {
  const gen = new Gen(seededRandom(seed));
  let wire: WireClient;
  let nodes: WireCluster;
  let sdk: GodDbClient;
  const kept = new Map<string, Buffer>();
  const samples = new Map<string, Buffer[]>();
  const contexts: string[] = [];
  const fuzzKeys = Array.from({ length: 16 }, (_, i) => `fz.seed.${i}`);
  const bigKey = 'fz.big';
  const failures: Failure[] = [];
  const codes = new Map<string, number>();

  before(async () => {
    console.log(`fuzz: seed ${seed}, ${iterations} client requests, ${Math.floor(iterations / 2)} node-subject messages, engine ${engine}${forge ? ', forged heartbeats' : ''}`);
    nodes = await startWireCluster(cluster, ids, engine);
    wire = await WireClient.connect(nodes.nats.port);
    sdk = await connect({ servers: nodes.nats.url });
    await writeProtected();
    await writeFuzzSeeds();
  });

  after(async () => {
    if (failures.length > 0) console.log(`fuzz: seed ${seed} FAILED; replay with GODDB_FUZZ_SEED=${seed} GODDB_FUZZ_ITERATIONS=${iterations} GODDB_FUZZ_ENGINE=${engine}`);
    await sdk?.close();
    wire?.close();
    await nodes?.stop();
  });

  async function writeProtected(): Promise<void> {
    for (let i = 0; i < protectedCount; i++) {
      const key = i % 2 === 0 ? `protected.${i}.${gen.token(8, 8)}` : `protected key ${i} * ${gen.token(4, 4)}`;
      const value = gen.bytes(i === 0 ? 200_000 : gen.int(0, 4096));
      await sdk.put(key, value);
      kept.set(key, value);
    }
  }

  /** Writes and reads the fuzz keys while watching the node subjects; what is seen there becomes the samples. */
  async function writeFuzzSeeds(): Promise<void> {
    const sid = wire.subscribe(`god.${cluster}.>`);
    await wire.ping();
    for (const key of fuzzKeys) assert.equal((await wire.request(`kv.put.${key}`, gen.bytes(gen.int(0, 200))))?.code, 200);
    assert.equal((await wire.request(`kv.put.${bigKey}`, gen.bytes(300_000)))?.code, 200);
    for (const key of fuzzKeys) {
      const got = await wire.request(`kv.get.${key}`, '');
      const context = got?.headers.get('kv-context')?.[0];
      if (context !== undefined) contexts.push(context);
    }
    // A heartbeat or two: polled (bounded) until two gossip messages have been seen, not a fixed wait.
    const gossip = `god.${cluster}.gossip`;
    const deadline = Date.now() + 10_000;
    while (wire.messages.filter((m) => m.subject === gossip).length < 2) {
      assert.ok(Date.now() < deadline, `no two messages on ${gossip} within 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    wire.unsubscribe(sid);
    await wire.ping();
    for (const m of wire.messages.splice(0)) {
      const kind = m.subject.split('.').pop()!;
      if (!samples.has(kind)) samples.set(kind, []);
      if (samples.get(kind)!.length < 64) samples.get(kind)!.push(m.payload);
    }
  }

  function record(i: number, c: { what: string; subject: Buffer | string; headerBlock?: Buffer | undefined; payload: Buffer }, got: string): void {
    const subject = typeof c.subject === 'string' ? c.subject : show(c.subject);
    failures.push({ i, what: c.what, subject, header: show(c.headerBlock), payloadBytes: c.payload.length, got });
  }

  function stop(): boolean {
    return wire.closed || failures.length >= failuresStopAt;
  }

  function count(key: string): void {
    codes.set(key, (codes.get(key) ?? 0) + 1);
  }

  function assertNoFailures(phase: string): void {
    const exited = nodes.exited();
    const lines = failures.slice(0, failuresShownMax).map((f) => `#${f.i} ${f.what}: ${f.got}\n    subject ${f.subject}\n    header  ${f.header}\n    payload ${f.payloadBytes} bytes`);
    const more = failures.length > failuresShownMax ? `\n... and ${failures.length - failuresShownMax} more` : '';
    assert.ok(failures.length === 0 && exited.length === 0, `${phase} (seed ${seed}): ${failures.length} failures, workers exited: ${exited.join(', ') || 'none'}\n${lines.join('\n')}${more}`);
  }

  function judgeClient(i: number, c: ClientCase, r: WireReply | undefined): void {
    count(`${c.expect} ${r?.code ?? 'none'}`);
    if (r === undefined) record(i, c, 'no reply');
    else if (r.code === 500) record(i, c, describeReply(r));
    else if (c.expect === Expect.Malformed && (r.code < 400 || r.code > 499)) record(i, c, `${describeReply(r)} (expected 4xx)`);
  }

  it('fuzz - every client request is answered, malformed ones with 4xx, none with 500', async () => {
    const ctx = { valueBytesMax: limits.valueBytesMaxDefault, maxPayloadBytes: Number(wire.info['max_payload'] ?? 1024 * 1024), contexts };
    const cases = Array.from({ length: iterations }, () => clientCase(gen, ctx));
    const started = Date.now();
    await windowed(cases.length, clientWindow, stop, async (i) => {
      const c = cases[i]!;
      judgeClient(i, c, await wire.request(c.subject, c.payload, c.headerBlock, answerTimeoutMs, c.copies));
      if (i % 200 === 0 && nodes.exited().length > 0) record(i, c, `a worker exited: ${nodes.exited().join(', ')}`);
    });
    console.log(`fuzz: ${cases.length} client requests in ${Date.now() - started} ms; ${[...codes].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`);
    assert.equal(wire.closed, false, `nats-server closed the fuzz connection (the fuzzer broke the protocol): ${wire.errors.join('; ')}`);
    assertNoFailures('client subjects');
  });

  /** Well-formed writes to protected keys and forged heartbeats are an authorization matter: not sent. */
  function forged(c: InternalCase): boolean {
    const kind = c.subject.split('.').pop();
    try {
      if (kind === 'put') return decode(c.payload, Kind.ReplicaPut).items.some((item) => !item.key.startsWith('fz.'));
      if (kind === 'gossip') return !forge && decode(c.payload, Kind.Heartbeat) !== undefined;
    } catch {
      return false; // malformed: exactly what is wanted
    }
    return false;
  }

  it('fuzz - every node-subject request is answered, none with 500; gossip garbage is ignored', async () => {
    const ctx = { cluster, ids, samples, fuzzKeys, bigKey };
    const cases: InternalCase[] = [];
    while (cases.length < Math.floor(iterations / 2)) {
      const c = internalCase(gen, ctx);
      if (!forged(c)) cases.push(c);
    }
    const started = Date.now();
    codes.clear();
    await windowed(cases.length, internalWindow, stop, async (i) => {
      const c = cases[i]!;
      if (!c.reply) {
        wire.publish(c.subject, undefined, c.payload);
        count('gossip');
        return;
      }
      const r = await wire.request(c.subject, c.payload, undefined, answerTimeoutMs);
      count(`${c.subject.split('.').pop()} ${r?.code ?? 'none'}`);
      if (r === undefined || r.code === 500) record(i, c, describeReply(r));
    });
    await wire.ping();
    console.log(`fuzz: ${cases.length} node-subject messages in ${Date.now() - started} ms; ${[...codes].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`);
    assert.equal(wire.closed, false, `nats-server closed the fuzz connection: ${wire.errors.join('; ')}`);
    assertNoFailures('node subjects');
  });

  it('fuzz - afterwards every worker is alive and answers, and every protected key reads back', async () => {
    assert.deepEqual(nodes.exited(), []);
    for (const id of ids) {
      const r = await wire.request(`god.${cluster}.node.${id}.get`, Buffer.from(encode({ kind: Kind.ReplicaGet, keys: [fuzzKeys[0]!] })), undefined, answerTimeoutMs);
      assert.equal(r?.code, 200, `worker ${id} answers on its replica subject: ${describeReply(r)}`);
    }
    assert.equal((await wire.collect('$SRV.PING.goddb', '', 500)).length, ids.length, 'every worker answers $SRV.PING');
    const wrong: string[] = [];
    for (const [key, value] of kept) {
      const got = await sdk.get(key, { r: 3 });
      if (got === null || !Buffer.from(got.value).equals(value)) wrong.push(`${JSON.stringify(key)}: ${got === null ? 'missing' : `${got.value.length} bytes, not the ${value.length} written`}`);
    }
    assert.deepEqual(wrong, [], `protected keys changed (seed ${seed})`);
    const get = await wire.request(`kv.get.${fuzzKeys[0]}`, '', headerBlock({ 'KV-R': '3' }));
    assert.ok(get?.code === 200 || get?.code === 404, `a plain read still works: ${describeReply(get)}`);
  });
});
