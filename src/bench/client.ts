/**
 * One small client interface over every system the benchmark drives, so the
 * load generator's loop is the same for all of them. Each system's client is
 * imported only when asked for: a load generator process loads one.
 */
import { fanoutSubjectPrefix, jetstreamR3Replicas, System, type LoadgenParams } from './types.js';

export interface BenchClient {
  put(key: string, value: Uint8Array): Promise<void>;
  /** Rejects when the key is absent: every key read was preloaded. */
  get(key: string): Promise<void>;
  close(): Promise<void>;
}

export async function openClient(params: LoadgenParams): Promise<BenchClient> {
  const { endpoints, requestTimeoutMs } = params;
  switch (params.system) {
    case System.GoddbRaw:
      return (await import('./nats_clients.js')).openGoddbRaw(endpoints.natsUrl, requestTimeoutMs);
    case System.GoddbSdk:
      return (await import('./nats_clients.js')).openGoddbSdk(endpoints.natsUrl, requestTimeoutMs, 'any');
    case System.GoddbSdkDirect:
      return (await import('./nats_clients.js')).openGoddbSdk(endpoints.natsUrl, requestTimeoutMs, 'direct');
    case System.GoddbPeriodic: {
      if (endpoints.natsPeriodicUrl === undefined) throw new Error('the goddb-periodic cluster was not started');
      return (await import('./nats_clients.js')).openGoddbRaw(endpoints.natsPeriodicUrl, requestTimeoutMs);
    }
    case System.Echo:
      return (await import('./nats_clients.js')).openEcho(endpoints.natsUrl, requestTimeoutMs, params.valueBytes);
    case System.Fanout:
    case System.FanoutLmdb:
      return (await import('./nats_clients.js')).openFanout(endpoints.natsUrl, fanoutSubjectPrefix[params.system], requestTimeoutMs);
    case System.JetstreamKv:
      return (await import('./jetstream_kv.js')).openJetstreamKv(endpoints.natsUrl, endpoints.bucket, 1, requestTimeoutMs);
    case System.JetstreamKvR3: {
      if (endpoints.natsR3Url === undefined) throw new Error('the three-server NATS cluster was not started');
      return (await import('./jetstream_kv.js')).openJetstreamKv(endpoints.natsR3Url, endpoints.bucket, jetstreamR3Replicas, requestTimeoutMs);
    }
    case System.Redis: {
      if (endpoints.redisPort === undefined) throw new Error('redis was not started');
      return (await import('./redis_client.js')).openRedis(endpoints.redisPort, requestTimeoutMs);
    }
  }
}
