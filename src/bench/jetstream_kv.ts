/**
 * NATS JetStream KV, a reference system: a file-storage bucket with one
 * replica (`jetstream-kv`) or three on a three-server cluster
 * (`jetstream-kv-r3`, see nats_cluster.ts), `put` and a direct `get`
 * (allow_direct: any server holding the stream answers the read without
 * going through the stream leader). Both are opened and driven alike.
 *
 * This file imports the NATS client directly, which product code must not
 * (only src/transport/nats.ts does): JetStream KV is not GoD-DB, and it is
 * measured the way a NATS user would use it, through the official client.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, StorageType } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { BenchClient } from './client.js';

/** How long a new cluster gets to elect its JetStream meta leader before the bucket can be created. */
const bucketReadyTimeoutMs = 30_000;
const bucketRetryIntervalMs = 250;

async function openBucket(url: string, bucket: string, replicas: number, requestTimeoutMs: number): Promise<{ nc: NatsConnection; kv: KV }> {
  const nc = await connect({ servers: url, name: 'goddb-bench-jetstream-kv', noAsyncTraces: true, timeout: requestTimeoutMs });
  try {
    const js = jetstream(nc, { timeout: requestTimeoutMs });
    // create() opens the bucket when it exists, and reads its allow_direct from the server.
    const kv = await new Kvm(js).create(bucket, { storage: StorageType.File, replicas, history: 1, allow_direct: true });
    const { streamInfo } = await kv.status();
    const c = streamInfo.config;
    if (c.storage !== StorageType.File || c.allow_direct !== true || c.num_replicas !== replicas) {
      throw new Error(`bucket ${bucket}: storage ${c.storage}, allow_direct ${String(c.allow_direct)}, replicas ${c.num_replicas}; want file, true, ${replicas}`);
    }
    return { nc, kv };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

/**
 * Creates the bucket (file storage, `replicas` copies, direct get) and checks
 * it; the orchestrator calls it once. A cluster that just started has no
 * JetStream meta leader yet, so this retries until `bucketReadyTimeoutMs`.
 */
export async function createBucket(url: string, bucket: string, replicas: number, requestTimeoutMs: number): Promise<void> {
  const deadline = Date.now() + bucketReadyTimeoutMs;
  for (;;) {
    try {
      const { nc } = await openBucket(url, bucket, replicas, requestTimeoutMs);
      await nc.close();
      return;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await delay(bucketRetryIntervalMs);
    }
  }
}

export async function openJetstreamKv(url: string, bucket: string, replicas: number, requestTimeoutMs: number): Promise<BenchClient> {
  const { nc, kv } = await openBucket(url, bucket, replicas, requestTimeoutMs);
  return {
    async put(key, value) {
      await kv.put(key, value);
    },
    async get(key) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== 'PUT') throw new Error(`${key} not found`);
    },
    close: () => nc.drain(),
  };
}
