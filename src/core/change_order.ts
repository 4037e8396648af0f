/**
 * Per-key order of change events for a watcher. Events reach a watcher out
 * of order across coordinators (each publishes its own, after its own ack)
 * and may come twice (a stream replay overlapping live delivery), so a
 * watcher keeps, per key, the newest (hlc, writer) it delivered and lets
 * through only later ones: each key's events come out in the total order
 * last-writer-wins uses (core/version.ts lwwCompare: timestamp, then writer),
 * without duplicates. An older event that arrives late is dropped, as the
 * version it announces is already superseded.
 *
 * Bounded: past `keysMax` keys the least recently changed is forgotten
 * (a Map keeps insertion order; a key seen again moves to the end), so a
 * late duplicate of a forgotten key would pass again.
 */
export interface ChangeStamp {
  hlc: number;
  writer: string;
}

/** Negative when `a` is older than `b`, 0 when they are the same version, positive when newer. */
export function compareStamps(a: ChangeStamp, b: ChangeStamp): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1;
  return 0;
}

export class ChangeOrder {
  private readonly newest = new Map<string, ChangeStamp>();
  /** Events let through, and dropped as duplicates or older than one already let through. */
  passed = 0;
  duplicates = 0;
  older = 0;

  constructor(private readonly keysMax: number) {
    if (!Number.isInteger(keysMax) || keysMax < 1) throw new Error('assertion: keysMax is a positive integer');
  }

  /** True when the event is newer than every one let through for its key (and remembers it). */
  admit(key: string, stamp: ChangeStamp): boolean {
    const seen = this.newest.get(key);
    if (seen !== undefined) {
      const c = compareStamps(stamp, seen);
      if (c === 0) this.duplicates++;
      if (c < 0) this.older++;
      if (c <= 0) return false;
      this.newest.delete(key);
    }
    this.newest.set(key, { hlc: stamp.hlc, writer: stamp.writer });
    if (this.newest.size > this.keysMax) this.newest.delete(this.newest.keys().next().value as string);
    this.passed++;
    return true;
  }

  /** Keys remembered now (at most keysMax). */
  get keys(): number {
    return this.newest.size;
  }
}
