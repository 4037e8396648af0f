/**
 * Serialises read-merge-write per key on one replica, so two writes of the
 * same key never both read the old record and lose one another's version.
 * Bounded: past `max` keys in flight, `run` refuses instead of queueing.
 */
import { ErrorCode, GodDbError } from '../../core/errors.js';

const settled = Promise.resolve();

/**
 * One holder of some keys. Its promise is made only when another run waits
 * for it: a write whose keys nobody else wants costs no promise here.
 */
class Hold {
  private released = false;
  private promise: Promise<void> | undefined;
  private resolve: (() => void) | undefined;

  /** Settles once the holder has released its keys. */
  wait(): Promise<void> {
    if (this.released) return settled;
    return (this.promise ??= new Promise<void>((r) => (this.resolve = r)));
  }

  release(): void {
    this.released = true;
    this.resolve?.();
  }
}

export class KeyLock {
  /** Each key held or waited for -> the last run to take it (the next waits for that one). */
  private readonly tails = new Map<string, Hold>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.tails.size;
  }

  /** The keys held or waited for now. */
  keys(): Iterable<string> {
    return this.tails.keys();
  }

  /**
   * Takes all `keys` (distinct) at once, synchronously, when none of them is
   * held and they fit under `max`: returns the function that releases them.
   * Otherwise takes nothing and returns undefined (then `runAll` waits or
   * refuses). For a caller whose work under the locks starts synchronously.
   */
  tryTakeAll(keys: readonly string[]): (() => void) | undefined {
    if (this.tails.size + keys.length > this.max) return undefined;
    for (const key of keys) if (this.tails.has(key)) return undefined;
    const hold = new Hold();
    for (const key of keys) this.tails.set(key, hold);
    return () => this.release(keys, hold);
  }

  /**
   * Runs `fn` holding the locks of all `keys` (duplicates count once). When
   * none of them is held (the common case) all are taken at once: a run that
   * waits for nothing cannot close a cycle. Otherwise they are taken one by
   * one in sorted order, so two batches that share keys, or a batch and
   * single runs, never wait for each other in a cycle. Each key counts
   * against `max` as in `run`; a refusal releases those already held.
   */
  async runAll<T>(keys: Iterable<string>, fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    const release = this.tryTakeAll(unique);
    if (release !== undefined) {
      try {
        return await fn();
      } finally {
        release();
      }
    }
    const sorted = unique.sort();
    const from = (i: number): Promise<T> => (i === sorted.length ? fn() : this.run(sorted[i]!, () => from(i + 1)));
    return from(0);
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    if (previous === undefined && this.tails.size >= this.max) throw new GodDbError(ErrorCode.QuorumNotMet, `replica busy: ${this.max} keys being written`);
    const mine = new Hold();
    this.tails.set(key, mine);
    try {
      if (previous !== undefined) await previous.wait();
      return await fn();
    } finally {
      this.release([key], mine);
    }
  }

  /** Lets the next run of each key go; a key nobody waits for is free again. */
  private release(keys: readonly string[], hold: Hold): void {
    hold.release();
    for (const key of keys) if (this.tails.get(key) === hold) this.tails.delete(key);
  }
}
