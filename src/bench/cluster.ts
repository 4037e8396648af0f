/**
 * The GoD-DB cluster under test: three `goddb worker` processes with N=3,
 * R=W=2, each with its own data directory, on the benchmark's nats-server.
 * A worker is ready at its `node ready` log line or, since the benchmark runs
 * workers at log level warn where that line is not printed, when its
 * /health answers 200 (the node opens HTTP only once it serves).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../devtools/servers.js';
import { parseJsonLine, spawnNode, waitForLine, type Child } from './children.js';
import { heapProbeExecArgv } from './heap.js';
import type { Engine } from './types.js';

export const clusterName = 'bench';
export const nodeCount = 3;
export const replication = 3;
export const writeQuorum = 2;
export const readQuorum = 2;

const readyTimeoutMs = 30_000;
/** Workers started again on another port when the one picked was taken meanwhile. */
const portAttempts = 3;
const healthProbeIntervalMs = 100;
const healthProbeTimeoutMs = 500;
const cliPath = fileURLToPath(new URL('../cli/main.js', import.meta.url));
/**
 * Extra Node options for the server processes only, space-separated: the
 * workers and the fan-out responders (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
 * to profile them; NODE_OPTIONS would reach the load generators and the
 * orchestrator too, and Node refuses `--cpu-prof` in it).
 */
export const workerNodeOptionsEnv = 'GODDB_BENCH_WORKER_NODE_OPTIONS';

/** The options of workerNodeOptionsEnv, as arguments. */
export function workerNodeOptions(): string[] {
  return (process.env[workerNodeOptionsEnv] ?? '').split(' ').filter((o) => o !== '');
}

export interface Worker {
  id: string;
  child: Child;
  httpPort: number;
}

/** b1..b3 for `goddb-raw` and `goddb-sdk`, p1..p3 for `goddb-periodic`. */
export function nodeIds(prefix = 'b', count = nodeCount): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
}

export interface ClusterOptions {
  /** Node ids are this followed by 1..nodeCount. */
  idPrefix?: string;
  /** The workers' storage.sync (default theirs: always). */
  sync?: 'always' | 'periodic';
  /** Workers (default nodeCount). */
  nodes?: number;
}

/**
 * Starts every worker at once (they wait to hear each other) and resolves
 * with them, in id order, when all serve. `started` hears of every process
 * started, a worker started again included.
 */
export async function startCluster(natsUrl: string, engine: Engine, dataRoot: string, started: (w: Worker) => void, opts: ClusterOptions = {}): Promise<Worker[]> {
  const ids = nodeIds(opts.idPrefix, opts.nodes);
  const first: { worker: Worker; dataDir: string }[] = [];
  for (const id of ids) {
    const dataDir = join(dataRoot, id);
    await mkdir(dataDir, { recursive: true });
    const worker = spawnWorker(id, ids, natsUrl, engine, dataDir, await freePort(), opts);
    started(worker);
    first.push({ worker, dataDir });
  }
  const ready = async ({ worker, dataDir }: { worker: Worker; dataDir: string }): Promise<Worker> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await waitReady(worker);
        return worker;
      } catch (err) {
        // The free port picked was taken by another process before the worker bound it: another port.
        if (attempt >= portAttempts || !/HTTP port \d+ .*in use/.test((err as Error).message)) throw err;
        worker = spawnWorker(worker.id, ids, natsUrl, engine, dataDir, await freePort(), opts);
        started(worker);
      }
    }
  };
  return Promise.all(first.map(ready));
}

function spawnWorker(id: string, ids: readonly string[], natsUrl: string, engine: Engine, dataDir: string, httpPort: number, opts: ClusterOptions): Worker {
  const args = [
    'worker', '--node-id', id, '-peers', ids.join(','), '-discovery', natsUrl,
    '--engine', engine, '--data-dir', dataDir, '--cluster', clusterName, '--log-level', 'warn',
    '-replication', String(replication), '-writequorum', String(writeQuorum), '-readquorum', String(readQuorum),
    '-port', String(httpPort),
    ...(opts.sync === undefined ? [] : ['--sync', opts.sync]),
  ];
  return { id, child: spawnNode(id, cliPath, args, { detached: true, execArgv: [...heapProbeExecArgv, ...workerNodeOptions()] }), httpPort };
}

async function waitReady(worker: Worker): Promise<void> {
  const abort = new AbortController();
  const readyLine = waitForLine(worker.child, (line) => (parseJsonLine(line)?.['msg'] === 'node ready' ? true : undefined), readyTimeoutMs, abort.signal);
  readyLine.catch(() => undefined);
  try {
    await Promise.race([readyLine, healthy(worker.httpPort, abort.signal)]);
  } finally {
    abort.abort();
  }
}

/** Resolves once GET /health answers 200; stops polling when `signal` aborts. */
async function healthy(port: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(healthProbeTimeoutMs) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await delay(healthProbeIntervalMs).catch(() => undefined);
  }
  return new Promise<void>(() => undefined); // aborted: the ready line (or its failure) decides
}
