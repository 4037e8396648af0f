/**
 * The number of keys this node holds, for `goddb status` and /metrics. Both
 * are polled by tools nobody paces, so the engine is asked at most once per
 * `refreshMs` (by the monotonic clock) and every reader in between gets the
 * cached count; concurrent readers share one engine call.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import type { StorageEngine } from '../../storage/engine.js';

export class KeyCount {
  private value: number | undefined;
  private readAtMs = Number.NEGATIVE_INFINITY;
  private pending: Promise<number | undefined> | undefined;

  constructor(
    private readonly engine: Pick<StorageEngine, 'count'>,
    private readonly clock: Pick<Clock, 'monotonicMs'>,
    private readonly refreshMs: number,
    private readonly logger: Logger,
  ) {}

  /** The last count read, undefined before the first one succeeds (a failing engine keeps the last). */
  get cached(): number | undefined {
    return this.value;
  }

  /** The count, from the engine when the cached one is older than refreshMs. */
  read(): Promise<number | undefined> {
    if (this.pending !== undefined) return this.pending;
    if (this.clock.monotonicMs() - this.readAtMs < this.refreshMs) return Promise.resolve(this.value);
    this.pending = this.refresh().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async refresh(): Promise<number | undefined> {
    // Stamped before the call: a failing engine is asked again no sooner than a healthy one.
    this.readAtMs = this.clock.monotonicMs();
    try {
      this.value = await this.engine.count();
    } catch (err) {
      this.logger.warn({ err }, 'could not count the keys held');
    }
    return this.value;
  }
}
