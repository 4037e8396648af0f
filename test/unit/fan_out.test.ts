import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
});
