/**
 * Three `goddb worker` processes (N=3, R=W=2) on a nats-server of their
 * own, for tests that talk to them with the raw protocol client
 * (nats_wire.ts); on the redis engine each worker gets a redis-server of its
 * own (on a free port, never 6379). `stop()` kills the workers, stops the
 * servers and removes the data directories, whatever state they are in.
 */
import { startNatsServer, startRedisServer, type NatsServerHandle, type RedisServerHandle } from '../../src/devtools/servers.js';
import { startWorkers, tempDir, type Worker } from './workers.js';

export const engineNames = ['memory', 'lmdb', 'redis'] as const;
export type EngineName = (typeof engineNames)[number];

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
  const redises: RedisServerHandle[] = [];
  const args = (i: number) => [
    '--cluster', cluster, '-peers', ids.join(','), '-discovery', nats.url, '--engine', engine, '--data-dir', dirs[i]!.path,
    ...(engine === 'redis' ? ['-redisport', String(redises[i]!.port)] : []),
    '-port', '0', '-replication', '3', '-writequorum', '2', '-readquorum', '2', '-gossip', '200ms', '--log-level', 'info',
    ...(opts.conflictPolicy === undefined ? [] : ['--conflict-policy', opts.conflictPolicy]),
  ];
  const workers: Worker[] = [];
  const stop = async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await Promise.all(redises.map((r) => r.stop()));
    await nats.stop();
    for (const d of dirs) d.remove();
  };
  try {
    if (engine === 'redis') for (const _ of ids) redises.push(await startRedisServer());
    workers.push(...(await startWorkers(ids, (_id, i) => args(i))));
  } catch (err) {
    await stop();
    throw err;
  }
  const exited = () => workers.filter((w) => w.process.exitCode !== null || w.process.signalCode !== null).map((w) => `${w.id} (${w.process.exitCode ?? w.process.signalCode})`);
  return { nats, cluster, workers, exited, stop };
}
