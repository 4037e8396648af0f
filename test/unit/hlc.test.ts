import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { acceptableMax, fromWallMs, observe, physicalMs, reserve, restart, tick } from '../../src/core/hlc.js';
import { ClockSkewError } from '../../src/core/errors.js';
import { HybridClock, hlcMetaName, hlcReserveWindowMs } from '../../src/node/clock/hybrid_clock.js';
import { MemoryMetaStore } from '../../src/storage/meta.js';
import { FakeClock } from '../helpers/fake_clock.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_130);
const runs = (numRuns: number) => ({ seed, numRuns });

describe('hybrid logical clock - pure rules', () => {
  it('hlc - tick follows the wall clock and counts within one millisecond', () => {
    assert.equal(tick(0, 5), 5000);
    assert.equal(tick(5000, 5), 5001);
    assert.equal(tick(5999, 5), 6000, 'the logical part carries into the physical one');
    assert.equal(tick(9000, 5), 9001, 'a wall clock that went back does not move the clock back');
  });

  it(`hlc - tick is strictly increasing, at least the wall clock, a safe integer (seed ${seed})`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 52 }), fc.integer({ min: 0, max: 4_000_000_000_000 }), (last, wall) => {
        const t = tick(last, wall);
        assert.ok(t > last);
        assert.ok(t >= fromWallMs(wall));
        assert.ok(Number.isSafeInteger(t));
        assert.ok(physicalMs(t) >= wall);
      }),
      runs(500),
    );
  });

  it('hlc - observe takes the later timestamp within the skew and refuses one beyond it', () => {
    assert.deepEqual(observe(1000, 5000, 1, 10), { ok: true, last: 5000 });
    assert.deepEqual(observe(9000, 5000, 1, 10), { ok: true, last: 9000 });
    assert.equal(observe(0, acceptableMax(1, 10), 1, 10).ok, true, 'exactly the skew ahead is accepted');
    const r = observe(0, acceptableMax(1, 10) + 1, 1, 10);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.aheadMs, 11);
    assert.equal(observe(0, Number.MAX_SAFE_INTEGER, 1_700_000_000_000, 60_000).ok, false, 'a counter of 2^53-1 is refused');
  });

  it('hlc - a restart starts past the persisted reservation even with the wall clock behind it', () => {
    assert.equal(restart(undefined, 7), 7000);
    assert.equal(restart(90_000, 7), 90_000);
    assert.equal(reserve(5000, 6000, 10), undefined, 'covered');
    assert.equal(reserve(6001, 6000, 10), 16_001);
  });
});

describe('hybrid logical clock - node shell', () => {
  it('hlc - a node restarted with its wall clock 30 s behind never reissues a timestamp', () => {
    const wall = new FakeClock(1_700_000_000_000);
    const meta = new MemoryMetaStore();
    const first = new HybridClock(wall, meta, 60_000);
    let issued = 0;
    for (let i = 0; i < 5000; i++) issued = Math.max(issued, first.now());
    // Crash: the process is gone; its wall clock comes back 30 s behind.
    const behind = new FakeClock(1_700_000_000_000 - 30_000);
    const second = new HybridClock(behind, meta, 60_000);
    assert.ok(second.now() > issued, 'the first timestamp after the restart is above every one issued before');
    assert.ok((meta.read(hlcMetaName) ?? 0) >= issued);
  });

  it('hlc - the high-water mark is written once per reservation window, not per timestamp', async () => {
    const wall = new FakeClock(1_700_000_000_000);
    let writes = 0;
    const meta = new MemoryMetaStore();
    const counting = { read: (n: string) => meta.read(n), write: (n: string, v: number) => { writes++; meta.write(n, v); }, readText: () => undefined, writeText: () => undefined };
    const clock = new HybridClock(wall, counting, 60_000);
    for (let i = 0; i < 1000; i++) clock.now();
    assert.equal(writes, 1);
    await wall.advance(hlcReserveWindowMs + 1);
    clock.now();
    assert.equal(writes, 2);
  });

  it('hlc - observe refuses a timestamp beyond the maximum skew and leaves the clock alone', () => {
    const wall = new FakeClock(1_700_000_000_000);
    const clock = new HybridClock(wall, new MemoryMetaStore(), 60_000);
    const before = clock.peek();
    assert.throws(() => clock.observe(fromWallMs(1_700_000_000_000 + 61_000), 'test'), ClockSkewError);
    assert.equal(clock.peek(), before);
    clock.observe(fromWallMs(1_700_000_000_000 + 59_000), 'test');
    assert.ok(clock.now() > fromWallMs(1_700_000_000_000 + 59_000), 'an accepted timestamp moves the clock past it');
  });
});
