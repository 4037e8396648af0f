/**
 * How `goddb` fails before anything runs: a worker with a bad setting says
 * why in one sentence on stderr, whatever stdout is (a pipe, /dev/null, a
 * terminal), and exits 1; the JSON log on stdout may carry the sentence but
 * never a stack. A command line that cannot be parsed exits 2 with a short
 * message instead of the whole help.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { describe, it } from 'node:test';
import { cliPath, tempDir } from '../helpers/workers.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `goddb <args>` to its end; stdout 'ignore' sends it to /dev/null. */
function goddb(args: string[], opts: { env?: NodeJS.ProcessEnv; stdout?: 'pipe' | 'ignore' } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const stdio: StdioOptions = ['ignore', opts.stdout ?? 'pipe', 'pipe'];
    const env = { ...process.env, ...opts.env };
    const child = spawn(process.execPath, [cliPath, ...args], { stdio, env, timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** stderr holds exactly one line that matches `pattern`, and no stack. */
function assertOneSentence(stderr: string, pattern: RegExp): void {
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr:\n${stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
}

describe('cli - worker start-up errors', () => {
  const replication = /^goddb worker: invalid configuration: replication must be an integer from 1 to 16, got 0\b/;

  it('cli - a bad setting with stdout sent to /dev/null is one sentence on stderr, exit 1', async () => {
    const run = await goddb(['worker', '-replication', '0'], { stdout: 'ignore' });
    assert.equal(run.code, 1);
    assertOneSentence(run.stderr, replication);
  });

  it('cli - with stdout a pipe, the JSON log carries the same sentence as a fatal line, without a stack', async () => {
    const run = await goddb(['worker', '-replication', '0']);
    assert.equal(run.code, 1);
    assertOneSentence(run.stderr, replication);
    const records = run.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(records.length, 1, run.stdout);
    assert.equal(records[0]!['level'], 60);
    assert.match(String(records[0]!['msg']), /node failed to start: invalid configuration: replication must be/);
    assert.doesNotMatch(run.stdout, /"stack"|"err"/);
  });

  it('cli - bad environment variables and config files are named, several problems in one line', async () => {
    const [env, both, file] = await Promise.all([
      goddb(['worker'], { env: { GODDB_GOSSIP_INTERVAL_MS: 'soon' } }),
      goddb(['worker'], { env: { GODDB_GOSSIP_INTERVAL_MS: 'soon', GODDB_REQUEST_TIMEOUT_MS: 'never' } }),
      goddb(['worker', '--config', '/nonexistent/goddb.json']),
    ]);
    assert.equal(env.code, 1);
    assertOneSentence(env.stderr, /^goddb worker: invalid configuration: gossip\.intervalMs: .*soon/);
    assert.equal(both.code, 1);
    assertOneSentence(both.stderr, /^goddb worker: invalid configuration: .*value was "never"; .*value was "soon"$|^goddb worker: invalid configuration: .*value was "soon"; .*value was "never"$/);
    assert.match(both.stderr, /gossip\.intervalMs/);
    assert.match(both.stderr, /requestTimeoutMs/);
    assert.equal(file.code, 1);
    assertOneSentence(file.stderr, /^goddb worker: cannot read config file \/nonexistent\/goddb\.json: ENOENT/);
  });

  it('cli - on a terminal the sentence shows and no JSON does', (t) => {
    if (spawnSync('script', ['--version']).status !== 0) {
      t.skip('the script command (util-linux) is not installed');
      return;
    }
    // script(1) gives the worker a terminal for stdout and stderr; its exit code is the worker's (-e).
    const dir = tempDir('cli-tty');
    try {
      const command = [process.execPath, cliPath, 'worker', '-replication', '0'].map((a) => `'${a}'`).join(' ');
      const run = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: dir.path, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
      assert.equal(run.status, 1, run.stdout + run.stderr);
      const lines = run.stdout.split(/\r?\n/).filter((l) => l !== '');
      assert.equal(lines.length, 1, run.stdout);
      assert.match(lines[0]!, replication);
    } finally {
      dir.remove();
    }
  });
});

describe('cli - usage errors', () => {
  it('cli - an unknown flag, a missing argument or an unknown command exits 2 with a short message', async () => {
    const [flag, missing, command] = await Promise.all([goddb(['worker', '--bogus']), goddb(['get']), goddb(['nosuchcommand'])]);
    for (const run of [flag, missing, command]) {
      assert.equal(run.code, 2, run.stderr);
      assert.ok(run.stderr.split('\n').filter((l) => l !== '').length <= 3, `a short message, not the whole help:\n${run.stderr}`);
      assert.match(run.stderr, /--help/);
    }
    assert.match(flag.stderr, /unknown option '--bogus'/);
    assert.match(missing.stderr, /missing required argument 'key'/);
    assert.match(command.stderr, /unknown command 'nosuchcommand'/);
  });

  it('cli - asking for help or the version exits 0', async () => {
    const [help, workerHelp, version] = await Promise.all([goddb(['--help']), goddb(['worker', '--help']), goddb(['--version'])]);
    for (const run of [help, workerHelp, version]) assert.equal(run.code, 0, run.stderr);
    assert.match(workerHelp.stdout, /--nats-connect-wait/);
  });
});
