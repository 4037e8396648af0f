/**
 * The GoD-DB TypeScript SDK (`import { connect } from 'god-db'`).
 *
 *   const db = await connect();   // the cluster `npm start` started (its context), or connect({ servers: 'nats://host:4222' })
 *   await db.put('user.42', 'hello');
 *   const got = await db.get('user.42');   // null when absent
 *   await db.put('user.42', 'bye', { context: got?.context });
 *   await db.put('session.7', 'token', { ttl: '30m' });   // reads as absent 30 minutes later
 *   await db.leave('n3');                 // n3 hands its ranges over and exits; db.nodes() shows progress
 *   await db.close();
 *
 * Failures are typed errors carrying the wire code (see ErrorCode); a
 * failure to reach NATS is a ConnectionError, which has none.
 */
import { connectNats, type NatsOptions } from '../transport/nats.js';
import type { Transport } from '../transport/transport.js';
import { clientOverTransport, type ClientRouting, type GodDbClient } from './client.js';
import { ConnectionError } from './connection_error.js';
import { credentialsOf, resolveTarget, type ContextCredentials, type Target } from './context.js';

export {
  BadRequestError,
  ConditionFailedError,
  ConflictError,
  ErrorCode,
  GodDbError,
  NotFoundError,
  QuorumNotMetError,
  StorageError,
  TimeoutError,
  TooLargeError,
  UnavailableError,
  errorFromCode,
} from '../core/errors.js';
export { clientOverTransport } from './client.js';
export type { ClientRouting, GetOptions, GetResult, GodDbClient, MembershipChange, PutOptions, PutResult, WriteOptions } from './client.js';
export { ConnectionError } from './connection_error.js';
export type { KeysOptions } from './keys.js';
export type { WatchOptions, Watcher } from './watch.js';
export { ChangeOp, type ChangeEvent } from '../protocol/changes.js';
export { ContextError, contextFile, readContext, type GodDbContext } from './context.js';
export type { NodeInfo } from './nodes.js';
export { clusterStatus, type ClusterStatus, type MemberStatusView } from './ring_status.js';
export type { OwnersReport, RingMemberReport, RingReport } from '../protocol/placement_report.js';
export { AnswerClass, answerClass, summarizeRequests, type RequestCounts, type RequestSummary } from '../protocol/request_counts.js';

/** How connect() reaches NATS: where, with which credentials (the fields a context file holds), and how long it waits. */
export interface ConnectOptions extends ClientRouting, ContextCredentials {
  /**
   * One NATS URL or several (any server of the cluster). Default: the
   * context's (GODDB_CONTEXT, else ~/.config/goddb/context.json, which
   * `npm start` writes; GODDB_NATS_SERVERS and NATS_URL come first), else
   * nats://127.0.0.1:4222.
   */
  servers?: string | string[];
  /** A context file to take the servers and credentials from (instead of the default one). */
  context?: string;
  /** Bound on connecting and on every request (default 5000). */
  timeoutMs?: number;
  /** Connection name, as NATS monitoring shows it (default 'goddb-client'). */
  name?: string;
  /**
   * Where replies come (nats.js `inboxPrefix`; default `_INBOX`): with a NATS user of its own
   * whose subscribe permission is only `_INBOX.app1.>`, `'_INBOX.app1'` keeps an application's
   * replies from other clients (README, "Security").
   */
  inboxPrefix?: string;
}

export const defaultTimeoutMs = 5000;

/**
 * Connects to NATS (see ConnectOptions.servers for where); rejects with a
 * ConnectionError, naming the servers tried and where they came from, when
 * none answers within `timeoutMs`, and with a ContextError when a context
 * file that should be there is missing or malformed.
 */
export async function connect(opts: ConnectOptions = {}): Promise<GodDbClient> {
  const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
  const target = resolveTarget(opts, process.env);
  const cfg = natsConfig({ ...credentialsOf(target.context), ...definedOnly(opts) }, target.servers);
  const transport = await withTimeout(connectNats(cfg, opts.name ?? 'goddb-client', { waitOnFirstConnect: false, connectTimeoutMs: timeoutMs, ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}) }), timeoutMs, target);
  return clientOverTransport(transport, { timeoutMs, routing: opts.routing ?? 'direct', ...(opts.routeProbeMs === undefined ? {} : { routeProbeMs: opts.routeProbeMs }), ...(opts.ringPollMs === undefined ? {} : { ringPollMs: opts.ringPollMs }) });
}

function definedOnly(opts: ConnectOptions): ConnectOptions {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as ConnectOptions;
}

function natsConfig(opts: ConnectOptions, servers: string[]): NatsOptions {
  return {
    servers,
    user: opts.user ?? '',
    pass: opts.pass ?? '',
    token: opts.token ?? '',
    credsFile: opts.credsFile ?? '',
    nkeySeedFile: opts.nkeySeedFile ?? '',
    tls: {
      enabled: opts.tls !== undefined,
      caFile: opts.tls?.caFile ?? '',
      certFile: opts.tls?.certFile ?? '',
      keyFile: opts.tls?.keyFile ?? '',
    },
  };
}

/**
 * The adapter retries the first connection forever (right for a node that
 * may start before NATS), so the SDK bounds it. A connection that succeeds
 * after the deadline is closed at once. Known gap: connectNats offers no way
 * to cancel, so after a timeout its dial loop keeps retrying (and keeps the
 * process alive) until a server answers.
 */
function withTimeout(connecting: Promise<Transport>, timeoutMs: number, target: Target): Promise<Transport> {
  return new Promise<Transport>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new ConnectionError(target.servers, target.source, `no answer within ${timeoutMs}ms`));
    }, timeoutMs);
    connecting.then(
      (transport) => {
        clearTimeout(timer);
        if (late) void transport.close().catch(() => undefined);
        else resolve(transport);
      },
      (err: unknown) => {
        clearTimeout(timer);
        const message = err instanceof Error ? err.message : String(err);
        reject(new ConnectionError(target.servers, target.source, message, { cause: err }));
      },
    );
  });
}
