import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { fanOut, FanOutOutcome } from '../../src/node/coordinator/fan_out.js';
import { FakeClock } from '../helpers/fake_clock.js';

type Behaviour = { afterMs: number; fail?: boolean };

/** A call that answers (or fails) after a fixed delay on the fake clock, recording who was called. */
function scripted(clock: FakeClock, behaviour: Record<string, Behaviour>) {
  const called: string[] = [];
  const call = (node: string) => {
    called.push(node);
    const b = behaviour[node]!;
    return new Promise<string>((resolve, reject) => clock.setTimer(b.afterMs, () => (b.fail ? reject(new Error(`${node} failed`)) : resolve(node))));
  };
  return { called, call };
}

/**
 * A process's clock that can stop: while stopped (SIGSTOP) nothing runs;
 * on `resumeAt` every timer due by then fires, late, before anything else,
 * as Node runs overdue timers before it reads the socket.
 */
class PausableClock implements Clock {
  private now = 0;
  private readonly timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  nowMs(): number {
    return this.now;
  }
  monotonicMs(): number {
    return this.now;
  }
  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const t = { at: this.now + delayMs, fn, cancelled: false };
    this.timers.push(t);
    return { cancel: () => (t.cancelled = true) };
  }
  resumeAt(ms: number): void {
    this.now = ms;
    for (const t of this.timers.splice(0).sort((a, b) => a.at - b.at)) {
      if (t.cancelled) continue;
      if (t.at <= ms) t.fn();
      else this.timers.push(t);
    }
  }
}

/** Calls that answer only when the test says so, recording who was called. */
function manual() {
  const answer = new Map<string, () => void>();
  const called: string[] = [];
  const call = (node: string) => {
    called.push(node);
    return new Promise<string>((resolve) => answer.set(node, () => resolve(node)));
  };
  return { answer, called, call };
}

const outcomeBy = async <T>(p: Promise<{ outcome: T }>): Promise<T | 'pending'> =>
  Promise.race([p.then((r) => r.outcome), new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);

describe('fan-out', () => {
  it('fan-out - a write asks every target and wins at W', async () => {
    const clock = new FakeClock();
    const s = scripted(clock, { a: { afterMs: 1 }, b: { afterMs: 2 }, c: { afterMs: 50 } });
    const { quorum, all } = fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 1000 }, clock, s.call);
    const q = await clock.run(quorum);
    assert.equal(q.outcome, FanOutOutcome.Won);
    assert.deepEqual([...q.ok.keys()], ['a', 'b']);
    assert.deepEqual(s.called, ['a', 'b', 'c']);
    assert.equal((await clock.run(all)).ok.size, 3, 'all waits for the slow one');
  });

  it('fan-out - a read asks R targets and calls a spare only when one fails', async () => {
    const clock = new FakeClock();
    const s = scripted(clock, { a: { afterMs: 1 }, b: { afterMs: 2, fail: true }, c: { afterMs: 1 } });
    const q = await clock.run(fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 1000, initial: 2 }, clock, s.call).quorum);
    assert.equal(q.outcome, FanOutOutcome.Won);
    assert.deepEqual(s.called, ['a', 'b', 'c']);
    const healthy = scripted(clock, { a: { afterMs: 1 }, b: { afterMs: 2 }, c: { afterMs: 1 } });
    await clock.run(fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 1000, initial: 2 }, clock, healthy.call).all);
    assert.deepEqual(healthy.called, ['a', 'b'], 'no spare when the first R answer');
  });

  it('fan-out - a slow replica gets a speculative spare after speculativeMs', async () => {
    const clock = new FakeClock();
    const s = scripted(clock, { a: { afterMs: 1 }, b: { afterMs: 5000 }, c: { afterMs: 1 } });
    const start = clock.nowMs();
    const q = await clock.run(fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 1000, initial: 2, speculativeMs: 50 }, clock, s.call).quorum);
    assert.equal(q.outcome, FanOutOutcome.Won);
    assert.equal(clock.nowMs() - start, 51, 'won when the spare answered');
  });

  it('fan-out - the speculative spare is not asked when the first replies came in during a stall', async () => {
    const clock = new PausableClock();
    const m = manual();
    const { quorum } = fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 1000, initial: 2, speculativeMs: 50 }, clock, m.call);
    // Stopped at 0, resumed at 400: the speculative timer fires 350 ms late, before the replies are read.
    clock.resumeAt(400);
    assert.deepEqual(m.called, ['a', 'b'], 'a late speculative timer waits its lateness again');
    m.answer.get('a')!();
    m.answer.get('b')!();
    assert.equal(await outcomeBy(quorum), FanOutOutcome.Won);
    clock.resumeAt(1000);
    assert.deepEqual(m.called, ['a', 'b'], 'no spare once the quorum is won');

    // Still slow after the stall's length: the spare is asked then.
    const slow = manual();
    fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 5000, initial: 2, speculativeMs: 50 }, clock, slow.call);
    clock.resumeAt(1000 + 50 + 200); // 200 ms late
    assert.deepEqual(slow.called, ['a', 'b']);
    clock.resumeAt(1000 + 50 + 200 + 200);
    assert.deepEqual(slow.called, ['a', 'b', 'c']);

    // A little late (under stallMsMin) is no stall: the spare is asked at once.
    const busy = manual();
    fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 5000, initial: 2, speculativeMs: 50 }, clock, busy.call);
    clock.resumeAt(clock.nowMs() + 50 + 40);
    assert.deepEqual(busy.called, ['a', 'b', 'c']);
  });

  it('fan-out - lost as soon as too few can still answer; timeout at the deadline', async () => {
    const clock = new FakeClock();
    const s = scripted(clock, { a: { afterMs: 1, fail: true }, b: { afterMs: 2, fail: true }, c: { afterMs: 500 } });
    const lost = await clock.run(fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 1000 }, clock, s.call).quorum);
    assert.equal(lost.outcome, FanOutOutcome.Lost);
    assert.equal(lost.failed.size, 2);
    const slow = scripted(clock, { a: { afterMs: 5000 }, b: { afterMs: 5000 } });
    const timedOut = await clock.run(fanOut(['a', 'b'], { needed: 1, timeoutMs: 1000 }, clock, slow.call).quorum);
    assert.equal(timedOut.outcome, FanOutOutcome.Timeout);
  });

  it('fan-out - no targets is lost at once', async () => {
    const clock = new FakeClock();
    const q = await clock.run(fanOut([], { needed: 1, timeoutMs: 1000 }, clock, async () => 'x').quorum);
    assert.equal(q.outcome, FanOutOutcome.Lost);
  });

  it('fan-out - a stall of the coordinator itself (SIGSTOP) does not time out replies that came in meanwhile', async () => {
    const clock = new PausableClock();
    const m = manual();
    const { quorum } = fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 1000 }, clock, m.call);
    // Stopped at 0, resumed at 2,400: the deadline fires 1,400 ms late, before the replies are read.
    clock.resumeAt(2400);
    assert.equal(await outcomeBy(quorum), 'pending', 'the late deadline waits as long again');
    m.answer.get('a')!();
    m.answer.get('b')!();
    assert.equal(await outcomeBy(quorum), FanOutOutcome.Won);

    // Without replies it still times out, once the stall's length has passed too.
    const silent = manual();
    const second = fanOut(['a', 'b'], { needed: 2, timeoutMs: 1000 }, clock, silent.call).quorum;
    clock.resumeAt(2400 + 1000 + 500); // 500 ms late: a stall
    assert.equal(await outcomeBy(second), 'pending');
    clock.resumeAt(2400 + 1000 + 500 + 499);
    assert.equal(await outcomeBy(second), 'pending');
    clock.resumeAt(2400 + 1000 + 500 + 500);
    assert.equal(await outcomeBy(second), FanOutOutcome.Timeout);

    // The wait after a stall is given once: late again (a loop that stays late), it times out.
    const twice = manual();
    const fourth = fanOut(['a', 'b'], { needed: 2, timeoutMs: 1000 }, clock, twice.call).quorum;
    const startedMs = clock.nowMs();
    clock.resumeAt(startedMs + 1000 + 300); // 300 ms late: waits 300 more
    assert.equal(await outcomeBy(fourth), 'pending');
    clock.resumeAt(startedMs + 1000 + 300 + 300 + 250); // late again by 250 ms
    assert.equal(await outcomeBy(fourth), FanOutOutcome.Timeout);

    // A timer a little late (a busy event loop, under stallMsMin) is no stall: the deadline holds.
    const busy = manual();
    const third = fanOut(['a', 'b'], { needed: 1, timeoutMs: 1000 }, clock, busy.call).quorum;
    clock.resumeAt(clock.nowMs() + 1050);
    assert.equal(await outcomeBy(third), FanOutOutcome.Timeout);
  });
});
