/**
 * Ownership handoff, the shell (riak_core `riak_core_handoff_sender.erl`:
 * fold the store, batch the items, send them): when the ring changes, this
 * node folds its storage and sends every key it must feed (core/handoff.ts:
 * it is the first old replica still in the ring, and the key gained
 * replicas) to the members that gained it, through the replica put path
 * (not fresh: the versions merge into whatever the target already holds).
 *
 * Bounded: storage is read in batches, each target has one batch filling,
 * at most limits.handoffBatchesInflightMax batches await their replies, and
 * the bytes sent are paced to `bytesPerSecond` on the node's clock.
 *
 * Each fold is against the ring the last finished fold reached (`base`), so
 * a ring change in the middle restarts the fold for the newest ring and
 * nothing the superseded one had not sent yet is forgotten. A fold that
 * left keys unsent (a target down or refusing, storage failing) runs again
 * after limits.handoffRetryMs. Nothing is deleted here: data this node no
 * longer owns is removed in a later step, once the new owners confirm it.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { finishTransfer, handoffTargets, newTransfer, sameRing, TransferKind, TransferState, type Transfer } from '../../core/handoff.js';
import { limits } from '../../core/limits.js';
import { keyHash, type Ring } from '../../core/ring.js';
import { versionsBytes, type Version } from '../../core/version.js';
import { decodeRecord } from '../../protocol/codec.js';
import type { StorageEngine } from '../../storage/engine.js';
import { LogLimiter } from '../log_limiter.js';

export interface HandoffOptions {
  self: string;
  replication: number;
  bytesPerSecond: number;
}

/** Where a handoff sends versions: ReplicaClient.put (not fresh). */
export interface ReplicaPutter {
  put(node: string, key: string, versions: Version[]): Promise<void>;
}

interface Item {
  key: string;
  versions: Version[];
  bytes: number;
}

interface Filling {
  items: Item[];
  bytes: number;
}

interface Fold {
  readonly before: Ring;
  readonly after: Ring;
  readonly generation: number;
  readonly transfers: Map<string, Transfer>;
  readonly filling: Map<string, Filling>;
  readonly inflight: Set<Promise<void>>;
}

export class Handoff {
  /** The ring the last finished fold reached: where this node's data is placed. */
  private base: Ring;
  private generation = 0;
  private running: Promise<void> | undefined;
  /** A loop is folding or waiting to fold again (set and cleared synchronously, so no ring change falls between). */
  private looping = false;
  private stopped = false;
  private current: Fold | undefined;
  /** Earliest time the next batch may go, for pacing (monotonic ms). */
  private nextSendAtMs = 0;
  /** Ends the wait before a fold runs again (on stop). */
  private wake: (() => void) | undefined;
  private readonly finished: Transfer[] = [];
  /** A batch holds at most a tenth of a second's worth of bytes at the configured rate, so pacing is smooth. */
  private readonly batchBytesMax: number;
  keysSent = 0;
  bytesSent = 0;
  private readonly logs: LogLimiter;

  constructor(
    private readonly opts: HandoffOptions,
    private readonly engine: StorageEngine,
    private readonly remote: ReplicaPutter,
    private readonly ringOf: () => Ring,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.base = ringOf();
    this.logs = new LogLimiter(logger, () => clock.monotonicMs());
    this.batchBytesMax = Math.max(1, Math.min(limits.handoffBatchBytesMax, Math.floor(opts.bytesPerSecond / 10)));
  }

  /** Call on every ring change (Membership.onChange). */
  ringChanged(): void {
    if (this.stopped) return;
    this.generation++;
    if (this.current) for (const t of this.current.transfers.values()) if (t.state === TransferState.Running) t.state = TransferState.Superseded;
    this.wake?.();
    if (!this.looping) {
      this.looping = true;
      this.running = this.loop();
    }
  }

  /**
   * Takes the ring as it is now as where this node's data is placed: a
   * joining node calls it once it has chosen its tokens (it holds nothing an
   * earlier ring placed, and the ring it had before it heard the members was
   * a guess). Not kept across restarts yet: a restarted node folds from the
   * ring it starts with, so it may send keys again (merges make that harmless).
   */
  rebase(): void {
    this.base = this.ringOf();
    if (this.looping) this.generation++;
  }

  /** True when no fold is running or waiting to run again: no range is moving from this node. */
  get settled(): boolean {
    return !this.looping;
  }

  /** Transfers of the fold under way (running, or superseded while its sends drain), then the most recent ended ones. */
  transfers(): Transfer[] {
    const now = this.current ? [...this.current.transfers.values()] : [];
    return [...now, ...this.finished].map((t) => ({ ...t }));
  }

  /** Transfers under way. */
  get active(): number {
    return this.current ? [...this.current.transfers.values()].filter((t) => t.state === TransferState.Running).length : 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    this.wake?.();
    await this.running;
  }

  /** Folds until this node's data is placed by the current ring. */
  private async loop(): Promise<void> {
    try {
      while (!this.stopped) {
        const after = this.ringOf();
        if (sameRing(this.base, after)) return; // `finally` clears looping in this same turn
        const fold: Fold = { before: this.base, after, generation: this.generation, transfers: new Map(), filling: new Map(), inflight: new Set() };
        this.current = fold;
        const complete = await this.fold(fold);
        this.current = undefined;
        this.keep(fold);
        if (fold.generation !== this.generation) continue; // superseded: fold again, from the same base, to the newest ring
        if (complete) {
          this.base = after;
          continue;
        }
        if (!this.stopped) await this.retryWait();
      }
    } finally {
      this.looping = false;
    }
  }

  /** Waits limits.handoffRetryMs, or less when the ring changes or the node stops. */
  private async retryWait(): Promise<void> {
    await new Promise<void>((r) => {
      const timer = this.clock.setTimer(limits.handoffRetryMs, r);
      this.wake = () => {
        timer.cancel();
        r();
      };
    });
    this.wake = undefined;
  }

  /** Sends what this node must feed for `before` -> `after`; true when every key arrived. */
  private async fold(fold: Fold): Promise<boolean> {
    const startedAt = this.clock.monotonicMs();
    let complete = true;
    try {
      for await (const entry of this.engine.scan(limits.handoffScanBatchSize)) {
        if (this.superseded(fold)) break;
        const targets = handoffTargets(fold.before, fold.after, keyHash(entry.key), this.opts.replication, this.opts.self);
        if (targets.length === 0) continue;
        let versions: Version[];
        try {
          versions = decodeRecord(entry.record);
        } catch (err) {
          // Sending it again would fail again: skipped, so that one bad record does not hold the move forever.
          this.logs.error('handoff-undecodable', { key: entry.key, err: (err as Error).message }, 'handoff skipped a stored record it cannot decode');
          continue;
        }
        const item = { key: entry.key, versions, bytes: entry.key.length + versionsBytes(versions) };
        for (const target of targets) await this.add(fold, target, item);
      }
      if (!this.superseded(fold)) for (const target of [...fold.filling.keys()]) await this.flush(fold, target);
    } catch (err) {
      this.logs.warn('handoff-fold', { err: (err as Error).message }, 'handoff fold failed; it runs again');
      complete = false;
    }
    await Promise.all(fold.inflight);
    if (this.superseded(fold)) return false;
    for (const [target, t] of fold.transfers) {
      fold.transfers.set(target, finishTransfer(t, this.clock.nowMs()));
      if (t.keysFailed > 0) complete = false;
    }
    if (fold.transfers.size > 0) {
      const sent = [...fold.transfers.values()].map((t) => ({ target: t.target, keys: t.keysSent, bytes: t.bytesSent, failed: t.keysFailed }));
      this.logger.info({ transfers: sent, elapsedMs: this.clock.monotonicMs() - startedAt }, complete ? 'handoff done' : 'handoff left keys unsent; it runs again');
    }
    return complete;
  }

  private superseded(fold: Fold): boolean {
    return fold.generation !== this.generation;
  }

  private async add(fold: Fold, target: string, item: Item): Promise<void> {
    if (!fold.transfers.has(target)) fold.transfers.set(target, newTransfer(TransferKind.Ownership, this.opts.self, target, this.clock.nowMs()));
    let batch = fold.filling.get(target);
    if (batch && (batch.items.length >= limits.handoffBatchItemsMax || batch.bytes + item.bytes > this.batchBytesMax)) {
      await this.flush(fold, target);
      batch = undefined;
    }
    if (!batch) {
      batch = { items: [], bytes: 0 };
      fold.filling.set(target, batch);
    }
    batch.items.push(item);
    batch.bytes += item.bytes;
  }

  /** Sends the target's filling batch once the pace and the in-flight bound allow. */
  private async flush(fold: Fold, target: string): Promise<void> {
    const batch = fold.filling.get(target);
    fold.filling.delete(target);
    if (!batch || batch.items.length === 0) return;
    while (fold.inflight.size >= limits.handoffBatchesInflightMax) await Promise.race(fold.inflight);
    await this.pace(batch.bytes);
    const transfer = fold.transfers.get(target)!;
    const sent = Promise.allSettled(batch.items.map((i) => this.remote.put(target, i.key, i.versions))).then((results) => {
      results.forEach((r, i) => {
        const item = batch.items[i]!;
        if (r.status === 'fulfilled') {
          transfer.keysSent++;
          transfer.bytesSent += item.bytes;
          this.keysSent++;
          this.bytesSent += item.bytes;
        } else {
          transfer.keysFailed++;
        }
      });
    });
    fold.inflight.add(sent);
    void sent.finally(() => fold.inflight.delete(sent));
  }

  /** Waits until `bytes` more keep the average under bytesPerSecond. */
  private async pace(bytes: number): Promise<void> {
    const now = this.clock.monotonicMs();
    const wait = this.nextSendAtMs - now;
    if (wait > 0) await new Promise<void>((r) => this.clock.setTimer(wait, r));
    this.nextSendAtMs = Math.max(this.nextSendAtMs, now) + (bytes * 1000) / this.opts.bytesPerSecond;
  }

  private keep(fold: Fold): void {
    for (const t of fold.transfers.values()) {
      const kept = t.state === TransferState.Running ? { ...t, state: TransferState.Superseded } : t;
      this.finished.unshift(kept);
    }
    this.finished.length = Math.min(this.finished.length, limits.handoffTransfersKeptMax);
  }
}
