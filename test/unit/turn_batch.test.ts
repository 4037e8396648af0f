import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnBatches, type Batch } from '../../src/core/turn_batch.js';

/** Batches flushed so far, as [to, items]; each item answers its own double (or fails when negative). */
function recorder() {
  const flushed: [string, number[]][] = [];
  const batches = (itemsMax: number, bytesMax?: number) =>
    new TurnBatches<number, number>((to: string, batch: Batch<number, number>) => {
      flushed.push([to, [...batch.items]]);
      batch.items.forEach((item, i) => (item < 0 ? batch.waiters[i]!.reject(new Error(`item ${item}`)) : batch.waiters[i]!.resolve(item * 2)));
    }, itemsMax, bytesMax);
  return { flushed, batches };
}

describe('turn batches', () => {
  it('turn batch - items added in one synchronous stretch travel together, per destination, each settled with its own result', async () => {
    const { flushed, batches } = recorder();
    const b = batches(10);
    const answers = [b.add('a', 1), b.add('b', 2), b.add('a', -3), b.add('a', 4)];
    assert.deepEqual(flushed, [], 'nothing is flushed before the microtask');
    const settled = await Promise.allSettled(answers);
    assert.deepEqual(flushed, [['a', [1, -3, 4]], ['b', [2]]]);
    assert.deepEqual(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)), [2, 4, 'item -3', 8]);
    // After the flush a new stretch opens new batches.
    await b.add('a', 5);
    assert.deepEqual(flushed.at(-1), ['a', [5]]);
  });

  it('turn batch - a full batch (items or bytes) is closed and the next item opens another, flushed in order', async () => {
    const { flushed, batches } = recorder();
    const byItems = batches(2);
    await Promise.all([1, 2, 3, 4, 5].map((i) => byItems.add('a', i)));
    assert.deepEqual(flushed, [['a', [1, 2]], ['a', [3, 4]], ['a', [5]]]);

    flushed.length = 0;
    const byBytes = batches(100, 10);
    // 6 + 4 fits in 10; 6 + 4 + 1 does not. An item over the bound alone still travels, alone.
    await Promise.all([byBytes.add('a', 1, 6), byBytes.add('a', 2, 4), byBytes.add('a', 3, 1), byBytes.add('a', 4, 50), byBytes.add('a', 5, 1)]);
    assert.deepEqual(flushed, [['a', [1, 2]], ['a', [3]], ['a', [4]], ['a', [5]]]);
  });
});
