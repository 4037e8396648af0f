/**
 * Real nats-server and redis-server children on free local ports, for the
 * integration tests, `goddb dev` and the benchmark harness (as nats.js tests
 * start a real server through a helper). Every child is registered so that
 * process exit kills any still running: a crashed test leaves no orphans.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, rmSync } from 'node:fs';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export interface NatsServerOptions {
  /** Default: a free port. */
  port?: number;
  /** Passed as `-c`; the command-line address and port override the file's. */
  configFile?: string;
  jetstream?: boolean;
  /** JetStream store directory; default: a fresh temporary one, removed on stop. */
  storeDir?: string;
  /** Extra nats-server arguments, appended last. */
  args?: string[];
  /** Environment variables added to this process's for nats-server (a config's `$NAME` references read them). */
  env?: Record<string, string>;
}

export interface NatsServerHandle {
  /** nats://127.0.0.1:PORT */
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Default: a free port. */
  port?: number;
  /** Working directory (AOF files); default: a fresh temporary one, removed on stop. */
  dir?: string;
  /** Passed first, so the command-line options below override it. */
  configFile?: string;
  /** AOF with fsync on every write, for tests of durability across restarts. */
  appendonly?: boolean;
}

export interface RedisServerHandle {
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

const host = '127.0.0.1';
const startTimeoutMs = 10_000;
const stopTimeoutMs = 5_000;
const probeTimeoutMs = 500;
const probeIntervalMs = 25;
/** Output kept per child for error messages. */
const outputTailBytes = 4_096;
/** How long a failed start waits for the server's last output before reporting. */
const outputDrainWaitMs = 500;
/** Where Debian puts the servers, in case PATH lacks the sbin directories. */
const fallbackDirs = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'];

/** A port that was free a moment ago (the kernel picks it; another process could still take it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read a free port'))));
    });
  });
}

/**
 * `count` distinct ports that were free a moment ago. freePort called again
 * and again may return a port it already returned (the kernel hands a
 * released port out again): a three-server NATS cluster once got the same
 * port for a client listener and a route listener. Here every listener is
 * held open until all ports are read, so no two can be the same.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => resolve());
      });
      const address = server.address();
      if (typeof address !== 'object' || address === null) throw new Error('could not read a free port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
  }
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = await findBinary('nats-server');
  const port = opts.port ?? (await freePort());
  const ownDirs = [await mkdtemp(join(tmpdir(), 'goddb-nats-ports-'))];
  const portsDir = ownDirs[0]!;
  let storeDir = opts.storeDir;
  if (opts.jetstream === true && storeDir === undefined) {
    // nats-server's default store is shared by every server on the host.
    storeDir = await mkdtemp(join(tmpdir(), 'goddb-nats-js-'));
    ownDirs.push(storeDir);
  }
  const args = [
    ...(opts.configFile !== undefined ? ['-c', opts.configFile] : []),
    ...['-a', host, '-p', String(port), '--ports_file_dir', portsDir],
    ...(opts.jetstream === true ? ['-js', ...(storeDir !== undefined ? ['-sd', storeDir] : [])] : []),
    ...(opts.args ?? []),
  ];
  const isReady = (pid: number): Promise<boolean> => natsListening(portsDir, pid, port);
  const server = await startServer('nats-server', binary, args, isReady, ownDirs, opts.env);
  return { url: `nats://${host}:${port}`, port, process: server.child, stop: server.stop };
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const binary = await findBinary('redis-server');
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'goddb-redis-')));
  const args = [
    ...(opts.configFile !== undefined ? [opts.configFile] : []),
    ...['--port', String(port), '--bind', host, '--save', '', '--dir', dir, '--daemonize', 'no'],
    ...(opts.appendonly === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : []),
  ];
  const isReady = (pid: number): Promise<boolean> => redisServing(port, pid);
  const server = await startServer('redis-server', binary, args, isReady, opts.dir === undefined ? [dir] : []);
  return { port, process: server.child, stop: server.stop };
}

/** Stops every server this process started and has not stopped yet (for a CLI's signal handler). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running.values()].map(({ stop }) => stop()));
}

interface StartedServer {
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Spawns, waits until `isReady` (or fails with the output tail), and returns
 * an idempotent stop that also removes the directories this helper created.
 */
async function startServer(
  name: string,
  binary: string,
  args: string[],
  isReady: (pid: number) => Promise<boolean>,
  ownDirs: string[],
  env?: Record<string, string>,
): Promise<StartedServer> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  const output = captureOutput(child);
  const exited = exitOf(child);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= stopChild(child, exited).finally(async () => {
      running.delete(child);
      await Promise.all(ownDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    });
    return stopping;
  };
  register(child, { stop, ownDirs });
  try {
    await waitReady(name, () => isReady(child.pid ?? -1), exited, output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, stop };
}

async function waitReady(
  name: string,
  isReady: () => Promise<boolean>,
  exited: Promise<string>,
  output: { tail: () => string; drained: Promise<void> },
): Promise<void> {
  let exitReason: string | undefined;
  void exited.then((reason) => (exitReason = reason));
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (exitReason !== undefined) {
      // The last words of a dying server may still sit in the pipes when 'exit' fires.
      await settledWithin(output.drained, outputDrainWaitMs);
      throw new Error(`${name} ${exitReason} before it was ready:\n${output.tail()}`);
    }
    if (await isReady()) return;
    await delay(probeIntervalMs);
  }
  throw new Error(`${name} was not ready within ${startTimeoutMs} ms:\n${output.tail()}`);
}

/** Waits for `promise` but no longer than `timeoutMs`, leaving no timer behind. */
async function settledWithin(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  const abort = new AbortController();
  const timeout = delay(timeoutMs, undefined, { signal: abort.signal }).catch(() => undefined);
  try {
    await Promise.race([promise, timeout]);
  } finally {
    abort.abort();
  }
}

/** SIGTERM, then SIGKILL if the child outlives stopTimeoutMs. */
async function stopChild(child: ChildProcess, exited: Promise<string>): Promise<void> {
  if (!hasExited(child)) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with a description of how the child ended; never rejects. */
function exitOf(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(signal !== null ? `was killed by ${signal}` : `exited with code ${code}`));
    child.on('error', (err) => {
      // A spawn failure emits 'error' and no 'exit'.
      if (child.pid === undefined) resolve(`failed to start (${err.message})`);
    });
  });
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
}

/**
 * Keeps the last outputTailBytes of stdout and stderr (reading also keeps the
 * child from blocking on a full pipe); `drained` resolves when both pipes close.
 */
function captureOutput(child: ChildProcess): { tail: () => string; drained: Promise<void> } {
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-outputTailBytes);
  };
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', keep);
  }
  const drained = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return { tail: () => tail, drained };
}

// ---- the registry that keeps servers from outliving this process ----

interface Registration {
  stop(): Promise<void>;
  /** Temporary directories created for this server, removed with it. */
  ownDirs: string[];
}

const running = new Map<ChildProcess, Registration>();
let exitHookInstalled = false;

/**
 * A running server does not hold this process open (unref): a test that
 * forgets to stop one still ends, and the exit hook below kills the server.
 */
function register(child: ChildProcess, registration: Registration): void {
  running.set(child, registration);
  child.unref();
  for (const stream of [child.stdout, child.stderr]) {
    (stream as (Socket & { unref?: () => void }) | null)?.unref?.();
  }
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killRunning);
  }
}

/** Runs at exit, where only synchronous work happens: signal, tidy up, move on. */
function killRunning(): void {
  for (const [child, { ownDirs }] of running) {
    if (!hasExited(child)) child.kill('SIGKILL');
    for (const dir of ownDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // The dying server may still be writing there; a stray temp dir is the lesser harm.
      }
    }
  }
}

// ---- probes ----

/** An installed binary (nats-server, redis-server): PATH first, then where Debian puts them. */
export async function findBinary(name: string): Promise<string> {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== ''), ...fallbackDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  throw new Error(`${name} not found on PATH or in ${fallbackDirs.join(', ')}; install it (npm test runs scripts/ensure.sh)`);
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * nats-server writes `nats-server_<pid>.ports` once its listeners are up; asking
 * for our child's file (not just an open port) tells our server from another
 * one that already held the port.
 */
async function natsListening(portsDir: string, pid: number, port: number): Promise<boolean> {
  const files = await readdir(portsDir).catch(() => [] as string[]);
  if (!files.some((file) => file.endsWith(`_${pid}.ports`))) return false;
  return exchange(port, undefined, () => true);
}

/**
 * INFO names the answering server's pid, which tells our child from another
 * redis on the port; NOAUTH (a config file set a password) means it is serving.
 */
function redisServing(port: number, pid: number): Promise<boolean> {
  return exchange(port, 'INFO server\r\n', (reply) => {
    if (reply.startsWith('-NOAUTH')) return true;
    if (reply.startsWith('-')) return false; // -LOADING and the like: not yet
    const match = /process_id:(\d+)\r\n/.exec(reply);
    return match === null ? undefined : Number(match[1]) === pid;
  });
}

/**
 * Connects to the port and, when `request` is given, sends it and lets
 * `judge` read the reply (undefined: wait for more). Any failure or timeout
 * means "not ready yet".
 */
function exchange(
  port: number,
  request: string | undefined,
  judge: (reply: string) => boolean | undefined,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let reply = '';
    const finish = (ready: boolean): void => {
      socket.destroy();
      resolve(ready);
    };
    socket.setTimeout(probeTimeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
    socket.once('connect', () => {
      if (request === undefined) finish(judge('') ?? false);
      else socket.write(request);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      const verdict = judge(reply);
      if (verdict !== undefined) finish(verdict);
    });
  });
}
