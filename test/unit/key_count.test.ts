import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { KeyCount } from '../../src/node/api/key_count.js';
import { Metrics } from '../../src/node/api/metrics.js';

const silent = pino({ level: 'silent' });

/** An engine whose count() is scripted and whose calls are counted. */
function countingEngine(values: (number | Error)[]) {
  const engine = {
    calls: 0,
    async count(): Promise<number> {
      const v = values[Math.min(engine.calls, values.length - 1)]!;
      engine.calls += 1;
      if (v instanceof Error) throw v;
      return v;
    },
  };
  return engine;
}

describe('key count', () => {
  it('key count - the engine is asked at most once per refresh interval, however often status polls', async () => {
    const engine = countingEngine([5, 9]);
    let now = 0;
    const keys = new KeyCount(engine, { monotonicMs: () => now }, 1000, silent);
    assert.equal(keys.cached, undefined);
    assert.deepEqual(await Promise.all([keys.read(), keys.read(), keys.read()]), [5, 5, 5]);
    now = 999;
    assert.equal(await keys.read(), 5);
    assert.equal(engine.calls, 1, 'one engine call within the interval');
    now = 1000;
    assert.equal(await keys.read(), 9);
    assert.equal(engine.calls, 2);
    assert.equal(keys.cached, 9);
  });

  it('key count - a failing engine keeps the last count and is not asked again before the interval', async () => {
    const engine = countingEngine([3, new Error('disk gone'), 4]);
    let now = 0;
    const keys = new KeyCount(engine, { monotonicMs: () => now }, 1000, silent);
    assert.equal(await keys.read(), 3);
    now = 1000;
    assert.equal(await keys.read(), 3, 'the failure keeps the last count');
    now = 1500;
    assert.equal(await keys.read(), 3);
    assert.equal(engine.calls, 2);
    now = 2000;
    assert.equal(await keys.read(), 4);
  });

  it('key count - /metrics shows goddb_keys, goddb_ring_members and goddb_ring_owned_ratio', async () => {
    const zero = () => 0;
    const metrics = new Metrics('n1', {
      inflight: zero, membersUp: zero, readRepairs: zero, staleRetries: zero, staleRefusals: zero, skewRefusals: zero,
      malformedReplicaRequests: zero, unconfirmedMembers: zero, hlc: zero, handoffKeysSent: zero, handoffBytesSent: zero, handoffActive: zero,
      keys: async () => 30, ringMembers: () => 3, ringOwnedRatio: () => 1.25, memberStates: () => [], settled: () => true, keysDeleted: () => 0,
    });
    const text = await metrics.registry.metrics();
    for (const line of ['goddb_keys{node_id="n1"} 30', 'goddb_ring_members{node_id="n1"} 3', 'goddb_ring_owned_ratio{node_id="n1"} 1.25']) {
      assert.ok(text.includes(line), `${line} in\n${text}`);
    }
  });
});
