/**
 * The NATS passwords of `goddb dev` (npm start): made at random on the first
 * run and kept in data/nats-credentials.json (data/ is gitignored; the file is
 * readable by its owner only), so that every later run, the context and any
 * client given them keep working. Nothing here is a default: a checkout that
 * never ran `npm start` has no password at all.
 *
 * nats-server.conf reads them from its environment (deploy/nats/auth.conf);
 * the workers get the node role's through theirs (GODDB_NATS_USER,
 * GODDB_NATS_PASS), and the context holds the client role's.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The user names of the two roles in deploy/nats/auth.conf. */
export const NatsRole = { Node: 'goddb-node', Client: 'goddb-client' } as const;

export interface UserPassword {
  user: string;
  password: string;
}

export interface DevCredentials {
  node: UserPassword;
  client: UserPassword;
}

export const credentialsFileName = 'nats-credentials.json';

/**
 * nats-server parses an environment value as a configuration value (0123 is a
 * number, true a boolean), so a password starts with a letter and holds only
 * letters and digits.
 */
const passwordPattern = /^[A-Za-z][A-Za-z0-9]{15,127}$/;

export function newPassword(): string {
  return `p${randomBytes(24).toString('hex')}`;
}

/** The credentials kept under `dataDir`, made and written on the first call. */
export function devCredentials(dataDir: string): { credentials: DevCredentials; file: string; created: boolean } {
  const file = join(dataDir, credentialsFileName);
  if (existsSync(file)) return { credentials: readCredentials(file), file, created: false };
  const credentials: DevCredentials = {
    node: { user: NatsRole.Node, password: newPassword() },
    client: { user: NatsRole.Client, password: newPassword() },
  };
  mkdirSync(dataDir, { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, file);
  return { credentials, file, created: true };
}

function readCredentials(file: string): DevCredentials {
  const broken = (why: string) => new Error(`${file}: ${why}; delete it and npm start makes new passwords`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw broken((err as Error).message);
  }
  const o = raw as Record<string, Partial<UserPassword> | undefined> | null;
  const roles = { node: NatsRole.Node, client: NatsRole.Client } as const;
  for (const [role, user] of Object.entries(roles)) {
    const entry = o?.[role];
    if (entry?.user !== user) throw broken(`"${role}.user" must be ${user}`);
    if (typeof entry.password !== 'string' || !passwordPattern.test(entry.password)) throw broken(`"${role}.password" must be 16 to 128 letters and digits, starting with a letter`);
  }
  // Keep it private even when it was copied in with looser permissions.
  chmodSync(file, 0o600);
  return raw as DevCredentials;
}

/** What nats-server.conf reads from the environment (deploy/nats/auth.conf). */
export function natsServerEnv(c: DevCredentials): Record<string, string> {
  return { GODDB_NATS_NODE_PASSWORD: c.node.password, GODDB_NATS_CLIENT_PASSWORD: c.client.password };
}

/** A worker's NATS credentials, as the config schema reads them from the environment. */
export function workerEnv(c: DevCredentials): Record<string, string> {
  return { GODDB_NATS_USER: c.node.user, GODDB_NATS_PASS: c.node.password };
}
