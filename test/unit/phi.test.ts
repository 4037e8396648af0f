import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { emptyWindow, phi, recordArrival, type ArrivalWindow } from '../../src/core/phi.js';

const s = { windowSize: 1000, intervalMs: 1000, minStdDevMs: 100 };
const seed = Number(process.env['FC_SEED'] ?? 20_261_130);

function regular(count: number, gapMs: number): ArrivalWindow {
  let w = emptyWindow;
  for (let i = 0; i < count; i++) w = recordArrival(w, i * gapMs, s);
  return w;
}

describe('phi accrual failure detector', () => {
  it('phi - a member never heard is suspected without bound; one just heard is not suspected', () => {
    assert.equal(phi(emptyWindow, 0, s), Number.POSITIVE_INFINITY);
    const w = regular(10, 1000);
    assert.ok(phi(w, w.lastMs!, s) < 0.1);
  });

  it('phi - at a 1 s interval a silent member passes the default threshold 8 within 2 s of its last heartbeat, and not within 1.2 s', () => {
    const w = regular(30, 1000);
    assert.ok(phi(w, w.lastMs! + 1200, s) < 8, 'a little late is not convicted');
    assert.ok(phi(w, w.lastMs! + 2000, s) > 8, 'two seconds of silence is');
  });

  it('phi - a member whose heartbeats jitter is given more time than a regular one', () => {
    let jittery = emptyWindow;
    let t = 0;
    for (let i = 0; i < 30; i++) {
      t += i % 2 === 0 ? 500 : 1500;
      jittery = recordArrival(jittery, t, s);
    }
    const steady = regular(30, 1000);
    assert.ok(phi(jittery, jittery.lastMs! + 1800, s) < phi(steady, steady.lastMs! + 1800, s));
  });

  it(`phi - suspicion never decreases while a member stays silent, and the window stays bounded (seed ${seed})`, () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 50 }), fc.integer({ min: 0, max: 10_000 }), (gaps, extra) => {
        let w = emptyWindow;
        let t = 0;
        for (const g of gaps) w = recordArrival(w, (t += g), { ...s, windowSize: 20 });
        assert.ok(w.gapsMs.length <= 20);
        assert.ok(phi(w, t + extra, s) <= phi(w, t + extra + 100, s) + 1e-9);
      }),
      { seed, numRuns: 200 },
    );
  });
});
