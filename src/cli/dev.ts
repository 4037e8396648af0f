/**
 * `goddb dev` (npm start): an embedded nats-server from nats-server.conf and
 * N worker processes, with each worker's full log in data/<id>/worker.log and
 * only its warnings, errors and `node ready` line on the console (--verbose
 * prints every line). Ctrl-C or SIGTERM stops everything and exits 0.
 *
 * Workers run in their own process group, so the terminal's Ctrl-C reaches
 * only this process, which then stops them one signal at a time (a second
 * signal would make a worker exit without a graceful stop). They also hold an
 * IPC channel to this process and stop if it dies.
 *
 * Once the cluster is ready it writes the context (src/client/context.ts:
 * ~/.config/goddb/context.json, or --context-file / $GODDB_CONTEXT) with the
 * NATS URL, so that `goddb get k` and connect() find this cluster with no
 * flags. The file stays after Ctrl-C: the next `npm start` serves the same URL.
 *
 * Authorization is on (nats-server.conf, deploy/nats/auth.conf): the first run
 * makes a password for each role (dev_credentials.ts); the workers connect as
 * the node role, and the context and the banner give the client role's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { contextFile, writeContext } from '../client/context.js';
import { packageRoot } from '../config/load.js';
import { startNatsServer, type NatsServerHandle } from '../devtools/servers.js';
import { devCredentials, natsServerEnv, workerEnv, type DevCredentials } from './dev_credentials.js';

export interface DevFlags {
  natsPort: string;
  nodes: string;
  engine: string;
  verbose?: boolean;
  contextFile?: string;
}

const readyTimeoutMs = 30_000;
const stopGraceMs = 5_000;
const nodesMax = 16;
const devEngines = ['lmdb', 'memory'] as const;
/** pino's numeric level for warn: lines at or above it reach the console. */
const warnLevel = 40;

interface WorkerProc {
  id: string;
  child: ChildProcess;
  log: WriteStream;
  ready: boolean;
  httpPort: number;
  /** Resolves at the worker's `node ready` line. */
  readyLine: Promise<void>;
  markReady(): void;
  exited: Promise<void>;
}

interface DevState {
  natsStarting?: Promise<NatsServerHandle>;
  workers: WorkerProc[];
  stopping: boolean;
}

interface DevOptions {
  natsPort: number;
  nodes: number;
  engine: string;
  verbose: boolean;
  /** Where the context goes. */
  contextFile: string;
}

export function parseDevFlags(flags: DevFlags): DevOptions | { error: string } {
  const natsPort = Number(flags.natsPort);
  const nodes = Number(flags.nodes);
  if (!Number.isInteger(natsPort) || natsPort < 1 || natsPort > 65535) return { error: `--nats-port must be a port number, got ${flags.natsPort}` };
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > nodesMax) return { error: `--nodes must be an integer from 1 to ${nodesMax}, got ${flags.nodes}` };
  if (!(devEngines as readonly string[]).includes(flags.engine)) return { error: `--engine must be one of ${devEngines.join(', ')}, got ${flags.engine}` };
  return { natsPort, nodes, engine: flags.engine, verbose: flags.verbose === true, contextFile: flags.contextFile || contextFile(process.env) };
}

export async function runDev(flags: DevFlags): Promise<void> {
  const opts = parseDevFlags(flags);
  if ('error' in opts) fail(opts.error);
  const state: DevState = { workers: [], stopping: false };
  process.on('SIGINT', () => void shutdown(state, 0, 'SIGINT'));
  process.on('SIGTERM', () => void shutdown(state, 0, 'SIGTERM'));
  const configFile = join(packageRoot(), 'nats-server.conf');
  if (!existsSync(configFile)) fail(`${configFile} is missing`);
  let creds: DevCredentials;
  try {
    const made = devCredentials('data');
    creds = made.credentials;
    if (made.created) process.stdout.write(`goddb dev: made NATS passwords for the node and client roles in ${made.file}\n`);
  } catch (err) {
    fail((err as Error).message);
  }
  state.natsStarting = startNatsServer({ port: opts.natsPort, configFile, env: natsServerEnv(creds) });
  let nats: NatsServerHandle;
  try {
    nats = await state.natsStarting;
  } catch (err) {
    fail(`could not start nats-server on port ${opts.natsPort} (try --nats-port): ${(err as Error).message}`);
  }
  if (state.stopping) return; // Ctrl-C while nats-server was starting: shutdown() has it.
  const ids = Array.from({ length: opts.nodes }, (_, i) => `node${i + 1}`);
  try {
    for (const id of ids) state.workers.push(spawnWorker(id, workerArgs(id, ids, nats.url, opts), opts.verbose, state, workerEnv(creds)));
    await Promise.all(state.workers.map((w) => waitReady(w)));
  } catch (err) {
    process.stderr.write(`goddb dev: ${(err as Error).message}\n`);
    await shutdown(state, 1, 'startup failed');
    return;
  }
  const wrote = saveContext(opts.contextFile, nats.url, opts.nodes, creds);
  printBanner(nats.url, opts, state.workers, wrote, creds);
}

/** Writes the context (with the client role's credentials); a failure only costs the convenience, so it is a warning. */
function saveContext(file: string, url: string, nodes: number, creds: DevCredentials): boolean {
  try {
    writeContext(file, { url, description: `goddb dev (npm start) in ${process.cwd()}: ${nodes} node(s), pid ${process.pid}`, user: creds.client.user, password: creds.client.password });
    return true;
  } catch (err) {
    process.stderr.write(`goddb dev: could not write the context ${file} (${(err as Error).message}); give clients --servers ${url} --nats-user ${creds.client.user} --nats-pass <the password in data/nats-credentials.json>\n`);
    return false;
  }
}

function fail(message: string): never {
  process.stderr.write(`goddb dev: ${message}\n`);
  process.exit(1);
}

/** The worker command line, as the seed's README would write it (Go-style -discovery included). */
function workerArgs(id: string, ids: string[], natsUrl: string, opts: DevOptions): string[] {
  const n = Math.min(3, ids.length);
  const majority = Math.floor(n / 2) + 1;
  return [
    fileURLToPath(new URL('./main.js', import.meta.url)),
    'worker',
    '--node-id', id,
    '--peers', ids.join(','),
    '-discovery', natsUrl,
    '--data-dir', join('data', id),
    '--engine', opts.engine,
    '--port', '0',
    // Fewer than three nodes cannot hold three replicas.
    ...(n < 3 ? ['-replication', String(n), '-readquorum', String(majority), '-writequorum', String(majority)] : []),
  ];
}

function spawnWorker(id: string, args: string[], verbose: boolean, state: DevState, env: Record<string, string>): WorkerProc {
  const dir = join('data', id);
  mkdirSync(dir, { recursive: true });
  const log = createWriteStream(join(dir, 'worker.log'), { flags: 'a' });
  // The node role's credentials through the environment: a command line is visible to every user (ps).
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true, env: { ...process.env, ...env } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let markReady = (): void => undefined;
  const readyLine = new Promise<void>((resolve) => (markReady = resolve));
  const worker: WorkerProc = { id, child, log, ready: false, httpPort: 0, readyLine, markReady, exited };
  createInterface({ input: child.stdout! }).on('line', (line) => relayStdout(worker, line, verbose));
  createInterface({ input: child.stderr! }).on('line', (line) => {
    log.write(`${line}\n`);
    process.stdout.write(`[${id}] ${line}\n`);
  });
  child.once('exit', (code, signal) => onWorkerExit(state, worker, code, signal));
  return worker;
}

function relayStdout(worker: WorkerProc, line: string, verbose: boolean): void {
  worker.log.write(`${line}\n`);
  let rec: Record<string, unknown> | undefined;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    rec = undefined;
  }
  if (rec === undefined) {
    process.stdout.write(`[${worker.id}] ${line}\n`);
    return;
  }
  const isReady = rec['msg'] === 'node ready';
  if (isReady) {
    worker.ready = true;
    worker.httpPort = Number(rec['httpPort'] ?? 0);
    worker.markReady();
  }
  if (verbose || isReady || Number(rec['level'] ?? 0) >= warnLevel) process.stdout.write(`[${worker.id}] ${formatRecord(rec)}\n`);
}

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const quietFields = new Set(['level', 'time', 'pid', 'hostname', 'nodeId', 'msg']);

/** A pino JSON record as one readable line. */
function formatRecord(rec: Record<string, unknown>): string {
  const level = levelNames[Number(rec['level'])] ?? String(rec['level']);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) {
    if (quietFields.has(k)) continue;
    extra[k] = k === 'err' && v !== null && typeof v === 'object' ? (v as { message?: unknown }).message : v;
  }
  const rest = Object.keys(extra).length > 0 ? ` ${JSON.stringify(extra)}` : '';
  return `${level} ${String(rec['msg'] ?? '')}${rest}`;
}

/** The `node ready` line, or an error when the worker exits first or takes longer than readyTimeoutMs. */
function waitReady(worker: WorkerProc): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${worker.id} was not ready within ${readyTimeoutMs / 1000}s; see data/${worker.id}/worker.log`)), readyTimeoutMs);
    void worker.readyLine.then(() => {
      clearTimeout(timer);
      resolve();
    });
    void worker.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${worker.id} exited before it was ready; see data/${worker.id}/worker.log`));
    });
  });
}

function onWorkerExit(state: DevState, worker: WorkerProc, code: number | null, signal: NodeJS.Signals | null): void {
  if (state.stopping || !worker.ready) return;
  process.stdout.write(`[${worker.id}] exited unexpectedly (${signal ?? `code ${code}`}); the other nodes keep running\n`);
  if (state.workers.every((w) => w.child.exitCode !== null || w.child.signalCode !== null)) {
    process.stderr.write('goddb dev: every worker has exited; stopping\n');
    void shutdown(state, 1, 'no workers left');
  }
}

/** Stops the workers (SIGTERM, SIGKILL after stopGraceMs), then nats-server, then exits. */
async function shutdown(state: DevState, code: number, reason: string): Promise<void> {
  if (state.stopping) {
    // A second Ctrl-C: do not wait for anything.
    for (const w of state.workers) w.child.kill('SIGKILL');
    process.exit(1);
  }
  state.stopping = true;
  process.stdout.write(`goddb dev: stopping (${reason})\n`);
  await Promise.all(state.workers.map((w) => stopWorker(w)));
  const nats = await state.natsStarting?.catch(() => undefined);
  await nats?.stop();
  await Promise.all(state.workers.map((w) => new Promise<void>((resolve) => w.log.end(resolve))));
  process.exit(code);
}

async function stopWorker(worker: WorkerProc): Promise<void> {
  const { child } = worker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    process.stdout.write(`[${worker.id}] did not stop within ${stopGraceMs / 1000}s; killing it\n`);
    child.kill('SIGKILL');
  }, stopGraceMs);
  await worker.exited;
  clearTimeout(timer);
}

/** How to run the goddb bin from here: npx when installed as a dependency, else node <path>. */
function goddbCommand(): string {
  const root = packageRoot();
  if (root.split(sep).includes('node_modules')) return 'npx goddb';
  const bin = join(root, 'bin', 'goddb.js');
  const fromHere = relative(process.cwd(), bin);
  return `node ${fromHere.startsWith('..') ? bin : fromHere}`;
}

function printBanner(url: string, opts: DevOptions, workers: WorkerProc[], wroteContext: boolean, creds: DevCredentials): void {
  const goddb = goddbCommand();
  const { user, password } = creds.client;
  const servers = wroteContext ? '' : ` --servers ${url} --nats-user ${user} --nats-pass ${password}`;
  const lines = [
    '',
    `GoD-DB dev cluster ready: ${workers.length} node(s), engine ${opts.engine}, NATS ${url}`,
    ...workers.map((w) => `  ${w.id}  http://127.0.0.1:${w.httpPort}/health  log data/${w.id}/worker.log`),
    ...(wroteContext ? [`Context: ${opts.contextFile} (goddb and connect() find this cluster through it)`] : []),
    `Client credentials: user ${user} password ${password} (data/nats-credentials.json; connect({ user, pass }))`,
    '',
    'Try it:',
    `  ${goddb} put hello world${servers}`,
    `  ${goddb} get hello${servers}`,
    `  ${goddb} client${servers}`,
    `  nats req --server ${url} --user ${user} --password ${password} kv.get.hello ''     # the NATS CLI (github.com/nats-io/natscli)`,
    '',
    'Ctrl-C stops the cluster.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}
