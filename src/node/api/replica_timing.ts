/**
 * Latency of the node-to-node protocol (`god.<cluster>.node.<id>.<op>`), as
 * seen from both ends: a transport wrapped around the node's own, so that the
 * replica, anti-entropy, handoff, gossip and Paxos code keep their transport
 * and know nothing of metrics.
 *
 *   sent:   from the request leaving this node to its reply (or failure)
 *   served: from the request reaching this node to its reply being sent
 *
 * Labels are bounded: `op` is one of ReplicaOp (anything else is not timed),
 * `outcome` is `ok` or an error code of core/errors.ts (or `error` for one
 * outside it). No peer label: a cluster of many nodes would multiply series.
 */
import { isErrorCode } from '../../core/errors.js';
import { ReplicaOp } from '../../protocol/subjects.js';
import { ServiceErrorHeader, type InboundMessage, type MessageHandler, type Reply, type RequestOptions, type Transport } from '../../transport/transport.js';
import { LightHistogram } from './light_histogram.js';

const ops = new Set<string>(Object.values(ReplicaOp));
export const replicaLatencyBuckets = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function outcomeOf(code: number | undefined): string {
  if (code === undefined) return 'ok';
  return isErrorCode(code) ? String(code) : 'error';
}

/** A histogram by op and outcome, not registered yet (light_histogram.ts: each request is timed into one). */
function latencyHistogram(name: string, help: string): LightHistogram<'op' | 'outcome'> {
  return new LightHistogram(name, help, ['op', 'outcome'], replicaLatencyBuckets);
}

/** The two histograms; registered by Metrics in the node's registry. */
export class ReplicaTiming {
  readonly sent = latencyHistogram(
    'goddb_replica_request_sent_duration_seconds',
    'Node-to-node requests this node sent, from sending to the reply or failure, by operation (ReplicaOp) and outcome (ok or error code; 504 a timeout, 503 no responder)',
  );
  readonly served = latencyHistogram(
    'goddb_replica_request_served_duration_seconds',
    'Node-to-node requests this node answered, from arrival to its reply, by operation (ReplicaOp) and outcome (ok or error code)',
  );
}

/** Seconds since `startedMs` (performance.now()). */
function secondsSince(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}

/** The ReplicaOp of a node subject under `prefix` (`god.<cluster>.node.`), or undefined for any other subject. */
function opOf(subject: string, prefix: string): string | undefined {
  if (!subject.startsWith(prefix)) return undefined;
  const op = subject.slice(subject.lastIndexOf('.') + 1);
  return ops.has(op) ? op : undefined;
}

/** `inner` with node-to-node requests (sent and served) timed into `timing`; everything else passes through. */
export function timeReplicaTraffic(inner: Transport, cluster: string, timing: ReplicaTiming): Transport {
  const prefix = `god.${cluster}.node.`;
  const timed: Transport = {
    async request(subject: string, data: Uint8Array, opts: RequestOptions): Promise<Reply> {
      const op = opOf(subject, prefix);
      if (op === undefined) return inner.request(subject, data, opts);
      const started = performance.now();
      try {
        const reply = await inner.request(subject, data, opts);
        // The code header alone: the caller builds the error (an Error per failed reply is enough).
        const code = reply.header(ServiceErrorHeader.Code);
        timing.sent.series(op, outcomeOf(code === undefined ? undefined : Number(code))).observe(secondsSince(started));
        return reply;
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        timing.sent.series(op, typeof code === 'number' ? outcomeOf(code) : 'error').observe(secondsSince(started));
        throw err;
      }
    },
    gather: (subject, data, opts) => inner.gather(subject, data, opts),
    publish: (subject, data, headers) => inner.publish(subject, data, headers),
    subscribe(subject: string, handler: MessageHandler, opts?: { queue?: string }) {
      const op = opOf(subject, prefix);
      if (op === undefined) return inner.subscribe(subject, handler, opts);
      return inner.subscribe(subject, (msg) => handler(timedMessage(msg, op, timing)), opts);
    },
    serve: (spec) => inner.serve(spec),
    maxPayloadBytes: () => inner.maxPayloadBytes(),
    flush: () => inner.flush(),
    close: () => inner.close(),
  };
  if (inner.outboundBytes) timed.outboundBytes = () => inner.outboundBytes!();
  if (inner.replay) timed.replay = (stream, start, handler) => inner.replay!(stream, start, handler);
  return timed;
}

/** `msg`, whose first reply (or error reply) observes the time since it arrived. */
function timedMessage(msg: InboundMessage, op: string, timing: ReplicaTiming): InboundMessage {
  const started = performance.now();
  let done = false;
  const observe = (outcome: string) => {
    if (done) return;
    done = true;
    timing.served.series(op, outcome).observe(secondsSince(started));
  };
  return {
    get subject() {
      return msg.subject;
    },
    get data() {
      return msg.data;
    },
    get expectsReply() {
      return msg.expectsReply;
    },
    header: (name) => msg.header(name),
    headerPadded: (name) => msg.headerPadded(name),
    respond(data, headers) {
      observe('ok');
      msg.respond(data, headers);
    },
    respondError(code, description, headers) {
      observe(outcomeOf(code));
      msg.respondError(code, description, headers);
    },
  };
}
