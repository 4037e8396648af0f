/**
 * Where the cluster is, in the spirit of `nats context`: a small JSON file
 * that `goddb dev` (npm start) writes and that the CLI and connect() read
 * when they are given no server.
 *
 * The file is $GODDB_CONTEXT, else $XDG_CONFIG_HOME/goddb/context.json
 * (~/.config/goddb/context.json). Its keys are those of a nats context, so a
 * nats context file works too: `url` (required; comma-separated for
 * several), `description`, and the credentials `user`, `password`, `token`,
 * `creds` (a .creds file), `nkey` (a seed file), `ca`, `cert`, `key` (TLS).
 *
 * Where the servers come from, the first that is set:
 *   1. servers given (--servers; connect({ servers }))
 *   2. a context file given (--context-file; connect({ context }))
 *   3. GODDB_NATS_SERVERS, then NATS_URL
 *   4. the context file, when it exists ($GODDB_CONTEXT must exist)
 *   5. nats://127.0.0.1:4222
 * A context's credentials are used only with its own servers.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface GodDbContext {
  url: string;
  description?: string;
  user?: string;
  password?: string;
  token?: string;
  creds?: string;
  nkey?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

/** Where servers were found, for messages: `--servers`, `NATS_URL`, `context <file>`... */
export interface Target {
  servers: string[];
  source: string;
  /** The context the servers came from, with its credentials. */
  context?: GodDbContext;
}

export const defaultServers = 'nats://127.0.0.1:4222';
export const contextEnv = 'GODDB_CONTEXT';

const optionalKeys = ['description', 'user', 'password', 'token', 'creds', 'nkey', 'ca', 'cert', 'key'] as const;

/** A context file that is missing where one was named, or is not a context. */
export class ContextError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ContextError';
  }
}

/** The context file the environment names: $GODDB_CONTEXT, else under $XDG_CONFIG_HOME (default ~/.config). */
export function contextFile(env: NodeJS.ProcessEnv, home: string = homedir()): string {
  const named = env[contextEnv];
  if (named) return named;
  const config = env['XDG_CONFIG_HOME'] || join(home, '.config');
  return join(config, 'goddb', 'context.json');
}

export function readContext(file: string): GodDbContext {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message;
    throw new ContextError(`cannot read the context ${file}: ${why}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ContextError(`the context ${file} is not a JSON object`);
  const o = raw as Record<string, unknown>;
  if (typeof o['url'] !== 'string' || o['url'].trim() === '') throw new ContextError(`the context ${file} has no "url" (the NATS server URL)`);
  const context: GodDbContext = { url: o['url'] };
  for (const k of optionalKeys) {
    const v = o[k];
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string') throw new ContextError(`the context ${file}: "${k}" must be a string`);
    context[k] = v;
  }
  return context;
}

/** Written whole or not at all, readable by its owner only (it may hold credentials). */
export function writeContext(file: string, context: GodDbContext): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(context, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

export function splitServers(servers: string | readonly string[]): string[] {
  const list = typeof servers === 'string' ? servers.split(',') : [...servers];
  return list.map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The servers to use and where they came from (see the order above); `labels` name the caller's options. */
export function resolveTarget(
  given: { servers?: string | readonly string[] | undefined; context?: string | undefined },
  env: NodeJS.ProcessEnv,
  labels: { servers: string; context: string } = { servers: 'the servers option', context: 'the context option' },
): Target {
  if (given.servers !== undefined && splitServers(given.servers).length > 0) return { servers: splitServers(given.servers), source: labels.servers };
  if (given.context) return fromContext(given.context, `${labels.context} ${given.context}`);
  for (const name of ['GODDB_NATS_SERVERS', 'NATS_URL']) {
    const value = env[name];
    if (value && splitServers(value).length > 0) return { servers: splitServers(value), source: name };
  }
  const file = contextFile(env);
  if (env[contextEnv] || existsSync(file)) return fromContext(file, `${env[contextEnv] ? `${contextEnv}=` : 'context '}${file}`);
  return { servers: [defaultServers], source: `the default (no context at ${file}; npm start writes one)` };
}

/** A context's credentials, named as connect()'s options name them. */
export interface ContextCredentials {
  user?: string;
  pass?: string;
  token?: string;
  /** A NATS .creds file (JWT + nkey seed). */
  credsFile?: string;
  /** A file holding an nkey seed. */
  nkeySeedFile?: string;
  /** TLS to NATS; an empty object enables it with the system CAs. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

export function credentialsOf(context: GodDbContext | undefined): ContextCredentials {
  if (!context) return {};
  return natsCredentials({ ...context, tls: Boolean(context.ca || context.cert || context.key) });
}

/** The names a context file and the CLI's --nats-* flags use for credentials; `tls` turns TLS on. */
export interface CredentialFields {
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  creds?: string | undefined;
  nkey?: string | undefined;
  tls?: boolean | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/** Credentials named as connect()'s options name them, with only the fields that are set. */
export function natsCredentials(f: CredentialFields): ContextCredentials {
  const creds: ContextCredentials = {};
  if (f.user) creds.user = f.user;
  if (f.password) creds.pass = f.password;
  if (f.token) creds.token = f.token;
  if (f.creds) creds.credsFile = f.creds;
  if (f.nkey) creds.nkeySeedFile = f.nkey;
  if (f.tls) {
    creds.tls = {};
    if (f.ca) creds.tls.caFile = f.ca;
    if (f.cert) creds.tls.certFile = f.cert;
    if (f.key) creds.tls.keyFile = f.key;
  }
  return creds;
}

function fromContext(file: string, source: string): Target {
  const context = readContext(file);
  return { servers: splitServers(context.url), source, context };
}
