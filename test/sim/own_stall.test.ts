/**
 * A node that was itself stalled (SIGSTOP, a stuck event loop) does not
 * take its own silence for its peers': resumed, it handles the requests
 * that waited for it before the heartbeats that arrived meanwhile, and
 * until then every peer looked down to it (the chaos test saw 503 "1 of 3
 * replicas up" from the paused node on every resume). Silence is counted
 * only while the node could hear: the peers it heard before the stall are
 * up at the moment it resumes, a peer that was already silent before stays
 * down, and a peer that died during the stall goes down a failure timeout
 * after the resume.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { initialTokens } from '../../src/core/tokens.js';
import { Membership } from '../../src/node/membership/membership.js';
import { SimBus } from '../../src/transport/sim.js';
import { FakeClock } from '../helpers/fake_clock.js';

/** A node's view of the simulated clock: while paused, its timers fire only once resumed (time itself goes on). */
class PausableClock implements Clock {
  paused = false;
  private held: (() => void)[] = [];
  constructor(private readonly inner: FakeClock) {}
  nowMs(): number {
    return this.inner.nowMs();
  }
  monotonicMs(): number {
    return this.inner.monotonicMs();
  }
  setTimer(delayMs: number, fn: () => void): TimerHandle {
    return this.inner.setTimer(delayMs, () => (this.paused ? this.held.push(fn) : fn()));
  }
  /** Resumed: the timers that came due while paused fire after whatever runs first (as I/O does after SIGCONT). */
  resume(): () => void {
    this.paused = false;
    return () => {
      const due = this.held;
      this.held = [];
      for (const fn of due) fn();
    };
  }
}

const ids = ['m1', 'm2', 'm3'];
const intervalMs = 200;
const failureTimeoutMs = 1_000;

describe('own stall and failure detection', () => {
  it('sim own stall - a node resumed after a 3 s pause sees the peers it heard before as up, one silent before as down, and one that died meanwhile down a failure timeout later', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 11, clock });
    const m1Clock = new PausableClock(clock);
    const tokens = initialTokens(new Map(ids.map((id) => [id, 8])), 3);
    const nodes = ids.map((id) => new Membership(
      { self: id, cluster: 'sim', virtualNodes: 8, replication: 3, enabled: true, intervalMs, failureTimeoutMs, phiConvictThreshold: 8, peers: ids, tokens: tokens.get(id), peerTokens: tokens },
      bus.connect(id),
      id === 'm1' ? m1Clock : clock,
      pino({ level: 'silent' }),
    ));
    try {
      for (const m of nodes) m.start();
      await clock.advance(3_000);
      const [m1, m2, m3] = nodes as [Membership, Membership, Membership];
      assert.deepEqual(['m2', 'm3'].map((id) => m1.isUp(id)), [true, true], 'm1 hears both before the pause');

      // m3 dies; m1 still sees it up for a moment, then pauses (its timers and deliveries held).
      m3.stop();
      bus.isolate('m3', ids);
      await clock.advance(failureTimeoutMs + 2 * intervalMs);
      assert.equal(m1.isUp('m3'), false, 'm3 is down to m1 before the pause');
      m1Clock.paused = true;
      bus.stall('m1', () => true);
      await clock.advance(3_000);
      // Resumed: before its held timers and deliveries run, m1 judges from what it heard before.
      const fireTimers = m1Clock.resume();
      assert.equal(m1.isUp('m2'), true, 'm2, heard just before the pause, is up at the resume');
      assert.equal(m1.isUp('m3'), false, 'm3, silent before the pause, stays down');
      bus.unstall('m1');
      fireTimers();
      await clock.advance(intervalMs);
      assert.equal(m1.isUp('m2'), true, 'm2 up once its heartbeats are read');

      // A peer that dies while m1 is paused: up at the resume, down a failure timeout of hearing nothing after it.
      m1Clock.paused = true;
      bus.stall('m1', () => true);
      await clock.advance(500);
      m2.stop();
      bus.isolate('m2', ids);
      await clock.advance(2_500);
      const fire = m1Clock.resume();
      assert.equal(m1.isUp('m2'), true, 'silence during the pause is not counted');
      bus.unstall('m1');
      fire();
      await clock.advance(failureTimeoutMs + 2 * intervalMs);
      assert.equal(m1.isUp('m2'), false, 'm2 down a failure timeout after the resume');
    } finally {
      for (const m of nodes) m.stop();
    }
  });
});
