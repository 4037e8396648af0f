/**
 * Options shared by the commands that act as a client (client, get, put,
 * del): where NATS is and how to authenticate. Environment defaults follow
 * the worker's (GODDB_NATS_*) and the nats CLI's NATS_URL.
 */
import type { Command } from 'commander';
import { connect, type ConnectOptions, type GodDbClient } from '../client/index.js';
import { ErrorCode } from '../core/errors.js';

export const defaultServers = 'nats://127.0.0.1:4222';

export interface ClientFlags {
  servers: string;
  timeout: string;
  natsUser?: string;
  natsPass?: string;
  natsToken?: string;
  natsCreds?: string;
  natsNkey?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  natsTls?: boolean;
}

export function addClientOptions(cmd: Command): Command {
  const env = process.env;
  return cmd
    .option('--servers <urls>', 'NATS URL(s), comma-separated [env GODDB_NATS_SERVERS, NATS_URL]', env['GODDB_NATS_SERVERS'] ?? env['NATS_URL'] ?? defaultServers)
    .option('--timeout <ms>', 'bound on connecting and on each request, in ms', '5000')
    .option('--nats-user <user>', 'NATS user name', env['GODDB_NATS_USER'])
    .option('--nats-pass <pass>', 'NATS password', env['GODDB_NATS_PASS'])
    .option('--nats-token <token>', 'NATS token', env['GODDB_NATS_TOKEN'])
    .option('--nats-creds <file>', 'NATS .creds file', env['GODDB_NATS_CREDS_FILE'])
    .option('--nats-nkey <file>', 'file holding an nkey seed', env['GODDB_NATS_NKEY_SEED_FILE'])
    .option('--nats-tls-ca <file>', 'CA certificate for NATS TLS')
    .option('--nats-tls-cert <file>', 'client certificate for NATS TLS')
    .option('--nats-tls-key <file>', 'client key for NATS TLS')
    .option('--nats-tls', 'require TLS to NATS');
}

/** ClientFlags → the SDK's ConnectOptions; throws a CliError on a bad timeout. */
export function connectOptions(flags: ClientFlags): ConnectOptions {
  const timeoutMs = Number(flags.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new CliError(ErrorCode.BadRequest, `--timeout must be a positive integer (ms), got ${flags.timeout}`);
  const opts: ConnectOptions = { servers: flags.servers, timeoutMs, name: 'goddb-cli' };
  if (flags.natsUser) opts.user = flags.natsUser;
  if (flags.natsPass) opts.pass = flags.natsPass;
  if (flags.natsToken) opts.token = flags.natsToken;
  if (flags.natsCreds) opts.credsFile = flags.natsCreds;
  if (flags.natsNkey) opts.nkeySeedFile = flags.natsNkey;
  if (flags.natsTls || flags.natsTlsCa || flags.natsTlsCert) {
    opts.tls = {};
    if (flags.natsTlsCa) opts.tls.caFile = flags.natsTlsCa;
    if (flags.natsTlsCert) opts.tls.certFile = flags.natsTlsCert;
    if (flags.natsTlsKey) opts.tls.keyFile = flags.natsTlsKey;
  }
  return opts;
}

export function connectWith(flags: ClientFlags): Promise<GodDbClient> {
  return connect(connectOptions(flags));
}

/** A usage or input problem found by the CLI itself, with a wire-style code. */
export class CliError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** `error <code>: <message>`; errors without a code are 500. */
export function formatError(err: unknown): string {
  const code = typeof (err as { code?: unknown })?.code === 'number' ? (err as { code: number }).code : ErrorCode.Internal;
  const message = err instanceof Error ? err.message : String(err);
  return `error ${code}: ${message}`;
}
