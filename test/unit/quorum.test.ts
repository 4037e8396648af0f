/**
 * The quorum tally (src/core/quorum.ts).
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>); a
 * failing property prints its seed and path, and the same seed replays it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { answered, newTally, QuorumResult, recordFailure, recordSuccess, result, type Tally } from '../../src/core/quorum.js';

const seed = Number(process.env['FC_SEED'] ?? 20_250_104);
const runs = (numRuns: number) => ({ seed, numRuns });

/** Applies outcomes in order: true is a success, false a failure. */
function play(asked: number, needed: number, outcomes: readonly boolean[]): Tally {
  return outcomes.reduce((t, ok) => (ok ? recordSuccess(t) : recordFailure(t)), newTally(asked, needed));
}

const S = true;
const F = false;

describe('quorum', () => {
  it('quorum - a new tally is pending with nothing answered', () => {
    const t = newTally(3, 2);
    assert.deepEqual(t, { asked: 3, needed: 2, succeeded: 0, failed: 0 });
    assert.equal(result(t), QuorumResult.Pending);
    assert.equal(answered(t), 0);
  });

  it('quorum - two successes win when two of three are needed', () => {
    assert.equal(result(play(3, 2, [S, S])), QuorumResult.Won);
    assert.equal(result(play(3, 2, [F, S, S])), QuorumResult.Won);
  });

  it('quorum - two rejections lose when two of three are needed', () => {
    assert.equal(result(play(3, 2, [F, F])), QuorumResult.Lost);
    assert.equal(result(play(3, 2, [S, F, F])), QuorumResult.Lost);
  });

  it('quorum - one success and one failure of three is still pending', () => {
    assert.equal(result(play(3, 2, [S])), QuorumResult.Pending);
    assert.equal(result(play(3, 2, [F])), QuorumResult.Pending);
    assert.equal(result(play(3, 2, [S, F])), QuorumResult.Pending);
    assert.equal(result(play(3, 2, [F, S])), QuorumResult.Pending);
  });

  it('quorum - when all must answer, one failure loses', () => {
    assert.equal(result(play(3, 3, [S, S, F])), QuorumResult.Lost);
    assert.equal(result(play(3, 3, [F])), QuorumResult.Lost);
    assert.equal(result(play(3, 3, [S, S, S])), QuorumResult.Won);
  });

  it('quorum - when one is needed, the first success wins and only all failures lose', () => {
    assert.equal(result(play(3, 1, [F, F, S])), QuorumResult.Won);
    assert.equal(result(play(3, 1, [F, F])), QuorumResult.Pending);
    assert.equal(result(play(3, 1, [F, F, F])), QuorumResult.Lost);
  });

  it('quorum - asking fewer replicas than needed loses at once', () => {
    assert.equal(result(newTally(1, 2)), QuorumResult.Lost);
  });

  it('quorum - answered counts successes and failures', () => {
    assert.equal(answered(play(5, 3, [S, F, S, F])), 4);
  });

  it('quorum - recording an outcome returns a new tally and leaves the old one alone', () => {
    const t = newTally(3, 2);
    const s = recordSuccess(t);
    const f = recordFailure(t);
    assert.deepEqual(t, { asked: 3, needed: 2, succeeded: 0, failed: 0 });
    assert.equal(s.succeeded, 1);
    assert.equal(f.failed, 1);
  });

  it(`quorum - the verdict follows the counts and never changes once reached (seed ${seed})`, () => {
    const arb = fc
      .integer({ min: 1, max: 7 })
      .chain((asked) => fc.tuple(fc.constant(asked), fc.integer({ min: 1, max: asked }), fc.array(fc.boolean(), { maxLength: asked })));
    fc.assert(
      fc.property(arb, ([asked, needed, outcomes]) => {
        let verdict: QuorumResult = QuorumResult.Pending;
        for (let i = 0; i <= outcomes.length; i++) {
          const t = play(asked, needed, outcomes.slice(0, i));
          const r = result(t);
          const expected =
            t.succeeded >= needed ? QuorumResult.Won : asked - t.failed < needed ? QuorumResult.Lost : QuorumResult.Pending;
          assert.equal(r, expected);
          assert.equal(answered(t), i);
          if (verdict !== QuorumResult.Pending) assert.equal(r, verdict, 'a verdict is final');
          verdict = r;
        }
        // Once every replica answered, the request is decided.
        if (outcomes.length === asked) assert.notEqual(verdict, QuorumResult.Pending);
      }),
      runs(500),
    );
  });
});
