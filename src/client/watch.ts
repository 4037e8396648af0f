/**
 * `watch(prefix)`: the change feed of the keys starting with `prefix`, as an
 * async iterator of events (protocol/changes.ts), each key's in the order
 * last-writer-wins gives them (HLC, then writer), duplicates and events
 * older than one already delivered for their key dropped (core/change_order.ts).
 *
 * Live (the default): subscribes to the feed's subjects (subjects.ts
 * changeFilters); events published after watch() resolved are delivered,
 * none before. From a JetStream stream that captures the feed (`stream`):
 * replays it from `fromSeq`, `fromTime`, or with `includeHistory` from the
 * last event of each subject (the current value of every subject-keyed key
 * the stream still holds), then follows new events; each event carries its
 * stream sequence (`seq`), so a watcher can resume from `seq + 1`.
 *
 * Bounded: at most limits.watchQueuedEventsMax events wait for a consumer
 * that reads slower than they come; past it new ones are dropped and
 * counted in `dropped` (the feed itself is at-most-once).
 */
import { BadRequestError } from '../core/errors.js';
import { ChangeOrder } from '../core/change_order.js';
import { limits } from '../core/limits.js';
import { parseChangeEvent, type ChangeEvent } from '../protocol/changes.js';
import { changeFilters } from '../protocol/subjects.js';
import type { ReplayStart, Subscription, Transport } from '../transport/transport.js';

export interface WatchOptions {
  /**
   * The name of a JetStream stream capturing the feed (subjects `kvchanges`
   * and `kvchanges.>`): replay from it, then follow it. Needs one of
   * fromSeq, fromTime or includeHistory.
   */
  stream?: string;
  /** With `stream`: start at this stream sequence (1 for everything it holds). */
  fromSeq?: number;
  /** With `stream`: start at the first event stored at or after this time. */
  fromTime?: Date | string;
  /**
   * With `stream`: start with the newest event of each key under the prefix
   * that the stream still holds (its current value, or its delete), then
   * follow. Without a stream there is nothing to take history from: refused.
   */
  includeHistory?: boolean;
}

export interface Watcher extends AsyncIterableIterator<ChangeEvent> {
  /** Events dropped because the consumer fell more than limits.watchQueuedEventsMax behind. */
  readonly dropped: number;
  /** Ends the watch: the iterator finishes once the events already queued are read. */
  stop(): Promise<void>;
}

/** The start of a replay, checked; undefined for a live watch. */
function replayStart(opts: WatchOptions): ReplayStart | undefined {
  const { stream, fromSeq, fromTime, includeHistory } = opts;
  const starts = [fromSeq !== undefined, fromTime !== undefined, includeHistory === true].filter(Boolean).length;
  if (stream === undefined) {
    if (includeHistory === true) throw new BadRequestError('includeHistory needs a JetStream stream that captures the change feed (watch(prefix, { stream, includeHistory: true })): the live feed carries no history');
    if (starts > 0) throw new BadRequestError('fromSeq and fromTime need a stream (watch(prefix, { stream, fromSeq }))');
    return undefined;
  }
  if (typeof stream !== 'string' || !/^[A-Za-z0-9_-]{1,255}$/.test(stream)) throw new BadRequestError(`not a stream name: ${JSON.stringify(stream)}`);
  if (starts !== 1) throw new BadRequestError('a watch from a stream takes exactly one of fromSeq, fromTime or includeHistory');
  if (fromSeq !== undefined) {
    if (!Number.isSafeInteger(fromSeq) || fromSeq < 1) throw new BadRequestError(`fromSeq must be a stream sequence (an integer from 1), got ${fromSeq}`);
    return { seq: fromSeq };
  }
  if (fromTime !== undefined) {
    const time = fromTime instanceof Date ? fromTime : new Date(fromTime);
    if (Number.isNaN(time.getTime())) throw new BadRequestError(`fromTime is not a time: ${String(fromTime)}`);
    return { time };
  }
  return { lastPerSubject: true };
}

/** Starts a watch over `transport`; resolves once the subscriptions are in place. */
export async function watchChanges(transport: Transport, prefix: string, opts: WatchOptions = {}): Promise<Watcher> {
  if (typeof prefix !== 'string') throw new BadRequestError('the prefix must be a string');
  const start = replayStart(opts);
  const queue = new EventQueue(prefix);
  if (start === undefined) {
    const subs = changeFilters(prefix).map((filter) =>
      transport.subscribe(filter, (m) => {
        try {
          queue.offer(m.subject, (name) => m.header(name), m.data);
        } catch {
          // a malformed header block: not an event of ours
        }
      }),
    );
    queue.subs.push(...subs);
    await transport.flush();
    return queue;
  }
  if (transport.replay === undefined) throw new BadRequestError('this connection cannot read JetStream streams');
  // One unfiltered consumer: nats-server before 2.10 takes one filter subject, and the feed has two.
  queue.subs.push(await transport.replay(opts.stream!, start, (m) => queue.offer(m.subject, m.header, m.data, m.seq)));
  return queue;
}

class EventQueue implements Watcher {
  readonly subs: Subscription[] = [];
  private readonly order = new ChangeOrder(limits.watchKeysMax);
  private readonly events: ChangeEvent[] = [];
  private waiting: ((r: IteratorResult<ChangeEvent>) => void) | undefined;
  private stopped = false;
  dropped = 0;

  constructor(private readonly prefix: string) {}

  offer(subject: string, header: (name: string) => string | undefined, data: Uint8Array, seq?: number): void {
    if (this.stopped) return;
    const event = parseChangeEvent(subject, header, data);
    if ('error' in event || !event.key.startsWith(this.prefix)) return;
    if (!this.order.admit(event.key, event)) return;
    if (seq !== undefined) event.seq = seq;
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      waiting({ value: event, done: false });
    } else if (this.events.length >= limits.watchQueuedEventsMax) this.dropped++;
    else this.events.push(event);
  }

  next(): Promise<IteratorResult<ChangeEvent>> {
    const event = this.events.shift();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.stopped) return Promise.resolve({ value: undefined, done: true });
    if (this.waiting !== undefined) return Promise.reject(new Error('a watch is read by one consumer at a time'));
    return new Promise((resolve) => (this.waiting = resolve));
  }

  async return(): Promise<IteratorResult<ChangeEvent>> {
    await this.stop();
    return { value: undefined, done: true };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.subs) s.unsubscribe();
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ChangeEvent> {
    return this;
  }
}
