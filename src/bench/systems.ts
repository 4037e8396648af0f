/**
 * Everything a run starts, in one place, so that one idempotent stop()
 * takes it all down on success, on error and on Ctrl-C: the nats-server
 * (with JetStream), the three-server NATS cluster of `jetstream-kv-r3`,
 * the GoD-DB workers, the echo and fan-out responders, redis-server,
 * the temporary directory, and any load generator still running.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer, startRedisServer, type NatsServerHandle, type RedisServerHandle } from '../devtools/servers.js';
import { parseJsonLine, spawnNode, stopAllChildren, waitForLine, type Child } from './children.js';
import { startCluster, workerNodeOptions, type Worker } from './cluster.js';
import { createBucket } from './jetstream_kv.js';
import { natsPeriodicLabel } from './cpu_per_op.js';
import { r3ServerCount, startR3Cluster } from './nats_cluster.js';
import { fanoutSubjectPrefix, System, type BenchConfig, type Endpoints } from './types.js';

const echoPath = fileURLToPath(new URL('./echo.js', import.meta.url));
const fanoutPath = fileURLToPath(new URL('./fanout.js', import.meta.url));
const echoReadyTimeoutMs = 15_000;
/** The fan-out responders of each fan-out system: as many as GoD-DB's replicas. */
const fanoutIds = { [System.Fanout]: ['f1', 'f2', 'f3'], [System.FanoutLmdb]: ['fl1', 'fl2', 'fl3'] } as const;
export const bucketName = 'bench';
export const requestTimeoutMs = 5_000;

export class RunningSystems {
  nats?: NatsServerHandle;
  /** The cluster behind jetstream-kv-r3, when that system runs. */
  natsR3: NatsServerHandle[] = [];
  /** Every server started for it, a start given up on included (stop() stops them all). */
  private readonly natsR3Started: NatsServerHandle[] = [];
  redis?: RedisServerHandle;
  echo?: Child;
  workers: Worker[] = [];
  /** The goddb-periodic cluster and its own nats-server, when that system runs (not in the memory table). */
  natsPeriodic?: NatsServerHandle;
  periodicWorkers: Worker[] = [];
  tempDir?: string;
  /** Every process started, by label, for the record (the smoke test checks that none outlives the run). */
  readonly pids = new Map<string, number>();
  private stopping?: Promise<void>;

  /** Starts what `config.systems` needs; `note` reports each step. */
  async start(config: BenchConfig, note: (text: string) => void): Promise<void> {
    const wanted = new Set(config.systems);
    this.tempDir = await mkdtemp(join(tmpdir(), 'goddb-bench-'));
    const storeDir = join(this.tempDir, 'jetstream');
    await mkdir(storeDir);
    this.nats = await startNatsServer({ jetstream: true, storeDir });
    this.pids.set('nats', this.nats.process.pid ?? -1);
    note(`nats-server ${this.nats.url} (JetStream, store in ${this.tempDir})`);
    // Every worker process started, one started again on another port included, is measured by its pid.
    const started = (w: Worker): void => void this.pids.set(w.id, w.child.pid);
    if (wanted.has(System.GoddbRaw) || wanted.has(System.GoddbSdk) || wanted.has(System.GoddbSdkDirect)) {
      this.workers = await startCluster(this.nats.url, config.engine, join(this.tempDir, 'nodes'), started, config.nodes === undefined ? {} : { nodes: config.nodes });
      note(`GoD-DB: ${this.workers.map((w) => w.id).join(', ')} ready (engine ${config.engine})`);
    }
    if (wanted.has(System.GoddbPeriodic)) {
      this.natsPeriodic = await startNatsServer();
      this.pids.set(natsPeriodicLabel, this.natsPeriodic.process.pid ?? -1);
      this.periodicWorkers = await startCluster(this.natsPeriodic.url, config.engine, join(this.tempDir, 'nodes-periodic'), started, { idPrefix: 'p', sync: 'periodic', ...(config.nodes === undefined ? {} : { nodes: config.nodes }) });
      note(`GoD-DB, storage.sync periodic: ${this.periodicWorkers.map((w) => w.id).join(', ')} ready on ${this.natsPeriodic.url} (engine ${config.engine})`);
    }
    if (wanted.has(System.Echo)) {
      this.echo = spawnNode('echo responder', echoPath, [this.nats.url]);
      this.pids.set('echo', this.echo.pid);
      await waitForLine(this.echo, (line) => (parseJsonLine(line)?.['event'] === 'ready' ? true : undefined), echoReadyTimeoutMs);
      note('echo responder ready');
    }
    for (const system of [System.Fanout, System.FanoutLmdb] as const) {
      if (!wanted.has(system)) continue;
      const ids = fanoutIds[system];
      const children = ids.map((id) => {
        const lmdb = system === System.FanoutLmdb ? [join(this.tempDir!, `fanout-${id}`)] : [];
        const child = spawnNode(`fan-out responder ${id}`, fanoutPath, [this.nats!.url, fanoutSubjectPrefix[system], id, ids.filter((p) => p !== id).join(','), ...lmdb], { execArgv: workerNodeOptions() });
        this.pids.set(id, child.pid);
        return child;
      });
      await Promise.all(children.map((child) => waitForLine(child, (line) => (parseJsonLine(line)?.['event'] === 'ready' ? true : undefined), echoReadyTimeoutMs)));
      note(`${system}: responders ${ids.join(', ')} ready`);
    }
    if (wanted.has(System.Redis)) {
      const dir = join(this.tempDir, 'redis');
      await mkdir(dir);
      this.redis = await startRedisServer({ dir });
      this.pids.set('redis', this.redis.process.pid ?? -1);
      note(`redis-server on port ${this.redis.port}`);
    }
    if (wanted.has(System.JetstreamKv)) {
      await createBucket(this.nats.url, bucketName, 1, requestTimeoutMs);
      note(`JetStream KV bucket ${bucketName}: file storage, 1 replica, allow_direct`);
    }
    if (wanted.has(System.JetstreamKvR3)) {
      // Every server started is stopped at the end, those of a start given up on (a port taken) too.
      this.natsR3 = await startR3Cluster(join(this.tempDir, 'jetstream-r3'), (label, server) => {
        this.natsR3Started.push(server);
        this.pids.set(label, server.process.pid ?? -1);
      });
      await createBucket(this.natsR3[0]!.url, bucketName, r3ServerCount, requestTimeoutMs);
      note(`JetStream KV bucket ${bucketName} on ${r3ServerCount} clustered nats-servers (${this.natsR3.map((s) => s.port).join(', ')}): file storage, ${r3ServerCount} replicas, allow_direct`);
    }
  }

  endpoints(): Endpoints {
    if (this.nats === undefined) throw new Error('nats-server is not running');
    return {
      natsUrl: this.nats.url,
      bucket: bucketName,
      ...(this.redis === undefined ? {} : { redisPort: this.redis.port }),
      ...(this.natsR3[0] === undefined ? {} : { natsR3Url: this.natsR3[0].url }),
      ...(this.natsPeriodic === undefined ? {} : { natsPeriodicUrl: this.natsPeriodic.url }),
    };
  }

  /** Stops everything this run started, children first (workers drain over NATS); idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await stopAllChildren();
      await Promise.all([this.redis?.stop(), this.nats?.stop(), this.natsPeriodic?.stop(), ...this.natsR3Started.map((s) => s.stop())]);
      if (this.tempDir !== undefined) await rm(this.tempDir, { recursive: true, force: true });
    })();
    return this.stopping;
  }
}
