/**
 * Serialises read-merge-write per key on one replica, so two writes of the
 * same key never both read the old record and lose one another's version.
 * Bounded: past `max` keys in flight, `run` refuses instead of queueing.
 */
import { ErrorCode, GodDbError } from '../../core/errors.js';

export class KeyLock {
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.tails.size;
  }

  /** The keys held or waited for now. */
  keys(): Iterable<string> {
    return this.tails.keys();
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
    if (this.tails.size + unique.length <= this.max && unique.every((key) => !this.tails.has(key))) return this.holding(unique, fn);
    const sorted = unique.sort();
    const from = (i: number): Promise<T> => (i === sorted.length ? fn() : this.run(sorted[i]!, () => from(i + 1)));
    return from(0);
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    if (!previous) {
      if (this.tails.size >= this.max) throw new GodDbError(ErrorCode.QuorumNotMet, `replica busy: ${this.max} keys being written`);
      return this.holding([key], fn);
    }
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Takes `keys`, none of them held, at once; runs `fn`; releases them. */
  private async holding<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    for (const key of keys) this.tails.set(key, mine);
    try {
      return await fn();
    } finally {
      release();
      for (const key of keys) if (this.tails.get(key) === mine) this.tails.delete(key);
    }
  }
}
