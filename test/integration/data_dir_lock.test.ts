/**
 * The data-directory lock is an OS lock (flock(2) on `<dataDir>/LOCK`, taken
 * by util-linux's `flock` on a descriptor this process keeps): it cannot be
 * raced, and it dies with its holder however the holder dies.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { startNatsServer } from '../../src/devtools/servers.js';
import { DataDirLockedError, lockDataDir, lockFile } from '../../src/node/membership/identity.js';
import { cliPath, startWorker, tempDir } from '../helpers/workers.js';

const identityModule = new URL('../../src/node/membership/identity.js', import.meta.url).href;

/** A child process that takes the lock on `dir` and holds it until killed. */
async function holdInChild(dir: string): Promise<ChildProcess> {
  const script = `import { lockDataDir } from ${JSON.stringify(identityModule)};
lockDataDir(${JSON.stringify(dir)}, process.pid);
process.stdout.write('locked\\n');
setInterval(() => undefined, 60_000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'locked' && resolve());
    child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}: ${stderr}`)));
  });
  return child;
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const lockedBy = (pid: number) => (e: unknown) => e instanceof DataDirLockedError && e.ownerPid === pid && e.message.includes(`pid ${pid}`);

describe('data directory lock', () => {
  it('lock - a second process and a second open in the same process cannot take it; once the holder is SIGKILLed, it can', async () => {
    const dir = tempDir('lock-os');
    let holder: ChildProcess | undefined;
    try {
      holder = await holdInChild(dir.path);
      assert.throws(() => lockDataDir(dir.path, process.pid), lockedBy(holder.pid!), 'held by the child');
      assert.throws(() => lockDataDir(dir.path, process.pid), lockedBy(holder.pid!), 'a failed attempt leaves it held by the child');
      await killed(holder);

      const first = lockDataDir(dir.path, process.pid);
      assert.throws(() => lockDataDir(dir.path, process.pid), lockedBy(process.pid), 'a second open in the same process is refused');
      first.release();
      first.release(); // twice is harmless
      assert.ok(existsSync(join(dir.path, lockFile)), 'release keeps the file: only the lock goes');
      const again = lockDataDir(dir.path, process.pid);
      again.release();
    } finally {
      if (holder) await killed(holder);
      dir.remove();
    }
  });

  it('lock - without the flock command the lock fails with a message that says so', async () => {
    const dir = tempDir('lock-noflock');
    try {
      const script = `import { lockDataDir } from ${JSON.stringify(identityModule)};
try { lockDataDir(${JSON.stringify(dir.path)}, process.pid); process.exit(0); } catch (e) { process.stderr.write(e.message); process.exit(3); }`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PATH: dir.path } });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 3, stderr);
      assert.match(stderr, /the flock command \(util-linux\) is not installed or not on PATH/);
    } finally {
      dir.remove();
    }
  });
});

interface Launched {
  child: ChildProcess;
  stderr(): string;
  /** 'ready' once the node serves, or its exit code when it exits first. */
  outcome: Promise<'ready' | number | null>;
  nodeId(): string | undefined;
}

/** `goddb worker` with stderr kept apart from the JSON log on stdout. */
function launch(args: string[]): Launched {
  const child = spawn(process.execPath, [cliPath, 'worker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let id: string | undefined;
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const outcome = new Promise<'ready' | number | null>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { msg?: string; nodeId?: string };
        if (rec.msg === 'node ready') {
          id = rec.nodeId;
          resolve('ready');
        }
      } catch {
        // not JSON
      }
    });
    child.once('exit', (code) => resolve(code));
  });
  return { child, stderr: () => stderr, outcome, nodeId: () => id };
}

describe('data directory lock, real workers', () => {
  it('lock - of two workers started at once on one data directory exactly one serves, the other exits naming the directory; after SIGKILL of the winner a new worker takes over', async () => {
    const nats = await startNatsServer();
    const rounds = 4;
    const started: ChildProcess[] = [];
    try {
      for (let round = 0; round < rounds; round++) {
        const dir = tempDir(`lock-race-${round}`);
        try {
          const args = ['--cluster', `race${round}`, '-discovery', nats.url, '--data-dir', dir.path, '--engine', 'lmdb', '--startup-wait', '0'];
          const pair = [launch(args), launch(args)];
          started.push(...pair.map((l) => l.child));
          const outcomes = await Promise.all(pair.map((l) => l.outcome));
          const winners = pair.filter((_, i) => outcomes[i] === 'ready');
          assert.equal(winners.length, 1, `round ${round}: exactly one serves (outcomes ${JSON.stringify(outcomes)}; stderr ${pair.map((l) => l.stderr()).join(' | ')})`);
          const winner = winners[0]!;
          const loser = pair.find((l) => l !== winner)!;
          const loserCode = outcomes[pair.indexOf(loser)];
          assert.ok(typeof loserCode === 'number' && loserCode !== 0, `round ${round}: the loser exits non-zero, got ${String(loserCode)}`);
          assert.match(loser.stderr(), new RegExp(`data directory ${dir.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is locked by another process`));
          const pid = /pid (\d+)/.exec(loser.stderr());
          if (pid) assert.equal(Number(pid[1]), winner.child.pid, 'the pid named is the winner');

          await killed(winner.child);
          const next = await startWorker('', args);
          assert.equal(next.id, winner.nodeId(), 'the new worker is the same node');
          await next.kill();
          assert.equal(await next.exited, 0);
        } finally {
          dir.remove();
        }
      }
    } finally {
      await Promise.all(started.map(killed));
      await nats.stop();
    }
  });
});
