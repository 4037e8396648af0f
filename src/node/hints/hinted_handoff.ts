/**
 * Hinted handoff (Dynamo 4.6): every second or so, the hints this node
 * keeps for members that are up again go to them, in batches, paced at the
 * handoff rate; each hint is deleted once its owner acknowledged it, and
 * only if it did not change meanwhile (a hint merged after it was read stays
 * for the next round). Hints of a member that left or was removed are
 * dropped (its ranges moved to others, which hold the data), and hints
 * older than the window are dropped (hint_store.ts says why).
 *
 * The store is durable, so a holder that restarts resumes where it stopped:
 * nothing but the store says what is left to deliver.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { limits } from '../../core/limits.js';
import { isGone } from '../../core/membership.js';
import { versionsBytes } from '../../core/version.js';
import type { Ring } from '../../core/ring.js';
import type { ReplicaClient } from '../coordinator/replica_client.js';
import { LogLimiter } from '../log_limiter.js';
import type { Membership } from '../membership/membership.js';
import { HintDropReason, type HintStore, type StoredHint } from './hint_store.js';

export interface HintedHandoffOptions {
  self: string;
  /** Most bytes per second sent to owners (config handoff.bytesPerSecond). */
  bytesPerSecond: number;
  /** The hint window: an expiry scan runs at least this often, or every minute. */
  windowMs: number;
  /** Between two rounds; default limits.hintReplayIntervalMs. */
  intervalMs?: number;
}

/** What hinted handoff reads of membership. */
export type HintMembership = Pick<Membership, 'isUp' | 'stateOf' | 'ring' | 'futureRing'>;

/** Expired hints of owners that stay down are looked for at least this often. */
const expiryScanMsMax = 60_000;

export class HintedHandoff {
  private timer: TimerHandle | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;
  private lastExpiryScanMs: number;
  private readonly logs: LogLimiter;
  /** Ends the pacing wait under way, if any (stop). */
  private endPacing: (() => void) | undefined;
  /** Bytes (estimated) of hints delivered. */
  bytesSent = 0;

  constructor(
    private readonly opts: HintedHandoffOptions,
    private readonly store: HintStore,
    private readonly client: Pick<ReplicaClient, 'put'>,
    private readonly membership: HintMembership,
    private readonly clock: Clock,
    logger: Logger,
  ) {
    this.logs = new LogLimiter(logger, () => clock.monotonicMs());
    this.lastExpiryScanMs = clock.monotonicMs();
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stops after the batch under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.endPacing?.();
    await this.round;
  }

  /** One round now (tests; the timer calls it every interval). */
  async runOnce(): Promise<void> {
    this.round ??= this.deliver().finally(() => (this.round = undefined));
    await this.round;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimer(this.opts.intervalMs ?? limits.hintReplayIntervalMs, () => {
      void this.runOnce().finally(() => this.schedule());
    });
  }

  /** True when hints for `owner` may go to it now: up, and a member of the serving or the future ring. */
  private deliverable(owner: string, members: ReadonlySet<string>): boolean {
    const state = this.membership.stateOf(owner);
    return owner !== this.opts.self && state !== undefined && !isGone(state) && members.has(owner) && this.membership.isUp(owner);
  }

  private async deliver(): Promise<void> {
    const owners = [...this.store.pending().keys()];
    if (owners.length === 0) return;
    const members = new Set([...nodesOf(this.membership.ring()), ...nodesOf(this.membership.futureRing())]);
    const ready = new Set(owners.filter((o) => this.deliverable(o, members)));
    const gone = new Set(owners.filter((o) => { const s = this.membership.stateOf(o); return s !== undefined && isGone(s); }));
    const now = this.clock.monotonicMs();
    const expiryDue = now - this.lastExpiryScanMs >= Math.min(expiryScanMsMax, this.opts.windowMs);
    if (ready.size === 0 && gone.size === 0 && !expiryDue) return;
    if (expiryDue) this.lastExpiryScanMs = now;
    const batches = new Map<string, StoredHint[]>();
    const failed = new Set<string>();
    try {
      for await (const hint of this.store.scan()) {
        if (this.stopped) return;
        if (this.store.expired(hint)) await this.store.drop(hint, HintDropReason.Window);
        else if (gone.has(hint.owner)) await this.store.drop(hint, HintDropReason.OwnerGone);
        else if (ready.has(hint.owner) && !failed.has(hint.owner)) {
          const batch = batches.get(hint.owner) ?? [];
          batch.push(hint);
          batches.set(hint.owner, batch);
          if (batch.length >= limits.handoffBatchItemsMax || batchBytes(batch) >= limits.handoffBatchBytesMax) {
            batches.delete(hint.owner);
            if (!(await this.send(hint.owner, batch))) failed.add(hint.owner);
          }
        }
      }
      for (const [owner, batch] of batches) {
        if (this.stopped) return;
        await this.send(owner, batch);
      }
    } catch (err) {
      this.logs.warn('hint-replay', { err: (err as Error).message }, 'hinted handoff round failed; retrying next round');
    }
  }

  /** Sends one batch to its owner; deletes each hint it acknowledged; false when any failed. Paced at bytesPerSecond. */
  private async send(owner: string, batch: StoredHint[]): Promise<boolean> {
    const results = await Promise.allSettled(batch.map((h) => this.client.put(owner, h.key, h.versions)));
    let ok = true;
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') await this.store.delivered(batch[i]!);
      else {
        ok = false;
        this.logs.warn(`hint-send-${owner}`, { owner, err: (r.reason as Error).message }, 'a hint was not delivered; retrying next round');
      }
    }
    const bytes = batchBytes(batch);
    this.bytesSent += bytes;
    const waitMs = Math.ceil((bytes * 1000) / this.opts.bytesPerSecond);
    if (waitMs > 0 && !this.stopped) {
      // stop() ends the wait: a low rate and a full batch must not hold a shutdown for minutes.
      await new Promise<void>((r) => {
        const timer = this.clock.setTimer(waitMs, r);
        this.endPacing = () => {
          timer.cancel();
          r();
        };
      });
      this.endPacing = undefined;
    }
    return ok;
  }
}

function nodesOf(ring: Ring): string[] {
  return [...new Set(ring.tokens.map((t) => t.nodeId))];
}

function batchBytes(batch: readonly StoredHint[]): number {
  let n = 0;
  for (const h of batch) n += h.key.length + versionsBytes(h.versions);
  return n;
}
