/**
 * The lmdb engine's sync modes (storage.sync): group commit in `always`
 * (writes queued while the writer is busy share one commit), acknowledgement
 * before fsync and the periodic fsync in `periodic`, and in both modes no
 * acknowledged write lost when the writing process is killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { packageRoot } from '../../src/config/load.js';
import { SyncMode } from '../../src/storage/engine.js';
import { LmdbEngine } from '../../src/storage/lmdb.js';
import { until } from '../helpers/until.js';

const mapSizeBytes = 64 * 1024 * 1024;
const writerPath = fileURLToPath(new URL('../helpers/lmdb_writer.js', import.meta.url));
const childReadyMs = 20_000;

/**
 * Holds LMDB's write lock from another process (an open write transaction) until
 * `release` exists, so the engine's writer thread is stuck in mdb_txn_begin as
 * it would be behind a long commit.
 */
const lockHolderScript = `
import { open } from 'lmdb';
import { existsSync, writeSync } from 'node:fs';
const [path, release] = process.argv.slice(1);
const root = open({ path, encoding: 'binary', overlappingSync: false, mapSize: ${mapSizeBytes} });
const pause = new Int32Array(new SharedArrayBuffer(4));
const deadline = Date.now() + 30_000;
root.transactionSync(() => {
  writeSync(1, 'held\\n');
  while (!existsSync(release) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 5);
});
await root.close();
`;

async function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `goddb-${label}-`));
}

/** Resolves with the first stdout line `match` accepts; rejects if the child exits first or after `waitMs`. */
function lineFrom(child: ChildProcess, match: (line: string) => boolean, waitMs: number): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => reject(new Error(`no matching line within ${waitMs}ms: ${stderr}`)), waitMs);
    lines.on('line', (line) => {
      if (!match(line)) return;
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited with ${code} first: ${stderr}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('lmdb sync modes', () => {
  it('lmdb periodic - the writes of one event-loop turn are committed together, in order, at its end; writes of later turns in their own commits', async () => {
    const path = await tempDir('lmdb-turn');
    const engine = new LmdbEngine({ path, mapSizeBytes, sync: SyncMode.Periodic, syncIntervalMs: 600_000 });
    try {
      await engine.open();
      await engine.put('gone', Buffer.from('old'));
      const before = engine.commits;
      let resolved = 0;
      const count = <T>(p: Promise<T>) => p.then(() => void resolved++);
      // One turn: puts, a putMany, a delete of a key put in the same turn and a put after a delete.
      const writes = [
        ...Array.from({ length: 20 }, (_, i) => count(engine.put(`t${i}`, Buffer.from(`v${i}`)))),
        count(engine.putMany([{ key: 'm1', record: Buffer.from('a') }, { key: 'm2', record: Buffer.from('b') }])),
        count(engine.put('put-then-deleted', Buffer.from('x'))),
        count(engine.delete('put-then-deleted')),
        count(engine.delete('gone')),
        count(engine.put('gone', Buffer.from('new'))),
      ];
      for (let i = 0; i < 10; i++) await Promise.resolve(); // microtasks run, the turn has not ended
      assert.equal(resolved, 0, 'no write resolves before the commit at the end of its turn');
      assert.equal(await engine.get('t0'), undefined, 'nothing of the turn is visible before its commit');
      await Promise.all(writes);
      assert.equal(engine.commits - before, 1, `the turn's ${writes.length} writes took ${engine.commits - before} commits`);
      for (let i = 0; i < 20; i++) assert.deepEqual(await engine.get(`t${i}`), Buffer.from(`v${i}`));
      assert.deepEqual(await engine.get('m2'), Buffer.from('b'));
      assert.equal(await engine.get('put-then-deleted'), undefined, 'a put then a delete of the key in one turn: the delete wins');
      assert.deepEqual(await engine.get('gone'), Buffer.from('new'), 'a delete then a put in one turn: the put wins');
      const mid = engine.commits;
      for (let i = 0; i < 3; i++) await engine.put(`later${i}`, Buffer.from('v'));
      assert.equal(engine.commits - mid, 3, 'three turns, three commits');
    } finally {
      await engine.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  it('lmdb periodic - a turn whose commit fails rejects every write of it and stores none; the next turn commits', async () => {
    const path = await tempDir('lmdb-turn-failed');
    const engine = new LmdbEngine({ path, mapSizeBytes, sync: SyncMode.Periodic, syncIntervalMs: 600_000 });
    try {
      await engine.open();
      // The store fails on one key's write, as on a disk error: the turn's transaction aborts whole.
      const db = (engine as unknown as { db: { putSync(at: Buffer, value: Buffer): unknown } }).db;
      const putSync = db.putSync.bind(db);
      db.putSync = (at, value) => {
        if (at.includes(Buffer.from('bad'))) throw new Error('EIO: injected');
        return putSync(at, value);
      };
      const before = engine.commits;
      const outcomes = await Promise.allSettled([engine.put('ok1', Buffer.from('1')), engine.put('bad', Buffer.from('2')), engine.putMany([{ key: 'ok2', record: Buffer.from('3') }])]);
      assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'rejected'], 'one commit for the turn: all of it fails');
      for (const o of outcomes) assert.match(String((o as PromiseRejectedResult).reason), /EIO: injected/);
      assert.equal(engine.commits, before, 'no commit counted');
      assert.equal(await engine.get('ok1'), undefined, 'nothing of the failed turn is stored');
      assert.equal(await engine.get('ok2'), undefined);
      await engine.put('ok3', Buffer.from('4'));
      assert.deepEqual(await engine.get('ok3'), Buffer.from('4'), 'the next turn commits');
      assert.equal(engine.commits, before + 1);
    } finally {
      await engine.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  it('lmdb periodic - writes queued when close() is called are committed and synced before it returns', async () => {
    const path = await tempDir('lmdb-close');
    const engine = new LmdbEngine({ path, mapSizeBytes, sync: SyncMode.Periodic, syncIntervalMs: 600_000 });
    await engine.open();
    const put = engine.put('k', Buffer.from('v'));
    await engine.close();
    await put;
    const again = new LmdbEngine({ path, mapSizeBytes, sync: SyncMode.Periodic, syncIntervalMs: 600_000 });
    try {
      await again.open();
      assert.deepEqual(await again.get('k'), Buffer.from('v'));
      await assert.rejects(engine.put('late', Buffer.from('v')), /closed/, 'a closed engine refuses writes');
    } finally {
      await again.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  // Always mode only: periodic mode commits on the event loop's thread at the end of each turn (above),
  // where a foreign holder of the write lock would block it (nothing but the node writes its environment).
  it('lmdb always - writes queued in separate event-loop turns while another commit holds the writer share one commit, and none resolves before it', async () => {
    const sync = SyncMode.Always;
    const path = await tempDir('lmdb-group-always');
    const release = join(path, 'release');
    const engine = new LmdbEngine({ path, mapSizeBytes, sync, syncIntervalMs: 600_000 });
    let holder: ChildProcess | undefined;
    try {
      await engine.open();
      holder = spawn(process.execPath, ['--input-type=module', '-e', lockHolderScript, path, release], { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
      await lineFrom(holder, (l) => l === 'held', childReadyMs);
      const before = engine.commits;
      const writes = 20;
      let resolved = 0;
      const puts: Promise<void>[] = [];
      for (let i = 0; i < writes; i++) {
        puts.push(engine.put(`g${i}`, Buffer.from(`v${i}`)).then(() => void resolved++));
        await nextTurn(); // each put in an event-loop turn of its own: lmdb-js's per-turn batching alone would not join them
      }
      assert.equal(resolved, 0, 'no put resolves before the commit that holds it');
      await writeFile(release, '');
      await Promise.all(puts);
      assert.equal(engine.commits - before, 1, `${writes} queued puts took ${engine.commits - before} commits`);
      for (let i = 0; i < writes; i++) assert.deepEqual(await engine.get(`g${i}`), Buffer.from(`v${i}`));
    } finally {
      if (holder) await stopChild(holder);
      await engine.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  for (const sync of Object.values(SyncMode)) {
    it(`lmdb ${sync} - a writer killed with SIGKILL loses no acknowledged write`, async () => {
      const path = await tempDir(`lmdb-kill-${sync}`);
      const writer = spawn(process.execPath, [writerPath, path, sync], { stdio: ['ignore', 'pipe', 'pipe'] });
      let acked = -1;
      try {
        const lines = createInterface({ input: writer.stdout! });
        lines.on('line', (line) => {
          const m = /^acked (\d+)$/.exec(line);
          if (m) acked = Number(m[1]);
        });
        // Killed while writing, well after its first writes (and, in periodic mode, before any fsync: the interval is 10 minutes).
        await lineFrom(writer, (l) => l === 'acked 300', childReadyMs);
        await stopChild(writer);
        lines.close();
        assert.ok(acked >= 300);
        const engine = new LmdbEngine({ path, mapSizeBytes, sync });
        try {
          await engine.open();
          for (let i = 0; i <= acked; i++) assert.deepEqual(await engine.get(`w${i}`), Buffer.from(`v${i}`), `w${i} was acknowledged (last acknowledged: w${acked})`);
        } finally {
          await engine.close();
        }
      } finally {
        await stopChild(writer);
        await rm(path, { recursive: true, force: true });
      }
    });
  }

  it('lmdb periodic - a put resolves with no fsync; the timer fsyncs what was committed, and close fsyncs last', async () => {
    const path = await tempDir('lmdb-periodic');
    try {
      const slow = new LmdbEngine({ path, mapSizeBytes, sync: SyncMode.Periodic, syncIntervalMs: 600_000 });
      await slow.open();
      await slow.put('a', Buffer.from('1'));
      assert.equal(slow.syncs, 0, 'acknowledged before any fsync');
      await slow.close();
      assert.equal(slow.syncs, 1, 'close fsyncs');

      const fast = new LmdbEngine({ path, mapSizeBytes, sync: SyncMode.Periodic, syncIntervalMs: 20 });
      await fast.open();
      assert.deepEqual(await fast.get('a'), Buffer.from('1'));
      await fast.put('b', Buffer.from('2'));
      await until(() => fast.syncs > 0, 5_000, () => 'no periodic fsync at a 20 ms interval', 10);
      await fast.close();
    } finally {
      await rm(path, { recursive: true, force: true });
    }
  });

  it('lmdb periodic - after a failed fsync every later write is refused until restart (the kernel may have dropped the pages), reads go on', async () => {
    const path = await tempDir('lmdb-fsync-failed');
    const engine = new LmdbEngine({ path, mapSizeBytes, sync: SyncMode.Periodic, syncIntervalMs: 20 });
    try {
      await engine.open();
      await engine.put('a', Buffer.from('1'));
      // The environment's fsync fails from now on, as on a disk error.
      (engine as unknown as { root: { sync(cb: (err?: unknown) => void): void } }).root.sync = (cb) => cb(new Error('EIO: injected'));
      await engine.put('b', Buffer.from('2')); // committed to the OS: the next fsync covers it, and fails
      let refused: unknown;
      const refusedNow = async () => (refused = await engine.put('c', Buffer.from('3')).then(() => undefined, (err: unknown) => err)) !== undefined;
      await until(refusedNow, 5_000, () => 'no write refused after a failing fsync at a 20 ms interval', 10);
      assert.match(String(refused), /periodic sync .* failed, writes refused until restart: EIO: injected/);
      await assert.rejects(engine.delete('a'), /writes refused until restart/);
      await assert.rejects(engine.putMany([{ key: 'd', record: Buffer.from('4') }]), /writes refused until restart/);
      assert.deepEqual(await engine.get('a'), Buffer.from('1'), 'reads are still served');
    } finally {
      await engine.close().catch(() => undefined);
      await rm(path, { recursive: true, force: true });
    }
  });

  it('lmdb always - the engine runs no fsync of its own (every commit is synced by LMDB)', async () => {
    const path = await tempDir('lmdb-always');
    const engine = new LmdbEngine({ path, mapSizeBytes });
    try {
      await engine.open();
      await engine.putMany([{ key: 'a', record: Buffer.from('1') }, { key: 'b', record: Buffer.from('2') }]);
      await engine.put('c', Buffer.from('3'));
      assert.ok(engine.commits >= 2);
      await engine.close();
      assert.equal(engine.syncs, 0);
    } finally {
      await rm(path, { recursive: true, force: true });
    }
  });
});
