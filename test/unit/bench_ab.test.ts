/**
 * bench:ab's summary (src/bench/ab.ts): medians per build, and in how many
 * rounds the second build did better than the first run beside it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { abTable, compareRounds, type AbRound } from '../../src/bench/ab.js';
import type { Summary } from '../../src/bench/types.js';

function summary(system: string, op: string, concurrency: number, opsPerSec: number, serverCpuUsPerOp: number): Summary {
  return { system, op, concurrency, repeats: 1, opsPerSec, p50Ms: 1, p99Ms: 2, errors: 0, cpu: {}, serverCpuUsPerOp } as Summary;
}

describe('bench ab', () => {
  it('bench ab - medians of each build and the rounds in which B was faster or cheaper, per (system, op, C)', () => {
    const rounds: AbRound[] = [
      { a: [summary('goddb-raw', 'put', 128, 5000, 300), summary('goddb-raw', 'get', 128, 15000, 90)], b: [summary('goddb-raw', 'put', 128, 5500, 280), summary('goddb-raw', 'get', 128, 14000, 95)] },
      { a: [summary('goddb-raw', 'put', 128, 6000, 260), summary('goddb-raw', 'get', 128, 16000, 85)], b: [summary('goddb-raw', 'put', 128, 6100, 262), summary('goddb-raw', 'get', 128, 17000, 80)] },
      { a: [summary('goddb-raw', 'put', 128, 4000, 350), summary('goddb-raw', 'get', 128, 12000, 100)], b: [summary('goddb-raw', 'put', 128, 3900, 340), summary('goddb-raw', 'get', 128, 13000, 99)] },
    ];
    const [put, get] = compareRounds(rounds);
    assert.deepEqual(put, { system: 'goddb-raw', op: 'put', concurrency: 128, rounds: 3, opsPerSecA: 5000, opsPerSecB: 5500, cpuUsPerOpA: 300, cpuUsPerOpB: 280, fasterRounds: 2, cheaperRounds: 2 });
    assert.deepEqual(get, { system: 'goddb-raw', op: 'get', concurrency: 128, rounds: 3, opsPerSecA: 15000, opsPerSecB: 14000, cpuUsPerOpA: 90, cpuUsPerOpB: 95, fasterRounds: 2, cheaperRounds: 2 });
    const table = abTable([put!, get!], 'A', 'B').split('\n');
    assert.equal(table.length, 4);
    assert.match(table[2]!, /\| goddb-raw \| put \| 128 \| 5,000 \/ 5,500 \| \+10% \| 2 of 3 \| 300 \/ 280 \| -7% \| 2 of 3 \|/);
    assert.match(table[3]!, /15,000 \/ 14,000 \| -7% \| 2 of 3 \| 90 \/ 95 \| \+6% \|/);
  });

  it('bench ab - a (system, op, C) missing from any run of either build is left out; no rounds, no rows', () => {
    const rounds: AbRound[] = [
      { a: [summary('x', 'put', 1, 10, 1), summary('y', 'put', 1, 10, 1)], b: [summary('x', 'put', 1, 11, 1), summary('y', 'put', 1, 11, 1)] },
      { a: [summary('x', 'put', 1, 10, 1), summary('y', 'put', 1, 10, 1)], b: [summary('x', 'put', 1, 12, 1)] },
    ];
    assert.deepEqual(compareRounds(rounds).map((r) => r.system), ['x']);
    assert.deepEqual(compareRounds([]), []);
  });
});
