/**
 * Real worker processes for integration tests: each is `goddb worker` in its
 * own child process, on a nats-server the test started. A worker is ready
 * when it logs `node ready`; every child is killed when the test ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface Worker {
  /** The id the node reported when ready (from its identity file when none was given). */
  id: string;
  process: ChildProcess;
  httpPort: number;
  logs: string[];
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const alive = new Set<ChildProcess>();
process.on('exit', () => killLiveWorkers());

/** Starts `goddb worker`; an empty `id` leaves the node to find or make its own. */
export async function startWorker(id: string, args: string[], readyTimeoutMs = 20_000): Promise<Worker> {
  const idArgs = id === '' ? [] : ['--node-id', id];
  const child = spawn(process.execPath, [cliPath, 'worker', ...idArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  alive.add(child);
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    alive.delete(child);
    resolve(code);
  }));
  child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ httpPort: number; nodeId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${id} not ready within ${readyTimeoutMs}ms:\n${logs.join('\n')}`)), readyTimeoutMs);
    lines.on('line', (line) => {
      logs.push(line);
      if (logs.length > 2000) logs.splice(0, 1000);
      try {
        const rec = JSON.parse(line) as { msg?: string; httpPort?: number; nodeId?: string };
        if (rec.msg === 'node ready') {
          clearTimeout(timer);
          resolve({ httpPort: rec.httpPort ?? 0, nodeId: rec.nodeId ?? id });
        }
      } catch {
        // not JSON: keep it in the log
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker ${id} exited with ${code} before it was ready:\n${logs.join('\n')}`));
    });
  });
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  };
  return { id: ready.nodeId, process: child, httpPort: ready.httpPort, logs, exited, kill };
}

/**
 * Starts the workers together: a node waits up to gossip.startupWaitMs (5 s)
 * to hear peers that have not started yet, so one at a time costs that much
 * per node. When any fails to start, those that did are killed before the
 * first failure is thrown: the caller never holds them, so could not stop them.
 */
export async function startWorkers(ids: readonly string[], args: (id: string, i: number) => string[]): Promise<Worker[]> {
  const started = await Promise.allSettled(ids.map((id, i) => startWorker(id, args(id, i))));
  const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed === undefined) return workers;
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  throw failed.reason;
}

/** Worker processes started by this test file and not yet exited. */
export function liveWorkerCount(): number {
  return alive.size;
}

/** SIGKILLs every worker process this test file started that is still running. */
export function killLiveWorkers(): void {
  for (const p of alive) p.kill('SIGKILL');
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `goddb-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a compiled script to its end with `stdin` piped in; SIGINT after `timeoutMs`. */
export function runScript(script: string, args: string[], stdin = '', timeoutMs = 180_000): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    alive.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      alive.delete(child);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(stdin);
  });
}
