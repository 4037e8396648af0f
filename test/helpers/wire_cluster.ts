/**
 * Three `goddb worker` processes (N=3, R=W=2) on a nats-server of their
 * own, for tests that talk to them with the raw protocol client
 * (nats_wire.ts). `stop()` kills the workers, stops the server and removes
 * the data directories, whatever state they are in.
 */
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { startWorker, tempDir, type Worker } from './workers.js';

export type EngineName = 'memory' | 'lmdb';

export interface WireCluster {
  nats: NatsServerHandle;
  cluster: string;
  workers: Worker[];
  /** Workers whose process has exited, with how. */
  exited(): string[];
  stop(): Promise<void>;
}

export interface WireClusterOptions {
  /** conflictPolicy of every worker (--conflict-policy); lww when not given. */
  conflictPolicy?: 'lww' | 'siblings';
}

export async function startWireCluster(cluster: string, ids: string[], engine: EngineName, opts: WireClusterOptions = {}): Promise<WireCluster> {
  const nats = await startNatsServer();
  const dirs = ids.map((id) => tempDir(`${cluster}-${id}`));
  const args = (i: number) => [
    '--cluster', cluster, '-peers', ids.join(','), '-discovery', nats.url, '--engine', engine, '--data-dir', dirs[i]!.path,
    '-port', '0', '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '200ms', '--log-level', 'info',
    ...(opts.conflictPolicy === undefined ? [] : ['--conflict-policy', opts.conflictPolicy]),
  ];
  const workers: Worker[] = [];
  const stop = async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await nats.stop();
    for (const d of dirs) d.remove();
  };
  try {
    workers.push(...(await Promise.all(ids.map((id, i) => startWorker(id, args(i))))));
  } catch (err) {
    await stop();
    throw err;
  }
  const exited = () => workers.filter((w) => w.process.exitCode !== null || w.process.signalCode !== null).map((w) => `${w.id} (${w.process.exitCode ?? w.process.signalCode})`);
  return { nats, cluster, workers, exited, stop };
}
