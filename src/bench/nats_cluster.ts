/**
 * The three-server NATS cluster behind `jetstream-kv-r3` (issue 11: measure
 * like for like): full-mesh routes on free ports, JetStream in each server
 * with its own store directory, so a `replicas: 3` bucket is one Raft group
 * over three processes, as GoD-DB's N=3 is three workers. The argument
 * builder is pure (tested without a server); the starter is its thin shell.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts, startNatsServer, type NatsServerHandle } from '../devtools/servers.js';
import { jetstreamR3Replicas } from './types.js';

export const r3ClusterName = 'goddb-bench-r3';
export const r3ServerCount = jetstreamR3Replicas;
const host = '127.0.0.1';

export interface R3Ports {
  client: number;
  cluster: number;
}

/** CPU and pid labels of the cluster's servers: nats-r3-1, nats-r3-2, nats-r3-3. */
export function r3Labels(): string[] {
  return Array.from({ length: r3ServerCount }, (_, i) => `nats-r3-${i + 1}`);
}

/**
 * nats-server arguments of server `index` (0-based) beyond port and store:
 * a unique server name (JetStream clustering requires one), the cluster's
 * name and listen port, and routes to every other server.
 */
export function r3ServerArgs(index: number, ports: readonly R3Ports[]): string[] {
  const own = ports[index];
  if (own === undefined) throw new Error(`no server ${index} among ${ports.length}`);
  const routes = ports.filter((_, i) => i !== index).map((p) => `nats-route://${host}:${p.cluster}`);
  return ['-n', r3Labels()[index]!, '--cluster_name', r3ClusterName, '--cluster', `nats://${host}:${own.cluster}`, '--routes', routes.join(',')];
}

/** Cluster starts tried when a port picked was taken by another process before its server bound it. */
const portAttempts = 3;

/**
 * Starts the servers one after another (each is ready once it listens; the
 * routes connect as the others come up) with store directories under
 * `storeRoot`. `started` sees each handle at once, so a failure part-way
 * still leaves every started server to the caller's stop. A port can be
 * taken by another process between freePorts and a server's bind: then the
 * servers of that attempt are stopped and the cluster starts again on new
 * ports (a second stop by the caller is harmless).
 */
export async function startR3Cluster(
  storeRoot: string,
  started: (label: string, server: NatsServerHandle) => void,
  /** Where the ports come from (tests hand out a taken one). */
  pickPorts: (count: number) => Promise<number[]> = freePorts,
): Promise<NatsServerHandle[]> {
  for (let attempt = 1; ; attempt++) {
    const servers: NatsServerHandle[] = [];
    try {
      // Distinct: freePort twice in a row once gave one server the same client and route port.
      const free = await pickPorts(2 * r3ServerCount);
      const ports: R3Ports[] = Array.from({ length: r3ServerCount }, (_, i) => ({ client: free[2 * i]!, cluster: free[2 * i + 1]! }));
      for (const [i, label] of r3Labels().entries()) {
        const storeDir = join(storeRoot, `${label}-${attempt}`);
        await mkdir(storeDir, { recursive: true });
        const server = await startNatsServer({ port: ports[i]!.client, jetstream: true, storeDir, args: r3ServerArgs(i, ports) });
        started(label, server);
        servers.push(server);
      }
      return servers;
    } catch (err) {
      // startNatsServer is ready once nats-server wrote its ports file, after every listener (the
      // route one included) is bound; a taken port makes it exit before, with this in its output.
      if (attempt >= portAttempts || !/address already in use/.test(err instanceof Error ? err.message : String(err))) throw err;
      await Promise.all(servers.map((server) => server.stop()));
    }
  }
}
