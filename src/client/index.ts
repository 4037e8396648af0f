/**
 * The GoD-DB TypeScript SDK (`import { connect } from 'god-db'`).
 *
 *   const db = await connect({ servers: 'nats://127.0.0.1:4250' });
 *   await db.put('user.42', 'hello');
 *   const got = await db.get('user.42');   // null when absent
 *   await db.put('user.42', 'bye', { context: got?.context });
 *   await db.close();
 *
 * Failures are typed errors carrying the wire code (see ErrorCode).
 */
import type { NatsConfig } from '../config/types.js';
import { ErrorCode, GodDbError, TimeoutError } from '../core/errors.js';
import { connectNats } from '../transport/nats.js';
import type { Transport } from '../transport/transport.js';
import { clientOverTransport, type GodDbClient } from './client.js';

export {
  BadRequestError,
  ErrorCode,
  GodDbError,
  NotFoundError,
  QuorumNotMetError,
  StorageError,
  TimeoutError,
  TooLargeError,
  errorFromCode,
} from '../core/errors.js';
export { clientOverTransport } from './client.js';
export type { GetOptions, GetResult, GodDbClient, PutResult, WriteOptions } from './client.js';
export type { EndpointCounts, NodeInfo } from './nodes.js';

export interface ConnectOptions {
  /** One NATS URL or several (any server of the cluster). */
  servers: string | string[];
  user?: string;
  pass?: string;
  token?: string;
  /** A NATS .creds file (JWT + nkey seed). */
  credsFile?: string;
  /** A file holding an nkey seed. */
  nkeySeedFile?: string;
  /** TLS to NATS; an empty object enables it with the system CAs. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Bound on connecting and on every request (default 5000). */
  timeoutMs?: number;
  /** Connection name, as NATS monitoring shows it (default 'goddb-client'). */
  name?: string;
}

export const defaultTimeoutMs = 5000;

export async function connect(opts: ConnectOptions): Promise<GodDbClient> {
  const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
  const cfg = natsConfig(opts);
  const transport = await withTimeout(connectNats(cfg, opts.name ?? 'goddb-client', { waitOnFirstConnect: false, connectTimeoutMs: timeoutMs }), timeoutMs, cfg.servers);
  return clientOverTransport(transport, { timeoutMs });
}

function natsConfig(opts: ConnectOptions): NatsConfig {
  const servers = typeof opts.servers === 'string' ? opts.servers.split(',') : [...opts.servers];
  return {
    servers: servers.map((s) => s.trim()).filter((s) => s.length > 0),
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
function withTimeout(connecting: Promise<Transport>, timeoutMs: number, servers: string[]): Promise<Transport> {
  return new Promise<Transport>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new TimeoutError(`could not connect to NATS at ${servers.join(', ')} within ${timeoutMs}ms`));
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
        reject(new GodDbError(ErrorCode.Internal, `could not connect to NATS at ${servers.join(', ')}: ${message}`, { cause: err }));
      },
    );
  });
}
