import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { BadRequestError, QuorumNotMetError } from '../../src/core/errors.js';
import { noPending, placement } from '../../src/core/placement.js';
import { buildRing, keyHash } from '../../src/core/ring.js';
import type { Version } from '../../src/core/version.js';
import { decode, encode, Kind, type ReplicaPutItem } from '../../src/protocol/codec.js';
import { parseRingReport } from '../../src/protocol/placement_report.js';
import { clusterStatus } from '../../src/client/ring_status.js';
import type { NodeInfo } from '../../src/client/nodes.js';
import { parseSloppyHeader } from '../../src/node/api/client_api.js';
import { parseWorkerArgs } from '../../src/cli/worker_flags.js';
import { loadConfig } from '../../src/config/load.js';
import { HybridClock } from '../../src/node/clock/hybrid_clock.js';
import { Coordinator } from '../../src/node/coordinator/coordinator.js';
import { decodeHint, encodeHint, HintStore, hintStorageKey } from '../../src/node/hints/hint_store.js';
import { HintedHandoff } from '../../src/node/hints/hinted_handoff.js';
import type { Membership } from '../../src/node/membership/membership.js';
import type { Replica } from '../../src/node/replica/replica.js';
import { MemoryEngine } from '../../src/storage/memory.js';
import { MemoryMetaStore } from '../../src/storage/meta.js';
import type { Reply, Transport } from '../../src/transport/transport.js';
import { FakeClock } from '../helpers/fake_clock.js';

const silent = pino({ level: 'silent' });
const members = ['a', 'b', 'c', 'd', 'e'];
const ring = buildRing(members.map((id) => ({ id, virtualNodes: 8 })));

/** A coordinator ('x', in no preference list) over a fake bus whose replicas acknowledge every put item; `down` are down. */
function harness(down: readonly string[], opts: { sloppyQuorum?: boolean; downSinceMs?: number } = {}) {
  const clock = new FakeClock();
  const sent: { node: string; item: ReplicaPutItem }[] = [];
  const transport = {
    async request(subject: string, data: Uint8Array): Promise<Reply> {
      const node = subject.split('.')[3]!;
      const { items } = decode(data, Kind.ReplicaPut);
      for (const item of items) sent.push({ node, item });
      return { data: encode({ kind: Kind.ReplicaPutReply, results: items.map(() => ({ ok: true })) }), header: () => undefined };
    },
  } as unknown as Transport;
  const membership = {
    ring: () => ring,
    isUp: (id: string) => !down.includes(id),
    pendingOwners: noPending,
    downSinceMs: (id: string) => (down.includes(id) ? (opts.downSinceMs ?? clock.monotonicMs()) : undefined),
    members: () => [],
  } as unknown as Membership;
  const hlc = new HybridClock(clock, new MemoryMetaStore(), 60_000);
  const coordinator = new Coordinator(
    { self: 'x', cluster: 't', replication: 3, requestTimeoutMs: 1000, readSpeculativeMs: 50, conflictPolicy: 'lww', recordBytesMax: 1 << 20, sloppyQuorum: opts.sloppyQuorum ?? true, hintWindowMs: 60_000 },
    transport, membership, {} as Replica, clock, hlc, silent,
  );
  return { clock, sent, coordinator };
}

const placed = (key: string, down: readonly string[]) => placement(ring, keyHash(key), 3, (id) => !down.includes(id), noPending);

describe('sloppy quorum', () => {
  it('hints - a down replica\'s fallback gets the write as a hint, and its ack counts toward W', async () => {
    const p = placed('user.1', []);
    const down = [p.replicas[1]!.node];
    const { sent, coordinator } = harness(down);
    const fallback = placed('user.1', down).fallbacks[0]!;
    const res = await coordinator.write('user.1', new TextEncoder().encode('v'), 3);
    assert.equal(res.acks, 3, 'two replicas and the hint');
    assert.equal(res.asked, 3);
    const hinted = sent.filter((s) => s.item.hintFor !== undefined);
    assert.deepEqual(hinted.map((s) => [s.node, s.item.hintFor, s.item.fresh]), [[fallback.node, down[0], undefined]], 'one hint, not fresh, on the fallback');
    assert.ok(!sent.some((s) => s.node === down[0]), 'the down replica is not asked');
    assert.equal(coordinator.hintsSent, 1);
  });

  it('hints - every down replica is hinted even when W is met without the hints', async () => {
    const p = placed('user.2', []);
    const down = [p.replicas[2]!.node];
    const { sent, coordinator } = harness(down);
    await coordinator.write('user.2', new TextEncoder().encode('v'), 1);
    assert.equal(sent.filter((s) => s.item.hintFor === down[0]).length, 1);
  });

  it('hints - under strict quorum the down replica still gets its hint, which is not counted toward W', async () => {
    const p = placed('user.5', []);
    const down = [p.replicas[1]!.node];
    const { sent, coordinator } = harness(down, { sloppyQuorum: false });
    const res = await coordinator.write('user.5', new TextEncoder().encode('v'), 2);
    assert.deepEqual([res.acks, res.asked], [2, 2], 'the two live replicas only');
    await coordinator.drain();
    assert.equal(sent.filter((s) => s.item.hintFor === down[0]).length, 1, 'the hint went to the fallback all the same');
  });

  it('hints - strict quorum refuses (503) when too few replicas are up, per config or per request', async () => {
    const p = placed('user.3', []);
    const down = [p.replicas[0]!.node];
    const strict = harness(down, { sloppyQuorum: false });
    await assert.rejects(strict.coordinator.write('user.3', new Uint8Array(1), 3), (e: unknown) => e instanceof QuorumNotMetError && /2 of 3 replicas up, W=3 needed/.test(e.message));
    assert.equal(strict.sent.length, 0);
    const perRequest = harness(down, { sloppyQuorum: true });
    await assert.rejects(perRequest.coordinator.write('user.3', new Uint8Array(1), 3, undefined, undefined, { sloppy: false }), QuorumNotMetError);
    const sloppy = harness(down, { sloppyQuorum: false });
    assert.equal((await sloppy.coordinator.write('user.3', new Uint8Array(1), 3, undefined, undefined, { sloppy: true })).acks, 3);
  });

  it('hints - no hint for a replica down longer than the hint window', async () => {
    const p = placed('user.4', []);
    const down = [p.replicas[1]!.node];
    const { sent, coordinator, clock } = harness(down, { downSinceMs: 0 });
    await clock.advance(120_000);
    const res = await coordinator.write('user.4', new Uint8Array(1), 2);
    assert.equal(res.asked, 2);
    assert.equal(sent.filter((s) => s.item.hintFor !== undefined).length, 0);
    await assert.rejects(coordinator.write('user.4', new Uint8Array(1), 3), QuorumNotMetError);
  });

  it('hints - KV-Sloppy takes 1, 0, true or false and refuses anything else with 400', () => {
    assert.equal(parseSloppyHeader(undefined), undefined);
    for (const v of ['1', 'true', 'TRUE', ' 1 ']) assert.equal(parseSloppyHeader(v), true, v);
    for (const v of ['0', 'false', 'False']) assert.equal(parseSloppyHeader(v), false, v);
    for (const v of ['', 'yes', '2', 'on', 'truee']) assert.throws(() => parseSloppyHeader(v), BadRequestError, JSON.stringify(v));
  });

  it('hints - the hints section comes from flags and the environment', () => {
    const flags = loadConfig({ flags: parseWorkerArgs(['--sloppy-quorum', 'false', '--hint-window', '1h', '--hints-bytes-max', '1MiB']), env: {} });
    assert.deepEqual(flags.hints, { sloppyQuorum: false, windowMs: 3_600_000, bytesMax: 1024 * 1024 });
    const env = loadConfig({ flags: {}, env: { GODDB_SLOPPY_QUORUM: 'false', GODDB_HINT_WINDOW_MS: '30m', GODDB_HINTS_BYTES_MAX: '1024' } });
    assert.deepEqual(env.hints, { sloppyQuorum: false, windowMs: 1_800_000, bytesMax: 1024 });
  });
});

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const version = (hlc: number, value: string): Version => ({ clock: { w: hlc }, hlc, writer: 'w', tombstone: false, value: new TextEncoder().encode(value) });

describe('hint store', () => {
  it('hints - hints of one owner and key merge, storage keys stay short, records round-trip', async () => {
    const clock = new FakeClock();
    const store = new HintStore(new MemoryEngine(), { windowMs: 60_000, bytesMax: 1 << 20, recordBytesMax: 1 << 20 }, clock, silent);
    await store.open();
    const key = 'k'.repeat(1024);
    await store.store('n3', key, [version(1, 'a')]);
    await store.store('n3', key, [version(2, 'b')]);
    await store.store('n4', key, [version(1, 'a')]);
    assert.deepEqual(Object.fromEntries(store.pending()), { n3: 1, n4: 1 });
    assert.ok(hintStorageKey('n3', key).length < 100);
    const hints = [];
    for await (const h of store.scan()) hints.push(h);
    const n3 = hints.find((h) => h.owner === 'n3')!;
    assert.equal(n3.key, key);
    assert.deepEqual(n3.versions.map((v) => v.hlc), [2], 'the later version superseded the earlier one');
    assert.equal(decodeHint(new Uint8Array([1, 2, 3])), undefined);
    assert.deepEqual(decodeHint(encodeHint(n3))?.key, key);
  });

  it('hints - a version merged into a held hint is kept its whole window (the window counts from the newest version)', async () => {
    const clock = new FakeClock();
    const store = new HintStore(new MemoryEngine(), { windowMs: 60_000, bytesMax: 1 << 20, recordBytesMax: 1 << 20 }, clock, silent);
    await store.open();
    await store.store('n3', 'k', [version(1, 'a')]);
    await clock.advance(50_000);
    await store.store('n3', 'k', [version(2, 'b')]);
    await clock.advance(50_000); // the first version is 100 s old, the newest 50 s
    const [hint] = await all(store.scan());
    assert.deepEqual(hint!.versions.map((v) => v.hlc), [2]);
    assert.equal(store.expired(hint!), false, 'the version merged 50 s ago is within the 60 s window');
    await clock.advance(11_000);
    assert.equal(store.expired(hint!), true);
    await store.store('n3', 'k', [version(1, 'a')]); // adds nothing: the hint's time stays
    const [again] = await all(store.scan());
    assert.equal(store.expired(again!), true, 'a merge that adds nothing does not refresh the hint');
  });

  it('hints - a delivered hint is deleted only if unchanged since read, and the byte cap refuses new hints', async () => {
    const clock = new FakeClock();
    const store = new HintStore(new MemoryEngine(), { windowMs: 60_000, bytesMax: 400, recordBytesMax: 1 << 20 }, clock, silent);
    await store.open();
    await store.store('n3', 'k', [version(1, 'a')]);
    const [read] = await all(store.scan());
    await store.store('n3', 'k', [version(2, 'b')]);
    assert.equal(await store.delivered(read!), false, 'a newer hint merged meanwhile stays');
    assert.equal(store.pendingTotal, 1);
    const [again] = await all(store.scan());
    assert.equal(await store.delivered(again!), true);
    assert.equal(store.pendingTotal, 0);
    assert.equal(store.bytesHeld, 0);
    await store.store('n3', 'k1', [version(1, 'x'.repeat(100))]);
    await assert.rejects(store.store('n3', 'k2', [version(1, 'x'.repeat(300))]), /hint store full/);
    assert.equal(store.dropped.full, 1);
  });

  it('hints - stop() ends the pacing wait after a batch at once: a low rate does not hold a shutdown', async () => {
    const clock = new FakeClock();
    const store = new HintStore(new MemoryEngine(), { windowMs: 60_000, bytesMax: 1 << 20, recordBytesMax: 1 << 20 }, clock, silent);
    await store.open();
    for (let i = 0; i < 3; i++) await store.store('o1', `k${i}`, [version(1 + i, 'v'.repeat(1000))]);
    const sent: string[] = [];
    const membership = { isUp: () => true, stateOf: () => 'up', ring: () => buildRing([{ id: 'o1', virtualNodes: 1 }]), futureRing: () => buildRing([{ id: 'o1', virtualNodes: 1 }]) } as unknown as Pick<Membership, 'isUp' | 'stateOf' | 'ring' | 'futureRing'>;
    // 10 bytes per second: the pause after one batch of ~3 KB is about five minutes.
    const handoff = new HintedHandoff({ self: 'x', bytesPerSecond: 10, windowMs: 60_000 }, store, { put: async (_n: string, key: string) => void sent.push(key) }, membership, clock, silent);
    const round = handoff.runOnce();
    await clock.advance(10);
    assert.equal(sent.length, 3, 'the batch went');
    let stopped = false;
    const stopping = handoff.stop().then(() => (stopped = true));
    await clock.advance(1);
    assert.equal(stopped, true, 'stop() did not wait out the pacing');
    await Promise.all([round, stopping]);
    assert.equal(store.pending().get('o1') ?? 0, 0, 'the delivered hints were deleted');
  });

  it('hints - the ring report carries hints per owner, and goddb status sums them per member', () => {
    const report = parseRingReport({ replication: 3, settled: true, members: [{ id: 'n3', status: 'down', virtualNodes: 8, owns: 60 }], hints: { n3: 4, bad: -1, worse: 'x' } });
    assert.deepEqual(report?.hints, { n3: 4 });
    assert.equal(parseRingReport({ replication: 3, settled: true, members: [], hints: [1] })?.hints, undefined);
    const node = (nodeId: string, hints: Record<string, number>): NodeInfo => ({ nodeId, cluster: 'c', ring: { replication: 3, settled: true, members: [{ id: 'n1', status: 'up', virtualNodes: 8, owns: 60 }, { id: 'n3', status: 'down', virtualNodes: 8, owns: 60 }], hints } }) as unknown as NodeInfo;
    const status = clusterStatus([node('n1', { n3: 4 }), node('n2', { n3: 3 })]);
    assert.equal(status.members.find((m) => m.id === 'n3')?.hints, 7);
    assert.equal(status.members.find((m) => m.id === 'n1')?.hints, 0);
  });
});
