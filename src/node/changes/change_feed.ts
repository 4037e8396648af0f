/**
 * The change feed's publishing side: after the client API answered 200 to a
 * put or a delete, the coordinating node publishes one event on
 * `kvchanges.<key>` (protocol/changes.ts). Fire and forget: it never throws
 * and never waits, so the write path pays for one header block and a
 * buffer copy. When the NATS connection already holds more than
 * `outboundBytesMax` unsent (a slow or lost server), the event is dropped
 * and counted instead of queued: the feed is at-most-once, and memory stays
 * bounded. A value too large to fit max_payload with the headers is left
 * out of its event (KV-Value-Omitted says its size).
 */
import type { Logger } from 'pino';
import { contextOf, type Version } from '../../core/version.js';
import { encodeContext } from '../../protocol/codec.js';
import { changeMessage } from '../../protocol/changes.js';
import type { Transport } from '../../transport/transport.js';
import { LogLimiter } from '../log_limiter.js';

export interface ChangeFeedOptions {
  /** The largest message the server takes (max_payload), headers and payload together. */
  payloadBytesMax: number;
  /** Unsent bytes on the connection past which events are dropped (limits.changesOutboundBytesMax). */
  outboundBytesMax: number;
}

export class ChangeFeed {
  published = 0;
  /** Events not published: the connection's outbound buffer was over the bound, or the publish failed. */
  dropped = 0;
  /** Events published without their value (too large for max_payload). */
  valuesOmitted = 0;
  private readonly logs: LogLimiter;

  constructor(
    private readonly transport: Transport,
    private readonly opts: ChangeFeedOptions,
    logger: Logger,
    nowMs: () => number,
  ) {
    this.logs = new LogLimiter(logger, nowMs);
  }

  /** Announces that `key` now holds `version` (acknowledged to the client). Never throws. */
  publish(key: string, version: Version): void {
    try {
      if ((this.transport.outboundBytes?.() ?? 0) > this.opts.outboundBytesMax) {
        this.dropped++;
        return;
      }
      const m = changeMessage(key, version, encodeContext(contextOf([version])), this.opts.payloadBytesMax);
      this.transport.publish(m.subject, m.data, m.headers);
      this.published++;
      if (m.omitted) this.valuesOmitted++;
    } catch (err) {
      this.dropped++;
      this.logs.warn('change-publish-failed', { key, err: err instanceof Error ? err.message : String(err) }, 'a change event was not published');
    }
  }
}
