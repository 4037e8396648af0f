/**
 * Server-side CPU per operation (issue 11), pure: which sampled processes
 * serve each system, and their CPU over a window divided by the ops that
 * completed in it. On a shared machine this moves less than throughput does:
 * a neighbour slows a system down but does not make its work cost more.
 */
import { System } from './types.js';

const goddbNode = /^b\d+$/;
const r3Server = /^nats-r3-\d+$/;
const periodicNode = /^p\d+$/;
const fanoutNode = /^f\d+$/;
const fanoutLmdbNode = /^fl\d+$/;
/** The nats-server of the goddb-periodic cluster. */
export const natsPeriodicLabel = 'nats-periodic';

/**
 * The labels (of those sampled) whose CPU is the system's own work: its
 * nats-servers and its server processes, never the load generator. The
 * shared nats-server counts for every system that sends through it.
 */
export function serverLabels(system: System, sampled: readonly string[]): string[] {
  switch (system) {
    case System.GoddbRaw:
    case System.GoddbSdk:
    case System.GoddbSdkDirect:
      return sampled.filter((l) => l === 'nats' || goddbNode.test(l));
    case System.GoddbPeriodic:
      return sampled.filter((l) => l === natsPeriodicLabel || periodicNode.test(l));
    case System.Echo:
      return sampled.filter((l) => l === 'nats' || l === 'echo');
    case System.Fanout:
      return sampled.filter((l) => l === 'nats' || fanoutNode.test(l));
    case System.FanoutLmdb:
      return sampled.filter((l) => l === 'nats' || fanoutLmdbNode.test(l));
    case System.JetstreamKv:
      return sampled.filter((l) => l === 'nats');
    case System.JetstreamKvR3:
      return sampled.filter((l) => r3Server.test(l));
    case System.Redis:
      return sampled.filter((l) => l === 'redis');
  }
}

/**
 * µs of CPU per op from CPU in % of one core (by label) over a window and
 * the ops/s in it: % / 100 is CPU-seconds per second, so summed over the
 * system's processes and divided by ops per second it is CPU-seconds per op.
 * NaN when nothing completed or no process of the system was sampled.
 */
export function serverCpuUsPerOp(system: System, cpu: Readonly<Record<string, number>>, opsPerSec: number): number {
  const labels = serverLabels(system, Object.keys(cpu));
  if (labels.length === 0 || !(opsPerSec > 0)) return Number.NaN;
  const percent = labels.reduce((sum, l) => sum + cpu[l]!, 0);
  return ((percent / 100) * 1e6) / opsPerSec;
}
