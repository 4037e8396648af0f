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

  it(`phi - the mean and variance kept per heartbeat give what the gaps themselves give (seed ${seed})`, () => {
    // The window's statistics are computed once per heartbeat, not per question: the same phi as
    // computing them from the remembered gaps every time.
    const fromGaps = (w: ArrivalWindow, nowMs: number): number => {
      const gaps = w.gapsMs.length > 0 ? w.gapsMs : [s.intervalMs];
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
      const variance = gaps.length > 1 ? gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length : (s.intervalMs / 4) ** 2;
      const y = (nowMs - w.lastMs! - mean) / Math.max(Math.sqrt(variance), s.minStdDevMs);
      const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
      const tail = nowMs - w.lastMs! > mean ? e / (1 + e) : 1 - 1 / (1 + e);
      return tail <= 0 ? Number.POSITIVE_INFINITY : -Math.log10(tail);
    };
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 0, maxLength: 40 }), fc.integer({ min: 0, max: 10_000 }), (gaps, extra) => {
        let w = recordArrival(emptyWindow, 0, s);
        let t = 0;
        assert.equal(phi(w, extra, s), fromGaps(w, extra));
        for (const g of gaps) {
          w = recordArrival(w, (t += g), { ...s, windowSize: 16 });
          assert.equal(phi(w, t + extra, s), fromGaps(w, t + extra), `after ${w.gapsMs.length} gaps`);
        }
      }),
      { seed, numRuns: 300 },
    );
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
