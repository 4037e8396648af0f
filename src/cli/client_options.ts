/**
 * Options shared by the commands that act as a client (client, get, put,
 * del, owners, status, leave, remove): where NATS is and how to authenticate. Without --servers the
 * servers come from the environment (GODDB_NATS_SERVERS, the nats CLI's
 * NATS_URL) or the context that `npm start` writes (src/client/context.ts).
 *
 * Exit codes: 0 done; 1 the request failed (`error <code>: ...`, the code
 * is the node's, or the CLI's own 400/404 for bad input and a missing key);
 * 2 a command line that cannot be parsed (commander) or a context file that
 * cannot be used; 3 NATS could not be reached (no node was asked anything).
 */
import type { Command } from 'commander';
import { connect, type ConnectOptions, type GodDbClient } from '../client/index.js';
import { ConnectionError } from '../client/connection_error.js';
import { ContextError, contextEnv, credentialsOf, natsCredentials, resolveTarget, type Target } from '../client/context.js';
import { ErrorCode } from '../core/errors.js';

export const ExitCode = {
  Ok: 0,
  Failed: 1,
  /** Also commander's usage errors (main.ts). */
  BadContext: 2,
  Unreachable: 3,
} as const;

export interface ClientFlags {
  servers?: string;
  contextFile?: string;
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

/**
 * The options above on `cmd`. Without `requestTimeout` there is no
 * `--timeout <ms>`: a command that waits for something longer (`leave`,
 * `remove`) gives --timeout its own meaning.
 */
export function addClientOptions(cmd: Command, opts: { requestTimeout?: boolean } = {}): Command {
  const env = process.env;
  cmd
    .option('--servers <urls>', 'NATS URL(s), comma-separated [default: $GODDB_NATS_SERVERS, $NATS_URL, the context, nats://127.0.0.1:4222]')
    .option('--context-file <file>', `context file with the NATS URL and credentials [default: $${contextEnv}, ~/.config/goddb/context.json, written by npm start]`);
  if (opts.requestTimeout !== false) cmd.option('--timeout <ms>', 'bound on connecting and on each request, in ms', '5000');
  return cmd
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

/** Where the CLI connects: --servers, --context-file, the environment or the default context (see context.ts). */
export function cliTarget(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): Target {
  return resolveTarget({ servers: flags.servers, context: flags.contextFile }, env, { servers: '--servers', context: '--context-file' });
}

/** ClientFlags → the SDK's ConnectOptions for `target` (credential flags win over the context's); throws a CliError on a bad timeout. */
export function connectOptions(flags: ClientFlags, target: Target): ConnectOptions {
  const timeoutMs = Number(flags.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new CliError(ErrorCode.BadRequest, `--timeout must be a positive integer (ms), got ${flags.timeout}`);
  // Flags win over the context, field by field (a TLS flag replaces the context's TLS settings whole).
  const fromFlags = natsCredentials({
    user: flags.natsUser,
    password: flags.natsPass,
    token: flags.natsToken,
    creds: flags.natsCreds,
    nkey: flags.natsNkey,
    tls: Boolean(flags.natsTls || flags.natsTlsCa || flags.natsTlsCert),
    ca: flags.natsTlsCa,
    cert: flags.natsTlsCert,
    key: flags.natsTlsKey,
  });
  return { ...credentialsOf(target.context), ...fromFlags, servers: target.servers, timeoutMs, name: 'goddb-cli' };
}

/**
 * Connects as `flags` say. When that fails, says why on stderr (what was
 * tried and how to start a cluster, for NATS that cannot be reached) and
 * gives the exit code instead.
 */
export async function openClient(flags: ClientFlags): Promise<{ client: GodDbClient; target: Target } | { exitCode: number }> {
  let target: Target | undefined;
  try {
    target = cliTarget(flags);
    return { client: await connect(connectOptions(flags, target)), target };
  } catch (err) {
    if (err instanceof ContextError) {
      process.stderr.write(`goddb: ${err.message}\n`);
      return { exitCode: ExitCode.BadContext };
    }
    if (err instanceof ConnectionError && target !== undefined) {
      process.stderr.write(unreachableMessage(target, err.reason));
      return { exitCode: ExitCode.Unreachable };
    }
    process.stderr.write(`${formatError(err)}\n`);
    return { exitCode: ExitCode.Failed };
  }
}

/** What was tried, from where, and how to get a cluster there. */
export function unreachableMessage(target: Target, reason: string): string {
  const first = `goddb: could not connect to NATS at ${target.servers.join(', ')} (from ${target.source}): ${reason}`;
  if (/authori[sz]ation|authentication|credentials/i.test(reason)) {
    return `${first}\nNATS answered but refused the credentials: give them with --nats-user/--nats-pass, --nats-token, --nats-creds or --nats-nkey, or in the context file.\n`;
  }
  return [
    first,
    'No GoD-DB cluster is reachable there. Start one with `npm start` in a GoD-DB checkout (or `goddb dev`),',
    'which writes the context that goddb reads, or name yours with --servers URL, --context-file FILE,',
    `$GODDB_NATS_SERVERS, $NATS_URL or $${contextEnv}.`,
    '',
  ].join('\n');
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
