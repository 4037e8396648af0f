/**
 * The bench's open loop (`--rate`, bench/closed_loop.ts runOpenLoop):
 * requests start at the offered rate whatever the answers do, at most C are
 * in flight, and those due past C are counted as missed rather than sent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BenchClient } from '../../src/bench/client.js';
import { runOpenLoop } from '../../src/bench/closed_loop.js';
import { Op } from '../../src/bench/types.js';

const hooks = { onWarmupEnd: () => undefined, onMeasureEnd: () => undefined };
const plan = { op: Op.Get, keys: ['a', 'b', 'c'], value: new Uint8Array(1), warmupMs: 20 };

describe('bench open loop', () => {
  it('bench open loop - offers the rate whatever the answers take: a client answering at once gets about rate x window', async () => {
    let sent = 0;
    const client: BenchClient = { put: async () => undefined, get: async () => void sent++, close: async () => undefined };
    const r = await runOpenLoop(client, { ...plan, concurrency: 64, durationMs: 400, ratePerSec: 2_000 }, hooks);
    // Sends are due by the clock, so late timers catch up: only the window's end is uncertain (what fell
    // due in a stall just before it is not sent), so the lower bound leaves room for a loaded machine.
    assert.ok(r.opsPerSec <= 2_000 * 1.1, `${r.opsPerSec} ops/s: never more than offered`);
    assert.ok(r.opsPerSec >= 2_000 * 0.7, `${r.opsPerSec} ops/s: the offered 2,000 kept, answers being immediate`);
    assert.equal(r.missed, 0);
    assert.equal(r.errors, 0);
    assert.ok(sent >= r.ops, 'every op counted was sent');
  });

  it('bench open loop - with C in flight and no answer, what falls due is missed, not sent; the stragglers are awaited', async () => {
    const pending: (() => void)[] = [];
    let sent = 0;
    const client: BenchClient = {
      put: async () => undefined,
      get: () => new Promise<void>((resolve) => { sent++; pending.push(resolve); }),
      close: async () => undefined,
    };
    const done = runOpenLoop(client, { ...plan, concurrency: 5, durationMs: 200, ratePerSec: 1_000 }, {
      onWarmupEnd: () => undefined,
      onMeasureEnd: () => { for (const answer of pending) answer(); },
    });
    const r = await done;
    assert.equal(sent, 5, 'never more than C in flight');
    assert.ok((r.missed ?? 0) >= 100, `${r.missed} of the ~200 requests due in the 200 ms window were not sent`);
    assert.equal(r.ops, 0, 'answers after the window do not count');
  });

  it('bench open loop - a failing client is counted, not thrown', async () => {
    const client: BenchClient = { put: async () => undefined, get: async () => { throw new Error('nope'); }, close: async () => undefined };
    const r = await runOpenLoop(client, { ...plan, concurrency: 8, durationMs: 100, ratePerSec: 500 }, hooks);
    assert.ok(r.errors >= 30, `${r.errors} errors`);
    assert.equal(r.firstError, 'nope');
    assert.equal(r.ops, 0);
  });
});
