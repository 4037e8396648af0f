/**
 * A worker and a NATS server it cannot reach: it says where it connects at
 * once and why each attempt fails (rate limited), keeps retrying with a
 * backoff, serves as soon as a server comes up, logs losing and regaining the
 * connection, and gives up after `nats.connectWaitMs` with one sentence on
 * stderr and exit 1. Also a start-up failure that is not NATS: a busy HTTP port.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { createInterface } from 'node:readline';
import { freePort, startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { cliPath } from '../helpers/workers.js';

interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A worker whose JSON log lines are awaited one message at a time. */
interface Launched {
  child: ChildProcess;
  records: LogRecord[];
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first record whose msg starts with `prefix` (and when it came, ms after spawn). */
  line(prefix: string, timeoutMs: number): Promise<LogRecord & { atMs: number }>;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

function launch(args: string[]): Launched {
  const startMs = performance.now();
  const child = spawn(process.execPath, [cliPath, 'worker', '--engine', 'memory', '--cluster', 'unreachable', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const records: (LogRecord & { atMs: number })[] = [];
  const waiters: (() => void)[] = [];
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdout += `${line}\n`;
    records.push({ ...(JSON.parse(line) as LogRecord), atMs: performance.now() - startMs });
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => {
    children.delete(child);
    for (const w of waiters.splice(0)) w();
    resolve(code);
  }));
  const line = (prefix: string, timeoutMs: number) => new Promise<LogRecord & { atMs: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${prefix}" line within ${timeoutMs} ms:\n${stdout}${stderr}`)), timeoutMs);
    const check = () => {
      const found = records.find((r) => r.msg.startsWith(prefix));
      if (found) {
        clearTimeout(timer);
        resolve(found);
      } else if (child.exitCode !== null || child.signalCode !== null) {
        clearTimeout(timer);
        reject(new Error(`the worker exited before "${prefix}":\n${stdout}${stderr}`));
      } else {
        waiters.push(check);
      }
    };
    check();
  });
  return { child, records, stdout: () => stdout, stderr: () => stderr, line, exited };
}

describe('worker without NATS', () => {
  it('nats - pointed at a closed port, a worker says where and why at once, retries, and gives up after nats.connectWaitMs with exit 1', async () => {
    const port = await freePort(); // nothing listens there
    const startMs = performance.now();
    const w = launch(['-discovery', `nats://goddb:s3cret@127.0.0.1:${port}`, '--nats-connect-wait', '1500ms']);
    const connecting = await w.line('connecting to NATS', 10_000);
    assert.deepEqual(connecting['servers'], [`nats://***@127.0.0.1:${port}`], 'where, with the password masked');
    const failed = await w.line('cannot reach NATS', 10_000);
    assert.ok(failed.atMs - connecting.atMs < 1000, `the first failure is reported at once (${Math.round(failed.atMs - connecting.atMs)} ms after connecting)`);
    assert.match(String(failed['error']), /refused/);
    assert.equal(failed['attempt'], 1);

    const code = await w.exited;
    const elapsedMs = performance.now() - startMs;
    assert.equal(code, 1);
    assert.ok(elapsedMs < 15_000, `gave up soon after 1.5 s (${Math.round(elapsedMs)} ms in all)`);
    const failures = w.records.filter((r) => r.msg.startsWith('cannot reach NATS'));
    assert.equal(failures.length, 1, 'failed attempts are rate limited to one line per 10 s');
    const stderr = w.stderr().split('\n').filter((l) => l !== '');
    assert.equal(stderr.length, 1, w.stderr());
    const m = new RegExp(`^goddb worker: could not reach NATS at nats://\\*\\*\\*@127\\.0\\.0\\.1:${port}: (\\d+) attempts in (\\d+\\.\\d) s failed \\(last: connection refused.*\\); is nats-server running there\\?`).exec(stderr[0]!);
    assert.ok(m, stderr[0]);
    assert.ok(Number(m[1]) >= 3, `it kept retrying (${m[1]} attempts)`);
    assert.ok(Number(m[2]) >= 1.5, `for nats.connectWaitMs (${m[2]} s)`);
    const fatal = w.records.at(-1)!;
    assert.equal(fatal.level, 60);
    assert.match(fatal.msg, /^node failed to start: could not reach NATS/);
    assert.doesNotMatch(w.stdout() + w.stderr(), /s3cret/, 'the password is never printed');
    assert.doesNotMatch(w.stdout(), /"stack"/);
  });

  it('nats - a worker keeps trying until NATS comes up, then serves; it logs losing and regaining the connection', async () => {
    const port = await freePort();
    const w = launch(['-discovery', `nats://127.0.0.1:${port}`, '--nats-connect-wait', '60s']);
    let nats: NatsServerHandle | undefined;
    try {
      await w.line('cannot reach NATS', 10_000);
      nats = await startNatsServer({ port });
      const ready = await w.line('node ready', 15_000);
      assert.ok(ready);
      await nats.stop();
      nats = undefined;
      const lost = await w.line('disconnected from NATS', 10_000);
      assert.match(String(lost['server']), new RegExp(`127\\.0\\.0\\.1:${port}$`));
      nats = await startNatsServer({ port });
      await w.line('reconnected to NATS', 15_000);
      assert.equal(w.child.exitCode, null, 'the worker is still running');
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
      await nats?.stop();
    }
  });
});

describe('worker start-up failures', () => {
  it('nats - an HTTP port in use is one sentence on stderr naming the port, exit 1', async () => {
    const nats = await startNatsServer();
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const w = launch(['-discovery', nats.url, '-port', String(port), '--startup-wait', '0']);
      assert.equal(await w.exited, 1);
      const stderr = w.stderr().split('\n').filter((l) => l !== '');
      assert.deepEqual(stderr, [`goddb worker: the HTTP port ${port} on 127.0.0.1 is in use by another process; choose another with -port (http.port), or 0 for any free port`]);
      assert.doesNotMatch(w.stdout(), /"stack"/);
    } finally {
      busy.close();
      await nats.stop();
    }
  });
});
