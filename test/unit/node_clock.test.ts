import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../helpers/fake_clock.js';
import { NodeClock } from '../helpers/node_clock.js';

describe('simulated node clock', () => {
  it('node clock - the wall clock is shared time plus an offset that can jump either way; timers and the monotonic clock ignore it', async () => {
    const shared = new FakeClock(1_000_000);
    const clock = new NodeClock(shared, -5_000);
    assert.equal(clock.nowMs(), 995_000);
    let fired = 0;
    clock.setTimer(100, () => fired++);
    clock.offsetMs = 30_000; // a jump forward
    await shared.advance(99);
    assert.equal(fired, 0, 'a jump of the wall clock does not fire a timer early');
    await shared.advance(1);
    assert.equal(fired, 1);
    assert.equal(clock.nowMs(), 1_030_100);
    clock.offsetMs = -30_000; // and back
    assert.equal(clock.nowMs(), 970_100);
    assert.equal(clock.monotonicMs(), 100, 'monotonic time starts with the process and never jumps');
  });

  it('node clock - a halted clock (a crashed process) fires none of its timers, old or new', async () => {
    const shared = new FakeClock();
    const clock = new NodeClock(shared);
    let fired = 0;
    clock.setTimer(10, () => fired++);
    clock.halt();
    clock.setTimer(10, () => fired++);
    await shared.advance(100);
    assert.equal(fired, 0);
  });
});
