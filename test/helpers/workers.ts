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
  id: string;
  process: ChildProcess;
  httpPort: number;
  logs: string[];
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const alive = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of alive) p.kill('SIGKILL');
});

export async function startWorker(id: string, args: string[], readyTimeoutMs = 20_000): Promise<Worker> {
  const child = spawn(process.execPath, [cliPath, 'worker', '--node-id', id, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  alive.add(child);
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    alive.delete(child);
    resolve(code);
  }));
  child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const httpPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${id} not ready within ${readyTimeoutMs}ms:\n${logs.join('\n')}`)), readyTimeoutMs);
    lines.on('line', (line) => {
      logs.push(line);
      if (logs.length > 2000) logs.splice(0, 1000);
      try {
        const rec = JSON.parse(line) as { msg?: string; httpPort?: number };
        if (rec.msg === 'node ready') {
          clearTimeout(timer);
          resolve(rec.httpPort ?? 0);
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
  return { id, process: child, httpPort, logs, exited, kill };
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `goddb-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
