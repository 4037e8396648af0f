/**
 * Issue 12: conditional writes (KV-If-Absent, KV-If-Match) and serial reads
 * (KV-Serial) through single-decree Paxos among a key's replicas
 * (node/paxos). Clients run compare-and-set loops on a few keys at once
 * (read serially, then write if the version is still the one read) while
 * the bus drops, duplicates and delays messages and nodes crash, restart
 * and are cut off; every history is then checked for linearizability per
 * key (test/helpers/linearizability.ts, Wing and Gong with Lowe's cache).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../src/core/errors.js';
import { fromWallMs } from '../../src/core/hlc.js';
import { PlantedBug } from '../../src/core/paxos.js';
import { ClientOp, Header } from '../../src/protocol/subjects.js';
import { MemoryEngine } from '../../src/storage/memory.js';
import { seededRandom } from '../../src/transport/sim.js';
import { checkLinearizable, formatLinearizability, RegisterOp, RegisterOutcome, type RegisterOperation } from '../helpers/linearizability.js';
import { SimCluster, simSeed } from '../helpers/sim_cluster.js';

const ids = ['n1', 'n2', 'n3'];

describe('conditional writes', () => {
  it('sim paxos - create only, replace only the version read, delete only the version read; 409 says the current context; misuse is 400', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids);
    await c.start();
    const created = await c.requestVia('n1', ClientOp.Put, 'lock', 'a', { [Header.IfAbsent]: 'true' });
    assert.equal(created.code, 200, created.message);
    const again = await c.requestVia('n2', ClientOp.Put, 'lock', 'b', { [Header.IfAbsent]: '1' });
    assert.equal(again.code, ErrorCode.ConditionFailed, 'a second create fails');
    const read = await c.requestVia('n3', ClientOp.Get, 'lock', '', { [Header.Serial]: 'true' });
    assert.equal(read.value, 'a');
    assert.equal(again.header(Header.Context), read.header(Header.Context), 'the 409 carries the current context');
    const replaced = await c.requestVia('n2', ClientOp.Put, 'lock', 'c', { [Header.IfMatch]: read.header(Header.Context)! });
    assert.equal(replaced.code, 200, replaced.message);
    const stale = await c.requestVia('n3', ClientOp.Put, 'lock', 'd', { [Header.IfMatch]: read.header(Header.Context)! });
    assert.equal(stale.code, ErrorCode.ConditionFailed, 'the version read is gone');
    assert.equal((await c.requestVia('n1', ClientOp.Get, 'lock')).value, 'c', 'a plain quorum read sees the committed value');
    const now = await c.requestVia('n1', ClientOp.Get, 'lock', '', { [Header.Serial]: '1' });
    assert.equal((await c.requestVia('n1', ClientOp.Del, 'lock', '', { [Header.IfMatch]: stale.header(Header.Context)! })).code, 200);
    assert.equal(now.header(Header.Context), stale.header(Header.Context));
    assert.equal((await c.requestVia('n2', ClientOp.Get, 'lock')).code, ErrorCode.NotFound);
    const gone = await c.requestVia('n2', ClientOp.Put, 'lock', 'e', { [Header.IfMatch]: now.header(Header.Context)! });
    assert.equal(gone.code, ErrorCode.ConditionFailed, 'no value to match');
    assert.equal(gone.header(Header.Context), undefined, 'and no current context to give');
    assert.equal((await c.requestVia('n3', ClientOp.Put, 'lock', 'f', { [Header.IfAbsent]: 'true' })).code, 200, 'a deleted key can be created again');

    // A prepare answer carries the stored versions and an accepted proposal: a conditional value is at most half the maximum.
    const half = Math.floor((1024 * 1024 - 8192) / 2); // simConfig's limits.valueBytesMax
    const big = await c.requestVia('n1', ClientOp.Put, 'big.lock', 'x'.repeat(half + 1), { [Header.IfAbsent]: 'true' });
    assert.equal(big.code, ErrorCode.TooLarge, big.message);
    assert.match(big.message, /at most half/);
    assert.equal((await c.requestVia('n1', ClientOp.Put, 'big.lock', 'x'.repeat(half), { [Header.IfAbsent]: 'true' })).code, 200, 'half fits');

    for (const [op, headers, why] of [
      [ClientOp.Put, { [Header.IfAbsent]: 'true', [Header.IfMatch]: now.header(Header.Context)! }, /exclude each other/],
      [ClientOp.Del, { [Header.IfAbsent]: 'true' }, /for puts/],
      [ClientOp.Get, { [Header.IfAbsent]: 'true' }, /for puts and deletes/],
      [ClientOp.Put, { [Header.Serial]: 'true' }, /for gets/],
      [ClientOp.Put, { [Header.IfAbsent]: 'maybe' }, /must be 1, 0, true or false/],
      [ClientOp.Put, { [Header.IfMatch]: 'not a context!' }, /not a context/],
      [ClientOp.Put, { [Header.IfAbsent]: 'true', [Header.Context]: now.header(Header.Context)! }, /does not go with a condition/],
    ] as const) {
      const r = await c.requestVia('n1', op, 'lock', op === ClientOp.Put ? 'x' : '', headers);
      assert.equal(r.code, ErrorCode.BadRequest, `${op} ${JSON.stringify(headers)}: ${r.code} ${r.message}`);
      assert.match(r.message, why);
    }
    await c.stop();
  });

  it('sim paxos - a replica back on a wiped store refuses every ballot up to its clock plus the maximum skew (the promises it lost), and conditional writes go on through the others', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids);
    await c.start();
    assert.equal((await c.requestVia('n1', ClientOp.Put, 'promised', 'a', { [Header.IfAbsent]: 'true' })).code, 200);
    // n3 promises a ballot just inside the skew (a proposer whose clock runs ahead), then loses it all.
    const n3 = c.node('n3').node;
    const ahead = { hlc: n3.hlc.acceptableMax(), node: 'n2' };
    assert.equal((await n3.paxos.prepare('promised', ahead)).promised, true);
    await c.clock.run(c.restart('n3', { wipe: true }));
    for (let i = 0; i < 60 && c.node('n3').node.replica.bootstrapping; i++) await c.clock.advance(500);
    const back = c.node('n3').node;
    assert.equal(back.replica.bootstrapping, false, `seed ${seed}: n3 pulled its ranges back`);
    // A ballot lower than the lost promise: without the floor n3 would promise it.
    const lower = { hlc: ahead.hlc - 1, node: 'n1' };
    const refused = await back.paxos.prepare('promised', lower);
    assert.equal(refused.promised, false, `seed ${seed}: a ballot below the lost promise is refused`);
    assert.equal(refused.refusedFor, undefined, 'the floor is not sent (a proposer would move its clock up to it)');
    assert.equal((await back.paxos.propose('promised', lower, { clock: { n1: 99 }, hlc: lower.hlc, writer: 'n1', tombstone: false, value: new Uint8Array([1]) })).accepted, false);
    // Conditional writes go on: the two others make the majority.
    const read = await c.requestVia('n1', ClientOp.Get, 'promised', '', { [Header.Serial]: 'true' });
    assert.equal(read.value, 'a');
    const replaced = await c.requestVia('n3', ClientOp.Put, 'promised', 'b', { [Header.IfMatch]: read.header(Header.Context)! });
    assert.equal(replaced.code, 200, `seed ${seed}: ${replaced.message}`);
    // Past the floor (the maximum skew later), n3 takes part again.
    await c.clock.advance(61_000);
    const later = { hlc: back.hlc.now(), node: 'n1' };
    assert.equal((await back.paxos.prepare('promised', later)).promised, true, 'a ballot past the floor is promised');
    await c.stop();
  });

  it('sim paxos - a replica whose Paxos store alone was lost (its data and metadata kept) refuses the ballots it may have promised', async () => {
    const seed = simSeed();
    const c = new SimCluster(seed, ids);
    await c.start();
    assert.equal((await c.requestVia('n1', ClientOp.Put, 'alone', 'a', { [Header.IfAbsent]: 'true' })).code, 200);
    const n3 = c.node('n3');
    const ahead = { hlc: n3.node.hlc.acceptableMax(), node: 'n2' };
    assert.equal((await n3.node.paxos.prepare('alone', ahead)).promised, true);
    // Restarted on its data and metadata, with an empty Paxos store (the lmdb paxos/ directory removed).
    const { engine, meta, hintEngine } = n3;
    await c.crash('n3');
    const back = (await c.clock.run(c.startOne('n3', engine, meta, hintEngine, new MemoryEngine()))).node;
    assert.equal(back.replica.bootstrapping, false, 'its data is whole: no refill');
    assert.equal((await back.paxos.prepare('alone', { hlc: ahead.hlc - 1, node: 'n1' })).promised, false, `seed ${seed}: a ballot below the lost promise is refused`);
    // Past the floor it promises again (and keeps state); a plain restart on that store sets no floor.
    await c.clock.advance(70_000);
    assert.equal((await back.paxos.prepare('alone', { hlc: back.hlc.now(), node: 'n1' })).promised, true);
    await c.crash('n3');
    const kept = c.node('n3').paxosEngine;
    const again = (await c.clock.run(c.startOne('n3', engine, meta, hintEngine, kept))).node;
    // A ballot from a proposer's clock now: below any floor (its clock plus the skew), so promised only without one.
    const fresh = { hlc: fromWallMs(c.node('n3').clock.nowMs()), node: 'n1' };
    assert.equal((await again.paxos.prepare('other', fresh)).promised, true, 'a restart on its own Paxos store refuses nothing new');
    await c.stop();
  });

  // The promise holds on every seed; GODDB_PAXOS_SEEDS=500 runs the long check (about 1 s a seed).
  const seeds = Number(process.env['GODDB_PAXOS_SEEDS'] ?? 8);
  it(`sim paxos - compare-and-set loops under drops, duplicates, crashes and partitions are linearizable per key (${seeds} seeds; GODDB_PAXOS_SEEDS)`, async () => {
    const first = simSeed();
    for (let seed = first; seed < first + seeds; seed++) {
      const run = await casWorkload(seed);
      const count = (outcome: RegisterOutcome) => run.writes.filter((o) => o.outcome === outcome).length;
      if (seeds <= 10 || seed === first + seeds - 1) console.log(`# seed ${seed}: ${run.history.length} operations, ${run.writes.length} conditional writes: ${count(RegisterOutcome.Ok)} ok, ${count(RegisterOutcome.Conflict)} refused (409), ${count(RegisterOutcome.Unknown)} unknown`);
      assert.equal(run.report.verdict, 'ok', `seed ${seed} (replay with GODDB_SEED=${seed} GODDB_PAXOS_SEEDS=1):\n${formatLinearizability(run.report, seed)}`);
      assert.ok(count(RegisterOutcome.Ok) >= 20, `seed ${seed}: only ${count(RegisterOutcome.Ok)} conditional writes succeeded`);
      assert.ok(count(RegisterOutcome.Conflict) >= 5, `seed ${seed}: the clients competed (${count(RegisterOutcome.Conflict)} refused)`);
    }
  });

  for (const bug of Object.values(PlantedBug)) {
    it(`sim paxos - the checker finds a bug planted in a copy of the protocol: ${bug}`, async () => {
      const first = simSeed();
      const found: number[] = [];
      for (let seed = first; seed < first + 5 && found.length === 0; seed++) {
        const run = await casWorkload(seed, bug);
        if (run.report.verdict === 'violation') found.push(seed);
      }
      console.log(`# ${bug}: a violation found with seed ${found[0] ?? 'none'} (of seeds ${first} to ${first + 4})`);
      assert.equal(found.length, 1, `${bug}: no violation in 5 seeds from ${first}`);
    });
  }
});

/**
 * Five clients' compare-and-set loops on two keys (a serial read, then a
 * write conditional on what it read) under drops, duplicates and slow
 * messages, with four crashes or partitions of a node; then a final serial
 * read of each key. The history and its linearizability verdict.
 */
async function casWorkload(seed: number, paxosBug?: PlantedBug): Promise<{ history: RegisterOperation[]; writes: RegisterOperation[]; report: ReturnType<typeof checkLinearizable> }> {
  const random = seededRandom(seed ^ 0x5eed);
  const c = new SimCluster(seed, ids, { requestTimeoutMs: 500 }, { bus: { dropRate: 0.02, duplicateRate: 0.01, slowRate: 0.02, slowDelayMsMax: 300 }, ...(paxosBug ? { paxosBug } : {}) });
  await c.start();
  const keys = ['ctr.a', 'ctr.b'];
  const history: RegisterOperation[] = [];
  const startMs = c.clock.nowMs();
  let running = true;
  let seq = 0;
  const sleep = (ms: number) => new Promise<void>((r) => c.clock.setTimer(ms, r));
  const record = (entry: Omit<RegisterOperation, 'id'>) => history.push({ id: history.length + 1, ...entry });
  const loop = async (name: string): Promise<void> => {
    const client = c.connectClient(name, 3_000);
    while (running) {
      const key = keys[Math.floor(random() * keys.length)]!;
      let invokeMs = c.clock.nowMs() - startMs;
      const read = await client.request(ClientOp.Get, key, '', { [Header.Serial]: 'true' });
      const readOk = read.code === 200 || read.code === ErrorCode.NotFound;
      record({ client: name, key, op: RegisterOp.Get, invokeMs, completeMs: c.clock.nowMs() - startMs, outcome: readOk ? RegisterOutcome.Ok : RegisterOutcome.Unknown, ...(read.code === 200 ? { value: read.value } : {}), note: `${read.code} ${read.message.slice(0, 120)}` });
      if (!readOk) {
        await sleep(Math.floor(random() * 50));
        continue;
      }
      const value = `${name}.${++seq}`;
      const conditional: Record<string, string> = read.code === 200 ? { [Header.IfMatch]: read.header(Header.Context)! } : { [Header.IfAbsent]: 'true' };
      invokeMs = c.clock.nowMs() - startMs;
      const dups = client.transport.duplicatesSent;
      const w = await client.request(ClientOp.Put, key, value, conditional);
      // A duplicated request may have run twice: its own first run can be why the second failed.
      const once = client.transport.duplicatesSent === dups;
      const outcome = w.code === 200 && once ? RegisterOutcome.Ok : w.code === ErrorCode.ConditionFailed && once ? RegisterOutcome.Conflict : RegisterOutcome.Unknown;
      record({
        client: name,
        key,
        op: read.code === 200 ? RegisterOp.PutIfMatch : RegisterOp.PutIfAbsent,
        ...(read.code === 200 ? { expected: read.value } : {}),
        value,
        invokeMs,
        completeMs: c.clock.nowMs() - startMs,
        outcome,
        note: `${w.code} ${w.message.slice(0, 120)}`,
      });
      await sleep(Math.floor(random() * 20));
    }
  };
  const clients = Array.from({ length: 5 }, (_, i) => loop(`c${i + 1}`));
  const nemesis = (async () => {
    for (let round = 0; round < 4; round++) {
      await sleep(3_000 + Math.floor(random() * 2_000));
      const victim = ids[Math.floor(random() * ids.length)]!;
      if (random() < 0.5) {
        await c.crash(victim);
        await sleep(1_000 + Math.floor(random() * 2_000));
        await c.restart(victim, { wipe: false });
      } else {
        c.bus.isolate(victim, ids.filter((id) => id !== victim));
        await sleep(1_000 + Math.floor(random() * 2_000));
        c.bus.heal();
      }
    }
    await sleep(3_000);
    running = false;
  })();
  await c.clock.run(Promise.all([nemesis, ...clients]));
  // After the faults: every key read serially once more, when nothing else runs.
  // (The bus still drops messages: a read whose request or reply is lost is asked again.)
  for (const key of keys) {
    let r = { code: 0, message: '' } as Awaited<ReturnType<SimCluster['request']>>;
    for (let attempt = 0; attempt < 5 && r.code !== 200 && r.code !== ErrorCode.NotFound; attempt++) {
      const invokeMs = c.clock.nowMs() - startMs;
      r = await c.request(ClientOp.Get, key, '', { [Header.Serial]: 'true' });
      const known = r.code === 200 || r.code === ErrorCode.NotFound;
      record({ client: 'final', key, op: RegisterOp.Get, invokeMs, completeMs: c.clock.nowMs() - startMs, outcome: known ? RegisterOutcome.Ok : RegisterOutcome.Unknown, ...(r.code === 200 ? { value: r.value } : {}) });
    }
    assert.ok(r.code === 200 || r.code === ErrorCode.NotFound, `seed ${seed}: the final serial read of ${key}: ${r.code} ${r.message}`);
  }
  await c.stop();
  return { history, writes: history.filter((o) => o.op !== RegisterOp.Get), report: checkLinearizable(history) };
}
