/**
 * The Node child processes the benchmark starts (workers, the echo
 * responder, load generators): spawned with piped output read line by line,
 * stopped with SIGTERM and then SIGKILL, and all registered so that clean-up
 * (and, as a last resort, process exit) leaves none behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** How long a child gets to stop after SIGTERM before SIGKILL. */
export const stopGraceMs = 5_000;
/** Output kept per child for error messages. */
const outputTailLines = 40;

export interface Child {
  label: string;
  pid: number;
  process: ChildProcess;
  /** Resolves with how the child ended; never rejects. */
  exited: Promise<string>;
  /** Calls `handler` with each stdout line; returns a function that stops it. */
  onLine(handler: (line: string) => void): () => void;
  /** The last lines of its stdout and stderr. */
  tail(): string;
  /** SIGTERM, then SIGKILL after stopGraceMs; idempotent. */
  stop(): Promise<void>;
}

const running = new Set<Child>();
let exitHookInstalled = false;

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * Own process group, so a terminal's Ctrl-C reaches only the orchestrator,
   * which then stops the child once; with an IPC channel the child also
   * learns when the orchestrator dies.
   */
  detached?: boolean;
  /** Node options before the script (e.g. `--import` of a probe). */
  execArgv?: string[];
}

/** Starts `node <script> ...args`. Its stdin is a pipe that closes when this process dies. */
export function spawnNode(label: string, script: string, args: string[], opts: SpawnOptions = {}): Child {
  const child = spawn(process.execPath, [...(opts.execArgv ?? []), script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe', ...(opts.detached === true ? ['ipc' as const] : [])],
    detached: opts.detached === true,
    env: opts.env ?? process.env,
  });
  const tail: string[] = [];
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > outputTailLines) tail.shift();
  };
  const handlers = new Set<(line: string) => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    keep(line);
    for (const h of handlers) h(line);
  });
  createInterface({ input: child.stderr! }).on('line', keep);
  child.stdin!.on('error', () => undefined); // EPIPE once the child is gone
  // 'close', not 'exit': it comes after the last line of output has been read.
  const exited = new Promise<string>((resolve) => {
    child.once('close', (code, signal) => resolve(signal !== null ? `was killed by ${signal}` : `exited with code ${code}`));
    child.once('error', (err) => {
      if (child.pid === undefined) resolve(`failed to start (${err.message})`);
    });
  });
  let stopping: Promise<void> | undefined;
  const handle: Child = {
    label,
    pid: child.pid ?? -1,
    process: child,
    exited,
    onLine(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    tail: () => tail.join('\n'),
    stop() {
      stopping ??= stopChild(child, exited).finally(() => running.delete(handle));
      return stopping;
    },
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));
  installExitHook();
  return handle;
}

async function stopChild(child: ChildProcess, exited: Promise<string>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Stops every child still running, all at once. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
}

/** At exit only synchronous work happens: SIGKILL whatever is left. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of running) {
      if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
    }
  });
}

/**
 * Resolves with the first stdout line that `match` accepts (its return
 * value); rejects when the child exits first, `timeoutMs` passes or
 * `signal` aborts.
 */
export function waitForLine<T>(child: Child, match: (line: string) => T | undefined, timeoutMs: number, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
      fn();
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`${child.label} gave no expected output within ${timeoutMs} ms:\n${child.tail()}`))), timeoutMs);
    const unsubscribe = child.onLine((line) => {
      const value = match(line);
      if (value !== undefined) finish(() => resolve(value));
    });
    void child.exited.then((how) => finish(() => reject(new Error(`${child.label} ${how}:\n${child.tail()}`))));
    signal?.addEventListener('abort', () => finish(() => reject(new Error('no longer waited for'))), { once: true });
  });
}

/** The line as a JSON object, or undefined when it is not one. */
export function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
