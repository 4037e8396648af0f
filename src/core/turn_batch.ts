/**
 * Items gathered over one microtask checkpoint and handed on together: the
 * replica client's batch per replica and message, and the replica's batch of
 * the writes its own node coordinates. Each item's promise settles with its
 * own result, from `flush`.
 *
 * A batch opens with its first item and is flushed on the microtask queued
 * then, so everything added in the same synchronous stretch of an event-loop
 * turn travels together; a batch that is full (items or bytes) is closed and
 * the next item opens another, flushed on its own microtask.
 */

export interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

export interface Batch<I, T> {
  items: I[];
  waiters: Waiter<T>[];
  /** The bytes counted for its items (add's `bytes`). */
  bytes: number;
}

export class TurnBatches<I, T> {
  private readonly open = new Map<string, Batch<I, T>>();

  /**
   * `flush` takes each batch once and must settle every waiter, never throw
   * (it runs from a microtask). A batch holds at most `itemsMax` items and,
   * beyond its first, at most `bytesMax` bytes.
   */
  constructor(
    private readonly flush: (to: string, batch: Batch<I, T>) => void,
    private readonly itemsMax: number,
    private readonly bytesMax = Number.POSITIVE_INFINITY,
  ) {}

  /** Adds `item` to the open batch for `to` (or a new one), settled when that batch is flushed. */
  add(to: string, item: I, bytes = 0): Promise<T> {
    let batch = this.open.get(to);
    if (batch === undefined || batch.items.length >= this.itemsMax || batch.bytes + bytes > this.bytesMax) {
      const started: Batch<I, T> = { items: [], waiters: [], bytes: 0 };
      this.open.set(to, started);
      queueMicrotask(() => {
        if (this.open.get(to) === started) this.open.delete(to);
        this.flush(to, started);
      });
      batch = started;
    }
    batch.items.push(item);
    batch.bytes += bytes;
    const b = batch;
    return new Promise<T>((resolve, reject) => b.waiters.push({ resolve, reject }));
  }
}
