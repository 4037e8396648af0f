/**
 * Named limits and the quorum settings check (src/core/limits.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { limits, quorumProblem, type QuorumSettings } from '../../src/core/limits.js';

function q(replication: number, readQuorum: number, writeQuorum: number): QuorumSettings {
  return { replication, readQuorum, writeQuorum };
}

describe('limits - quorumProblem', () => {
  it('limits - valid quorum settings have no problem', () => {
    for (const s of [q(3, 2, 2), q(1, 1, 1), q(3, 1, 3), q(3, 3, 1), q(5, 1, 1), q(limits.replicationMax, limits.replicationMax, 1)]) {
      assert.equal(quorumProblem(s), undefined, JSON.stringify(s));
    }
  });

  it('limits - R + W <= N (sloppy, not strict, quorums) is allowed', () => {
    assert.equal(quorumProblem(q(3, 1, 1)), undefined);
  });

  it('limits - N must be an integer from 1 to replicationMax', () => {
    for (const n of [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY, limits.replicationMax + 1]) {
      assert.match(quorumProblem(q(n, 1, 1)) ?? '', /^replication must be an integer from 1 to 16, got /, String(n));
    }
  });

  it('limits - R greater than N is rejected', () => {
    assert.equal(quorumProblem(q(3, 4, 2)), 'read quorum must be an integer from 1 to N=3, got 4');
  });

  it('limits - W greater than N is rejected', () => {
    assert.equal(quorumProblem(q(3, 2, 4)), 'write quorum must be an integer from 1 to N=3, got 4');
  });

  it('limits - R or W below 1 is rejected', () => {
    assert.match(quorumProblem(q(3, 0, 2)) ?? '', /^read quorum/);
    assert.match(quorumProblem(q(3, -1, 2)) ?? '', /^read quorum/);
    assert.match(quorumProblem(q(3, 2, 0)) ?? '', /^write quorum/);
    assert.match(quorumProblem(q(3, 2, -2)) ?? '', /^write quorum/);
  });

  it('limits - a non-integer R or W is rejected', () => {
    assert.match(quorumProblem(q(3, 1.5, 2)) ?? '', /^read quorum/);
    assert.match(quorumProblem(q(3, 2, 1.5)) ?? '', /^write quorum/);
    assert.match(quorumProblem(q(3, Number.NaN, 2)) ?? '', /^read quorum/);
    assert.match(quorumProblem(q(3, 2, Number.NaN)) ?? '', /^write quorum/);
  });
});

describe('limits - values', () => {
  it('limits - every limit is a positive integer', () => {
    for (const [name, value] of Object.entries(limits)) assert.ok(Number.isSafeInteger(value) && value > 0, name);
  });

  it('limits - the default value size leaves room under the 1 MiB NATS payload for headers and the key', () => {
    assert.ok(limits.valueBytesMaxDefault + limits.keyBytesMax < 1024 * 1024);
  });

  it('limits - a clock can hold an entry for every replica of a key', () => {
    assert.ok(limits.vclockEntriesMax >= limits.replicationMax);
  });
});
