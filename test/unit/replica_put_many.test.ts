/**
 * Replica.putMany against Replica.put: a batch merges exactly as its items
 * put one by one, listeners hear every change, a single put racing a batch
 * on the same key is not lost, and a failing batch stores nothing. Over the
 * memory engine and a fake clock: no transport, no timers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { ClockSkewError, StaleWriteError, StorageError, UnavailableError } from '../../src/core/errors.js';
import { fromWallMs } from '../../src/core/hlc.js';
import { limits } from '../../src/core/limits.js';
import { collapse, ConflictPolicy, type Version } from '../../src/core/version.js';
import type { VClock } from '../../src/core/vclock.js';
import { HybridClock } from '../../src/node/clock/hybrid_clock.js';
import { KeyLock } from '../../src/node/replica/key_lock.js';
import { Replica } from '../../src/node/replica/replica.js';
import { decode, encode, Kind, type ReplicaPutItem } from '../../src/protocol/codec.js';
import { replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import type { StorageEntry } from '../../src/storage/engine.js';
import { MemoryEngine } from '../../src/storage/memory.js';
import { MemoryMetaStore } from '../../src/storage/meta.js';
import type { InboundMessage, Transport } from '../../src/transport/transport.js';
import { FakeClock } from '../helpers/fake_clock.js';
import { versionSet } from '../helpers/versions.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_130);
const runs = (numRuns: number) => ({ seed, numRuns });
const startMs = 1_700_000_000_000;
const baseHlc = fromWallMs(startMs);

async function replicaOver(engine = new MemoryEngine(), conflictPolicy: ConflictPolicy = ConflictPolicy.Lww): Promise<{ replica: Replica; engine: MemoryEngine; hlc: HybridClock }> {
  await engine.open();
  const hlc = new HybridClock(new FakeClock(startMs), new MemoryMetaStore(), 60_000);
  const replica = new Replica(engine, hlc, { conflictPolicy, recordBytesMax: 4096, replyBytesMax: 1 << 20, protocolMax: 2 }, pino({ level: 'silent' }));
  return { replica, engine, hlc };
}

function version(clock: VClock, hlcOffset: number, writer: string, value: string, tombstone = false): Version {
  return { clock, hlc: baseHlc + hlcOffset, writer, tombstone, value: tombstone ? new Uint8Array() : new TextEncoder().encode(value) };
}

const keys = ['k0', 'k1', 'k2', 'k3'];
const writers = ['a', 'b', 'c'];
const versionArb = fc
  .record({
    a: fc.integer({ min: 0, max: 3 }),
    b: fc.integer({ min: 0, max: 3 }),
    c: fc.integer({ min: 0, max: 3 }),
    hlcOffset: fc.integer({ min: 0, max: 50 }),
    writer: fc.constantFrom(...writers),
    value: fc.string({ maxLength: 6 }),
    tombstone: fc.boolean(),
  })
  .map(({ a, b, c, hlcOffset, writer, value, tombstone }) => {
    const clock: Record<string, number> = {};
    for (const [id, n] of Object.entries({ a, b, c })) if (n > 0) clock[id] = n;
    return version(clock, hlcOffset, writer, value, tombstone);
  });
const itemArb = fc.record({ key: fc.constantFrom(...keys), versions: fc.array(versionArb, { minLength: 1, maxLength: 3 }) });
const batchesArb = fc.array(fc.array(itemArb, { maxLength: 8 }), { minLength: 1, maxLength: 6 });

describe('replica putMany', () => {
  it(`replica putMany - a sequence of batches stores what the same puts one by one store, and the listeners end where the store does (seed ${seed})`, async () => {
    await fc.assert(
      fc.asyncProperty(batchesArb, async (batches) => {
        const batched = await replicaOver();
        const single = await replicaOver();
        const heard = new Map<string, string[]>();
        batched.replica.onStored((key, _before, after) => heard.set(key, versionSet(after)));
        for (const batch of batches) {
          await batched.replica.putMany(batch);
          for (const { key, versions } of batch) await single.replica.put(key, versions);
        }
        for (const key of keys) {
          const stored = versionSet(await batched.replica.get(key));
          assert.deepEqual(stored, versionSet(await single.replica.get(key)), key);
          assert.deepEqual(heard.get(key) ?? [], stored, `the last change heard of ${key} is what is stored`);
        }
        assert.equal(batched.hlc.peek(), single.hlc.peek(), 'the clock advances past every version either way');
      }),
      runs(200),
    );
  });

  it(`replica servePut - writes coordinated in one microtask are stored together yet settle as puts one by one would: the same stale refusals, the same store (seed ${seed})`, async () => {
    const freshItemArb = fc.record({ key: fc.constantFrom(...keys), versions: fc.array(versionArb, { minLength: 1, maxLength: 2 }), fresh: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(freshItemArb, { maxLength: 8 }), { minLength: 1, maxLength: 4 }), async (turns) => {
        const engine = new CountingEngine();
        const together = await replicaOver(engine);
        const single = await replicaOver();
        for (const turn of turns) {
          const before = engine.written;
          const outcomes = await Promise.allSettled(turn.map(({ key, versions, fresh }) => together.replica.servePut(key, versions, fresh)));
          const distinct = new Set(turn.map(({ key }) => key)).size;
          assert.ok(engine.written - before <= distinct, `one turn's writes of ${distinct} keys wrote ${engine.written - before} records: each key is written once`);
          for (const [i, { key, versions, fresh }] of turn.entries()) {
            const alone = await single.replica.put(key, versions, fresh).then(() => 'ok', (err: unknown) => (err instanceof StaleWriteError ? `stale ${err.floor}` : String(err)));
            const o = outcomes[i]!;
            const got = o.status === 'fulfilled' ? 'ok' : o.reason instanceof StaleWriteError ? `stale ${o.reason.floor}` : String(o.reason);
            assert.equal(got, alone, `item ${i} of ${key}`);
          }
        }
        for (const key of keys) assert.deepEqual(versionSet(await together.replica.get(key)), versionSet(await single.replica.get(key)), key);
        assert.equal(together.hlc.peek(), single.hlc.peek(), 'the clock advances past the same versions');
      }),
      runs(200),
    );
  });

  it('replica servePut - a write too far ahead is refused alone, a store failure fails the turn\'s writes, and the next turn stores again', async () => {
    const engine = new CountingEngine();
    const { replica } = await replicaOver(engine);
    const ahead = { ...version({ b: 1 }, 0, 'b', 'ahead'), hlc: fromWallMs(startMs + 3_600_000) };
    const [ok, skewed] = await Promise.allSettled([replica.servePut('k0', [version({ a: 1 }, 1, 'a', 'ok')], true), replica.servePut('k1', [ahead], true)]);
    assert.equal(ok.status, 'fulfilled');
    assert.ok(skewed.status === 'rejected' && skewed.reason instanceof ClockSkewError);
    engine.setFailing(true);
    const failed = await Promise.allSettled([replica.servePut('k2', [version({ a: 2 }, 2, 'a', 'x')], true), replica.servePut('k3', [version({ a: 3 }, 3, 'a', 'y')], true)]);
    assert.deepEqual(failed.map((o) => o.status === 'rejected' && o.reason instanceof StorageError), [true, true]);
    engine.setFailing(false);
    await replica.servePut('k2', [version({ a: 2 }, 2, 'a', 'x')], true);
    assert.equal((await replica.get('k2')).length, 1, 'the locks of the failed turn were released');
    assert.deepEqual(await replica.get('k3'), []);
  });

  it('replica servePut - a turn of more writes than limits.replicaBatchItemsMax is stored in batches of at most that many', async () => {
    const engine = new CountingEngine();
    const { replica } = await replicaOver(engine);
    const n = limits.replicaBatchItemsMax;
    // Items 0 .. 2n in one turn: batches [0, n), [n, 2n), [2n]. 'shared' is the first item and the last,
    // so it is read and written once in the first batch and once in the third; one batch of every
    // item would read and write it once.
    const keyOf = (i: number) => (i === 0 || i === 2 * n ? 'shared' : `k${i}`);
    await Promise.all(Array.from({ length: 2 * n + 1 }, (_, i) => replica.servePut(keyOf(i), [version({ a: i + 1 }, i + 1, 'a', `v${i}`)], false)));
    assert.equal(engine.readsOf.get('shared'), 2);
    assert.equal(engine.readsOf.get('k1'), 1);
    assert.equal(engine.written, 2 * n + 1, 'every other key written once, the shared one once per batch');
    assert.deepEqual((await replica.get('shared')).map((v) => new TextDecoder().decode(v.value)), [`v${2 * n}`]);
  });

  it('replica servePut - a store failure of one key fails only that key\'s writes; the others are stored and heard', async () => {
    const engine = new CountingEngine();
    const { replica } = await replicaOver(engine);
    const heard: string[] = [];
    replica.onStored((key) => heard.push(key));
    engine.failingKeys.add('bad');
    const outcomes = await Promise.allSettled([
      replica.servePut('good', [version({ a: 1 }, 1, 'a', 'g')], true),
      replica.servePut('bad', [version({ a: 2 }, 2, 'a', 'b')], true),
      replica.servePut('bad', [version({ a: 3 }, 3, 'a', 'b2')], false),
      replica.servePut('also', [version({ b: 1 }, 4, 'b', 'x')], false),
    ]);
    assert.deepEqual(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : o.reason instanceof StorageError ? 'storage' : String(o.reason))), ['ok', 'storage', 'storage', 'ok']);
    assert.deepEqual(heard.sort(), ['also', 'good']);
    assert.deepEqual(await replica.get('bad'), []);
    await assert.rejects(replica.putMany([{ key: 'bad', versions: [version({ a: 4 }, 5, 'a', 'b3')] }, { key: 'more', versions: [version({ c: 1 }, 6, 'c', 'm')] }]), StorageError);
    assert.equal((await replica.get('more')).length, 1, 'putMany rejects with the failure, the keys that could be stored are');
  });

  it('replica putMany - listeners hear each changed key once, with what it held before, and nothing for items that add nothing', async () => {
    const { replica } = await replicaOver();
    const old = version({ a: 1 }, 1, 'a', 'old');
    const newer = version({ a: 2 }, 2, 'a', 'new');
    const other = version({ b: 1 }, 3, 'b', 'other');
    await replica.put('k0', [old]);
    await replica.put('k2', [newer]);
    const heard: { key: string; before: string[]; after: string[] }[] = [];
    replica.onStored((key, before, after) => heard.push({ key, before: versionSet(before), after: versionSet(after) }));
    await replica.putMany([
      { key: 'k0', versions: [newer] },
      { key: 'k1', versions: [other] },
      { key: 'k2', versions: [old] }, // older than what k2 holds: no change
      { key: 'k1', versions: [other] }, // again: the same version adds nothing
    ]);
    assert.deepEqual(heard, [
      { key: 'k0', before: versionSet([old]), after: versionSet([newer]) },
      { key: 'k1', before: [], after: versionSet([other]) },
    ]);
    heard.length = 0;
    await replica.putMany([{ key: 'k0', versions: [old] }]);
    await replica.putMany([]);
    assert.deepEqual(heard, [], 'a batch that changes nothing is heard by no one');
  });

  it('replica put - concurrent versions are stored collapsed into one under lww, kept as siblings under siblings', async () => {
    const first = version({ a: 1 }, 1, 'a', 'first');
    const second = version({ b: 1 }, 2, 'b', 'second');
    const lww = (await replicaOver()).replica;
    await lww.put('k', [first]);
    await lww.put('k', [second]);
    assert.deepEqual(versionSet(await lww.get('k')), versionSet([collapse([first, second])]));
    assert.deepEqual(Object.keys((await lww.get('k'))[0]!.clock).sort(), ['a', 'b']);
    await lww.put('k', [first]); // already merged: nothing changes
    assert.deepEqual(versionSet(await lww.get('k')), versionSet([collapse([first, second])]));
    const kept = (await replicaOver(new MemoryEngine(), ConflictPolicy.Siblings)).replica;
    await kept.put('k', [first]);
    await kept.put('k', [second]);
    assert.deepEqual(versionSet(await kept.get('k')), versionSet([first, second]));
  });

  it('replica putMany - a put of one of the batch keys while the batch is being written is not lost, and neither is the batch', async () => {
    for (const putFirst of [false, true]) {
      const engine = new GatedEngine();
      const { replica } = await replicaOver(engine);
      const fromBatch = version({ a: 1 }, 1, 'a', 'batch');
      const concurrent = version({ b: 1 }, 2, 'b', 'single');
      engine.gate();
      const single = putFirst ? replica.put('k1', [concurrent]) : undefined;
      const batch = replica.putMany([
        { key: 'k0', versions: [fromBatch] },
        { key: 'k1', versions: [fromBatch] },
      ]);
      const late = putFirst ? undefined : replica.put('k1', [concurrent]);
      await settle();
      engine.open_();
      await Promise.all([batch, single, late]);
      // Under lww the replica stores the two concurrent versions collapsed: the later one's
      // contents with both clocks, so neither write is lost to a later merge.
      assert.deepEqual(versionSet(await replica.get('k1')), versionSet([collapse([fromBatch, concurrent])]), `put ${putFirst ? 'before' : 'after'} the batch`);
      assert.deepEqual(versionSet(await replica.get('k0')), versionSet([fromBatch]));
    }
  });

  it('replica putMany - a failing store or a version too far ahead rejects the whole batch and stores nothing', async () => {
    const { replica, engine } = await replicaOver();
    const heard: string[] = [];
    replica.onStored((key) => heard.push(key));
    const ok = version({ a: 1 }, 1, 'a', 'ok');
    engine.setFailing(true);
    await assert.rejects(replica.putMany([{ key: 'k0', versions: [ok] }]), StorageError);
    engine.setFailing(false);
    const ahead = { ...version({ b: 1 }, 0, 'b', 'ahead'), hlc: fromWallMs(startMs + 3_600_000) };
    await assert.rejects(
      replica.putMany([
        { key: 'k0', versions: [ok] },
        { key: 'k1', versions: [ahead] },
      ]),
      ClockSkewError,
    );
    assert.deepEqual(await replica.get('k0'), []);
    assert.deepEqual(await replica.get('k1'), []);
    assert.deepEqual(heard, []);
    await replica.putMany([{ key: 'k0', versions: [ok] }]);
    assert.deepEqual(versionSet(await replica.get('k0')), versionSet([ok]), 'the locks of the failed batches were released');
  });
});

/** The handler the replica subscribes on its `op` subject (node n1 of cluster c). */
function handlerOf(replica: Replica, op: ReplicaOp): (msg: InboundMessage) => void | Promise<void> {
  const handlers = new Map<string, (msg: InboundMessage) => void | Promise<void>>();
  const transport = { subscribe: (subject: string, handler: (msg: InboundMessage) => void | Promise<void>) => (handlers.set(subject, handler), { unsubscribe: () => undefined, drain: async () => undefined }) };
  replica.listen(transport as unknown as Transport, 'c', 'n1');
  return handlers.get(replicaSubject('c', 'n1', op))!;
}

describe('replica put message', () => {
  it('replica put message - repair and fresh items are merged under one lock yet answered one by one: one too far ahead, one stale fresh, one hinted with no hints', async () => {
    const engine = new CountingEngine();
    const { replica } = await replicaOver(engine);
    const onPut = handlerOf(replica, ReplicaOp.Put);
    await replica.put('held', [version({ a: 5 }, 40, 'a', 'held')]);
    const ahead = { ...version({ b: 1 }, 0, 'b', 'ahead'), hlc: fromWallMs(startMs + 3_600_000) };
    const items: ReplicaPutItem[] = [
      { key: 'r0', versions: [version({ a: 1 }, 1, 'a', 'r0')] },
      { key: 'r1', versions: [ahead] },
      { key: 'held', versions: [version({ a: 2 }, 2, 'a', 'stale')], fresh: true },
      { key: 'r2', versions: [version({ b: 1 }, 3, 'b', 'r2')] },
      { key: 'h', versions: [version({ c: 1 }, 4, 'c', 'hint')], hintFor: 'n9' },
      { key: 'r0', versions: [version({ b: 2 }, 5, 'b', 'r0-concurrent')] },
      { key: 'f0', versions: [version({ a: 1 }, 6, 'a', 'fresh')], fresh: true },
    ];
    let answer: Uint8Array | undefined;
    const msg = { subject: '', data: encode({ kind: Kind.ReplicaPut, items }), header: () => undefined, headerPadded: () => false, expectsReply: true, respond: (data: Uint8Array) => void (answer = data), respondError: () => assert.fail('refused whole') };
    engine.written = 0;
    await onPut(msg);
    assert.equal(engine.written, 3, 'r0 (its two items merged), r2 and f0 are each written once');
    const { results } = decode(answer!, Kind.ReplicaPutReply);
    assert.deepEqual(
      results.map((r) => (r.ok ? 200 : r.code)),
      [200, new ClockSkewError('x').code, new StaleWriteError('x', 0).code, 200, new UnavailableError('x').code, 200, 200],
    );
    assert.equal((await replica.get('f0')).length, 1);
    const r0 = await replica.get('r0');
    assert.equal(r0.length, 1, 'under lww the two concurrent items of r0 are stored collapsed');
    assert.deepEqual(Object.keys(r0[0]!.clock).sort(), ['a', 'b'], 'both items of r0 were merged');
    assert.equal((await replica.get('r2')).length, 1);
    assert.deepEqual(await replica.get('r1'), []);
    replica.bootstrapping = true;
    await onPut({ ...msg, data: encode({ kind: Kind.ReplicaPut, items: [{ key: 'b0', versions: [version({ a: 1 }, 1, 'a', 'b0')] }] }) });
    assert.deepEqual(decode(answer!, Kind.ReplicaPutReply).results.map((r) => (r.ok ? 200 : r.code)), [503], 'a bootstrapping replica acknowledges no repair item');
    assert.equal((await replica.get('b0')).length, 1, 'but stores it');
    replica.bootstrapping = false;
    engine.setFailing(true);
    await onPut({ ...msg, data: encode({ kind: Kind.ReplicaPut, items: [items[0]!, items[3]!] }) });
    assert.deepEqual(decode(answer!, Kind.ReplicaPutReply).results.map((r) => (r.ok ? 200 : r.code)), [507, 507], 'a store failure fails every batched item');
  });
});

describe('replica get message', () => {
  /** A memory engine that reads only asynchronously, as Redis does: the replica takes its other path. */
  class AsyncOnlyEngine extends MemoryEngine {
    declare getSync: MemoryEngine['getSync'];
    constructor() {
      super();
      Object.defineProperty(this, 'getSync', { value: undefined });
    }
  }

  for (const [name, make] of [['a synchronous read', () => new MemoryEngine()], ['only asynchronous reads', () => new AsyncOnlyEngine()]] as const) {
    it(`replica get message - each key answered on its own, absent ones empty, a failing store 507 per key, bootstrapping 503 per key (${name})`, async () => {
      const engine = make();
      assert.equal(engine.getSync === undefined, name === 'only asynchronous reads');
      const { replica } = await replicaOver(engine);
      const onGet = handlerOf(replica, ReplicaOp.Get);
      await replica.put('k1', [version({ a: 1 }, 1, 'a', 'one')]);
      await replica.put('k2', [version({ b: 1 }, 2, 'b', 'two')]);
      let answer: Uint8Array | undefined;
      const ask = async (keys: string[]) => {
        answer = undefined;
        await onGet({ subject: '', data: encode({ kind: Kind.ReplicaGet, keys }), header: () => undefined, headerPadded: () => false, expectsReply: true, respond: (data: Uint8Array) => void (answer = data), respondError: () => assert.fail('refused whole') });
        return decode(answer!, Kind.ReplicaGetReply).results.map((r) => (r.ok ? r.versions.map((v) => new TextDecoder().decode(v.value)).join(',') : r.code));
      };
      assert.deepEqual(await ask(['k2', 'absent', 'k1']), ['two', '', 'one']);
      engine.setFailing(true);
      assert.deepEqual(await ask(['k1', 'k2']), [507, 507]);
      engine.setFailing(false);
      replica.bootstrapping = true;
      assert.deepEqual(await ask(['k1']), [503]);
    });
  }
});

describe('key lock runAll', () => {
  it('key lock - batches sharing keys in opposite orders and single runs all finish, one at a time per key', async () => {
    const locks = new KeyLock(100);
    const inside = new Map<string, number>();
    const log: string[] = [];
    const enter = async (name: string, held: string[]) => {
      for (const key of held) {
        assert.equal(inside.get(key) ?? 0, 0, `${name} entered ${key} while someone held it`);
        inside.set(key, 1);
      }
      await settle();
      for (const key of held) inside.set(key, 0);
      log.push(name);
    };
    await Promise.all([
      locks.runAll(['x', 'y', 'z'], () => enter('xyz', ['x', 'y', 'z'])),
      locks.runAll(['z', 'y', 'x', 'x'], () => enter('zyx', ['x', 'y', 'z'])),
      locks.run('y', () => enter('y', ['y'])),
      locks.runAll(['z', 'w'], () => enter('zw', ['z', 'w'])),
    ]);
    assert.deepEqual([...log].sort(), ['xyz', 'y', 'zw', 'zyx']);
    assert.equal(locks.size, 0);
  });

  it(`key lock - runs and batches started in any order over shared keys never overlap on a key, all finish, and leave nothing held (seed ${seed})`, { timeout: 60_000 }, async () => {
    const lockKeys = ['a', 'b', 'c', 'd'];
    const opArb = fc.record({ keys: fc.subarray(lockKeys, { minLength: 1 }), how: fc.constantFrom('single', 'batch', 'take'), steps: fc.integer({ min: 0, max: 3 }), startAfter: fc.integer({ min: 0, max: 3 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 10 }), async (ops) => {
        const locks = new KeyLock(100);
        const inside = new Set<string>();
        let finished = 0;
        const body = (held: string[], steps: number) => async () => {
          for (const key of held) {
            assert.ok(!inside.has(key), `${key} entered while held`);
            inside.add(key);
          }
          for (let i = 0; i < steps; i++) await settle();
          for (const key of held) inside.delete(key);
          finished++;
        };
        await Promise.all(
          ops.map(async ({ keys: held, how, steps, startAfter }) => {
            for (let i = 0; i < startAfter; i++) await Promise.resolve();
            if (how === 'single') return locks.run(held[0]!, body([held[0]!], steps));
            // A synchronous take (the replica's merge): on refusal, the caller waits in runAll.
            const release = how === 'take' ? locks.tryTakeAll(held) : undefined;
            if (release === undefined) return locks.runAll(held, body(held, steps));
            try {
              await body(held, steps)();
            } finally {
              release();
            }
          }),
        );
        assert.equal(finished, ops.length);
        assert.equal(locks.size, 0);
      }),
      runs(300),
    );
  });

  it('key lock - a synchronous take gets free keys only, and a run waiting for one starts once it is released', async () => {
    const locks = new KeyLock(3);
    const release = locks.tryTakeAll(['a', 'b']);
    assert.ok(release !== undefined, 'free keys are taken');
    assert.equal(locks.tryTakeAll(['b', 'c']), undefined, 'a key held refuses the whole take');
    assert.equal(locks.tryTakeAll(['c', 'd']), undefined, 'over the limit: refused');
    assert.equal(locks.size, 2, 'a refused take holds nothing');
    const order: string[] = [];
    const waiting = locks.run('b', async () => void order.push('run b'));
    await settle();
    assert.equal(order.length, 0, 'the run waits while b is held');
    order.push('released');
    release!();
    await waiting;
    assert.deepEqual(order, ['released', 'run b']);
    assert.equal(locks.size, 0);
    const again = locks.tryTakeAll(['a', 'b', 'c']);
    assert.ok(again !== undefined, 'free again');
    again!();
  });

  it('key lock - a batch over the limit is refused and releases the locks it took', async () => {
    const locks = new KeyLock(3);
    await assert.rejects(locks.runAll(['a', 'b', 'c', 'd'], async () => 'never'), /busy/);
    assert.equal(locks.size, 0);
    assert.equal(await locks.runAll(['a', 'b', 'c'], async () => 'ran'), 'ran');
  });
});

/** A memory engine that counts its reads per key and the records it writes, and fails the writes of chosen keys. */
class CountingEngine extends MemoryEngine {
  /** Reads per key. */
  readonly readsOf = new Map<string, number>();

  /** Records written, by put or in a putMany that stored its batch. */
  written = 0;

  override async get(key: string): Promise<Uint8Array | undefined> {
    this.readsOf.set(key, (this.readsOf.get(key) ?? 0) + 1);
    return super.get(key);
  }

  override getSync(key: string): Uint8Array | undefined {
    this.readsOf.set(key, (this.readsOf.get(key) ?? 0) + 1);
    return super.getSync(key);
  }

  override async putMany(entries: readonly StorageEntry[]): Promise<void> {
    const failing = entries.find(({ key }) => this.failingKeys.has(key));
    if (failing !== undefined) throw new StorageError(`putMany with ${failing.key} failed (test)`);
    await super.putMany(entries);
    this.written += entries.length;
  }

  override async put(key: string, record: Uint8Array): Promise<void> {
    if (this.failingKeys.has(key)) throw new StorageError(`put of ${key} failed (test)`);
    await super.put(key, record);
    this.written++;
  }

  /** Keys whose write fails (a putMany holding one fails whole). */
  readonly failingKeys = new Set<string>();
}

/** A memory engine whose putMany waits, while gated, until opened. */
class GatedEngine extends MemoryEngine {
  private wait: Promise<void> | undefined;
  private release: () => void = () => {};

  gate(): void {
    this.wait = new Promise((r) => (this.release = r));
  }

  open_(): void {
    this.release();
    this.wait = undefined;
  }

  override async putMany(entries: readonly StorageEntry[]): Promise<void> {
    await this.wait;
    return super.putMany(entries);
  }

  override async put(key: string, record: Uint8Array): Promise<void> {
    await this.wait;
    return super.put(key, record);
  }
}

/** Lets every pending promise chain run (no timers: microtasks and one macrotask turn). */
async function settle(): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
}
