/**
 * Issue 14, item 4: `goddb dev` (what `npm start` runs) writes a context, and
 * the CLI and connect() find that cluster with no flags; NATS that cannot be
 * reached is exit 3 with what was tried and how to start a cluster, not an
 * "error 500". Every goddb here runs with its own XDG_CONFIG_HOME, in a
 * temporary directory.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/index.js';
import { writeContext } from '../../src/client/context.js';
import { freePort } from '../../src/devtools/servers.js';
import { cliPath, tempDir, type ScriptRun } from '../helpers/workers.js';

const dir = tempDir('context');
const configHome = join(dir.path, 'config');
const contextPath = join(configHome, 'goddb', 'context.json');

/** The environment of a user with no NATS settings of their own. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: configHome, ...extra };
  for (const name of ['GODDB_NATS_SERVERS', 'NATS_URL', 'GODDB_CONTEXT']) if (!(name in extra)) delete env[name];
  return env;
}

function goddb(args: string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: dir.path, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `goddb dev` until its banner says the cluster is ready. */
async function startDev(port: number): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [cliPath, 'dev', '--nats-port', String(port), '--nodes', '1', '--engine', 'memory'], { cwd: dir.path, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`goddb dev was not ready within 30 s:\n${output}`)), 30_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (output.includes('Ctrl-C stops the cluster.')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`goddb dev exited with ${code}:\n${output}`)));
  });
  return { child, output: () => output };
}

after(() => dir.remove());

describe('the context npm start writes', () => {
  let dev: { child: ChildProcess; output: () => string } | undefined;
  let port: number;

  before(async () => {
    port = await freePort();
    dev = await startDev(port);
  });

  after(async () => {
    if (dev && dev.child.exitCode === null) {
      const exited = new Promise((r) => dev!.child.once('exit', r));
      dev.child.kill('SIGINT');
      await exited;
    }
  });

  it('context - goddb dev writes the context, and goddb finds the cluster with no --servers', async () => {
    assert.deepEqual(JSON.parse(readFileSync(contextPath, 'utf8')).url, `nats://127.0.0.1:${port}`);
    assert.match(dev!.output(), new RegExp(`Context: ${contextPath.replace(/[.]/g, '\\.')}`));
    assert.match(dev!.output(), /put hello world\n/, 'the banner shows goddb without --servers');
    const { user, password } = JSON.parse(readFileSync(contextPath, 'utf8')) as { user: string; password: string };
    assert.equal(user, 'goddb-client', 'the context holds the client role');
    assert.ok(dev!.output().includes(`Client credentials: user goddb-client password ${password}`), 'the banner shows how a client connects');
    assert.ok(existsSync(join(dir.path, 'data', 'nats-credentials.json')), 'the passwords are kept under data/');
    const put = await goddb(['put', 'hello', 'world']);
    assert.equal(put.code, 0, put.stderr);
    const get = await goddb(['get', 'hello']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, 'world');
    const status = await goddb(['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^node1\s/m);
  });

  it('context - connect() with no servers finds it too, and GODDB_NATS_SERVERS or --servers win over it', async () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, cleanEnv());
      for (const name of ['GODDB_NATS_SERVERS', 'NATS_URL', 'GODDB_CONTEXT']) delete process.env[name];
      const db = await connect();
      assert.equal((await db.get('hello'))?.text(), 'world');
      await db.close();
    } finally {
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    }
    const closed = `nats://127.0.0.1:${await freePort()}`;
    const overridden = await goddb(['get', 'hello'], cleanEnv({ GODDB_NATS_SERVERS: closed }));
    assert.equal(overridden.code, 3, 'the environment wins over the context');
    assert.match(overridden.stderr, /from GODDB_NATS_SERVERS/);
    // A context's credentials go only with its own servers: with --servers, the client role's are given too.
    const { user, password } = JSON.parse(readFileSync(contextPath, 'utf8')) as { user: string; password: string };
    const flags = ['--servers', `nats://127.0.0.1:${port}`, '--nats-user', user, '--nats-pass', password];
    assert.equal((await goddb(['get', 'hello', ...flags], cleanEnv({ GODDB_NATS_SERVERS: closed }))).stdout, 'world');
  });

  it('context - stopping the cluster leaves the context; goddb then says how to start one, with exit 3', async () => {
    const exited = new Promise<number | null>((r) => dev!.child.once('exit', r));
    dev!.child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.equal(JSON.parse(readFileSync(contextPath, 'utf8')).url, `nats://127.0.0.1:${port}`);
    for (const args of [['get', 'hello'], ['status'], ['client']]) {
      const run = await goddb(args);
      assert.equal(run.code, 3, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, new RegExp(`could not connect to NATS at nats://127\\.0\\.0\\.1:${port} \\(from context ${contextPath.replace(/[.]/g, '\\.')}\\)`));
      assert.match(run.stderr, /npm start/);
      assert.doesNotMatch(run.stderr, /error 500/);
    }
  });
});

describe('goddb without a cluster', () => {
  it('context - an unreachable --servers is exit 3, naming the servers and where they came from', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const run = await goddb(['put', 'k', 'v', '--servers', url]);
    assert.equal(run.code, 3);
    assert.match(run.stderr, new RegExp(`could not connect to NATS at ${url.replace(/[.]/g, '\\.')} \\(from --servers\\)`));
  });

  it('context - no context at all: the default server, and the message says npm start writes one', async (t) => {
    const run = await goddb(['get', 'k', '--timeout', '2000'], cleanEnv({ XDG_CONFIG_HOME: join(dir.path, 'nothing-here') }));
    if (run.code !== 3) {
      t.skip(`something answers on 127.0.0.1:4222 here (${run.stderr.trim()}); the default is checked in test/unit/context.test.ts`);
      return;
    }
    assert.match(run.stderr, /nats:\/\/127\.0\.0\.1:4222 \(from the default \(no context at .*; npm start writes one\)\)/);
  });

  it('context - a GODDB_CONTEXT or --context-file that cannot be read is exit 2, naming the file', async () => {
    const missing = join(dir.path, 'missing.json');
    for (const [args, env] of [[['get', 'k'], cleanEnv({ GODDB_CONTEXT: missing })], [['get', 'k', '--context-file', missing], cleanEnv()]] as const) {
      const run = await goddb([...args], env);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`cannot read the context ${missing.replace(/[.]/g, '\\.')}: it does not exist`));
    }
    const bad = join(dir.path, 'bad.json');
    writeContext(bad, { url: '' });
    assert.equal((await goddb(['get', 'k', '--context-file', bad])).code, 2);
  });
});
