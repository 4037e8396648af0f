/**
 * The hot path's histogram (src/node/api/light_histogram.ts) exports exactly
 * what prom-client's Histogram exports for the same observations: the
 * /metrics text and the JSON, with a node's default labels.
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { LightHistogram } from '../../src/node/api/light_histogram.js';

const seed = Number(process.env['FC_SEED'] ?? 20_261_202);
/** The JSON as plain data, without prom-client's empty `exemplar` fields (there are none here). */
function withoutExemplars(json: unknown): unknown {
  return JSON.parse(JSON.stringify(json, (k, v: unknown) => (k === 'exemplar' && v == null ? undefined : v)));
}

const bounds = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

describe('light histogram', () => {
  it("light histogram - the /metrics text and JSON are prom-client's for any observations", async () => {
    const observation = fc.tuple(
      fc.constantFrom('get', 'put', 'aae'),
      fc.constantFrom('ok', '504', '503'),
      // On the bounds, between them, past the last one, and 0.
      fc.oneof(fc.constantFrom(0, ...bounds, 5.0001, 100), fc.double({ min: 0, max: 10, noNaN: true })),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
        const theirs = new Registry();
        const ours = new Registry();
        for (const r of [theirs, ours]) r.setDefaultLabels({ node_id: 'n1' });
        const reference = new Histogram({ name: 'goddb_x_seconds', help: 'a help text', labelNames: ['op', 'outcome'], buckets: bounds, registers: [theirs] });
        const light = new LightHistogram('goddb_x_seconds', 'a help text', ['op', 'outcome'], bounds);
        light.register(ours);
        for (const [op, outcome, v] of observations) {
          reference.observe({ op, outcome }, v);
          light.series(op, outcome).observe(v);
        }
        assert.equal(await ours.metrics(), await theirs.metrics());
        assert.deepEqual(withoutExemplars(await ours.getMetricsAsJSON()), withoutExemplars(await theirs.getMetricsAsJSON()));
      }),
      { seed, numRuns: 200 },
    );
  });

  it('light histogram - one series per set of label values, the wrong number of values refused, reset empties it', async () => {
    const h = new LightHistogram('goddb_y_seconds', 'help', ['op'], [1, 2]);
    assert.equal(h.series('get'), h.series('get'));
    assert.notEqual(h.series('get'), h.series('put'));
    assert.throws(() => h.series('get', 'extra-that-is-new'), /takes 1 label values, got 2/);
    h.series('get').observe(1.5);
    assert.deepEqual(h.series('get').cumulative(), [0, 1]);
    h.reset();
    assert.deepEqual((await h.get()).values, []);
    assert.throws(() => new LightHistogram('goddb_z', 'help', ['op'], [2, 1]), /bounds must increase/);
  });
});
