/**
 * Issue 13, item 2: TLS as deploy/ ships it. deploy/tls/make-certs.sh makes a
 * CA and the server, node and client certificates; deploy/tls/nats-tls.conf
 * (with the certificates where it expects them, here a temporary directory)
 * passes `nats-server -t` and runs; a worker and a client connect over mutual
 * TLS with their own certificates and the cluster serves; a connection
 * without TLS or without a client certificate is refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newPassword, NatsRole } from '../../src/cli/dev_credentials.js';
import { connect, type GodDbClient } from '../../src/client/index.js';
import { packageRoot } from '../../src/config/load.js';
import { findBinary, startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const root = packageRoot();
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const skip = hasOpenssl ? false : 'openssl is not installed (apt-get install openssl): deploy/tls/make-certs.sh needs it';

describe('tls - a node and a client over mutual TLS with the certificates deploy/tls makes', { skip }, () => {
  const dir = tempDir('tls');
  const certs = join(dir.path, 'certs');
  const env = { GODDB_NATS_NODE_PASSWORD: newPassword(), GODDB_NATS_CLIENT_PASSWORD: newPassword() };
  let conf = '';
  let nats: NatsServerHandle | undefined;
  let worker: Worker | undefined;
  let db: GodDbClient | undefined;

  before(async () => {
    const made = spawnSync('bash', [join(root, 'deploy/tls/make-certs.sh'), certs], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(made.status, 0, `make-certs.sh: ${made.stderr}${made.stdout}`);
    // The shipped configuration, laid out as in the repository, with the certificates where they were made.
    for (const sub of ['tls', 'nats']) mkdirSync(join(dir.path, 'deploy', sub), { recursive: true });
    copyFileSync(join(root, 'deploy/nats/auth.conf'), join(dir.path, 'deploy/nats/auth.conf'));
    conf = join(dir.path, 'deploy/tls/nats-tls.conf');
    const shipped = readFileSync(join(root, 'deploy/tls/nats-tls.conf'), 'utf8');
    assert.match(shipped, /\/etc\/nats\/tls\//);
    writeFileSync(conf, shipped.replaceAll('/etc/nats/tls/', `${certs}/`));
  });

  after(async () => {
    await db?.close();
    await worker?.kill('SIGKILL');
    await nats?.stop();
    dir.remove();
  });

  it('tls - make-certs.sh makes every file the configuration and the roles name, and keeps the keys private', () => {
    for (const name of ['ca', 'server', 'node', 'client']) {
      assert.ok(existsSync(join(certs, `${name}.pem`)) && existsSync(join(certs, `${name}.key`)), name);
    }
    const verified = spawnSync('openssl', ['verify', '-CAfile', join(certs, 'ca.pem'), ...['server', 'node', 'client'].map((n) => join(certs, `${n}.pem`))], { encoding: 'utf8' });
    assert.equal(verified.status, 0, verified.stderr);
    for (const name of ['ca', 'server', 'node', 'client']) {
      assert.equal(statSync(join(certs, `${name}.key`)).mode & 0o777, 0o600, `${name}.key is readable by its owner only`);
    }
  });

  it('tls - nats-tls.conf passes nats-server -t with the certificates in place', async () => {
    const r = spawnSync(await findBinary('nats-server'), ['-t', '-c', conf], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, ...env } });
    assert.equal(r.status, 0, `${r.stderr}${r.stdout}`);
  });

  it('tls - a worker and a client connect over TLS with their certificates, and the cluster serves', async () => {
    nats = await startNatsServer({ configFile: conf, env });
    worker = await startWorker('t1', [
      '--cluster', 'tls', '-peers', 't1', '-discovery', nats.url, '--engine', 'memory', '--data-dir', join(dir.path, 't1'),
      '-replication', '1', '-readquorum', '1', '-writequorum', '1',
      '--nats-user', NatsRole.Node, '--nats-pass', env.GODDB_NATS_NODE_PASSWORD,
      '--nats-tls-ca', join(certs, 'ca.pem'), '--nats-tls-cert', join(certs, 'node.pem'), '--nats-tls-key', join(certs, 'node.key'),
    ]);
    db = await connect({
      servers: nats.url,
      user: NatsRole.Client,
      pass: env.GODDB_NATS_CLIENT_PASSWORD,
      tls: { caFile: join(certs, 'ca.pem'), certFile: join(certs, 'client.pem'), keyFile: join(certs, 'client.key') },
    });
    await db.put('tls.k', 'over tls');
    assert.equal((await db.get('tls.k'))?.text(), 'over tls');
  });

  it('tls - the server requires TLS and a client certificate; without one, or without the CA, no connection', async () => {
    assert.ok(nats, 'the server of the previous test runs');
    const info = await serverInfo(nats.port);
    assert.equal(info['tls_required'], true, 'the server offers no plaintext connection');
    assert.equal(info['tls_verify'], true, 'and asks every client for a certificate');
    const creds = { servers: nats.url, user: NatsRole.Client, pass: env.GODDB_NATS_CLIENT_PASSWORD, timeoutMs: 3000 };
    await assert.rejects(connect({ ...creds, tls: { caFile: join(certs, 'ca.pem') } }), 'no client certificate');
    // nats.js upgrades to TLS by itself when the server requires it; with no CA given, the system's do not know this one.
    await assert.rejects(connect(creds), /certificate/);
  });
});

/** The INFO line a NATS server sends first, in plain text, before any TLS handshake. */
function serverInfo(port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('no INFO within 5 s')));
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end === -1) return;
      socket.destroy();
      const line = text.slice(0, end);
      if (!line.startsWith('INFO ')) reject(new Error(`not an INFO line: ${line}`));
      else resolve(JSON.parse(line.slice(5)) as Record<string, unknown>);
    });
  });
}
