/**
 * NATS JetStream KV, a reference system: a file-storage bucket with one
 * replica, `put` and a direct `get` (allow_direct: any server holding the
 * stream answers the read without going through the stream leader).
 *
 * This file imports the NATS client directly, which product code must not
 * (only src/transport/nats.ts does): JetStream KV is not GoD-DB, and it is
 * measured the way a NATS user would use it, through the official client.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, StorageType } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { BenchClient } from './client.js';

async function openBucket(url: string, bucket: string, requestTimeoutMs: number): Promise<{ nc: NatsConnection; kv: KV }> {
  const nc = await connect({ servers: url, name: 'goddb-bench-jetstream-kv', noAsyncTraces: true, timeout: requestTimeoutMs });
  try {
    const js = jetstream(nc, { timeout: requestTimeoutMs });
    // create() opens the bucket when it exists, and reads its allow_direct from the server.
    const kv = await new Kvm(js).create(bucket, { storage: StorageType.File, replicas: 1, history: 1, allow_direct: true });
    const { streamInfo } = await kv.status();
    if (streamInfo.config.storage !== StorageType.File || streamInfo.config.allow_direct !== true) {
      throw new Error(`bucket ${bucket}: storage ${streamInfo.config.storage}, allow_direct ${String(streamInfo.config.allow_direct)}; want file and true`);
    }
    return { nc, kv };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

/** Creates the bucket (file storage, one replica, direct get) and checks it; the orchestrator calls it once. */
export async function createBucket(url: string, bucket: string, requestTimeoutMs: number): Promise<void> {
  const { nc } = await openBucket(url, bucket, requestTimeoutMs);
  await nc.close();
}

export async function openJetstreamKv(url: string, bucket: string, requestTimeoutMs: number): Promise<BenchClient> {
  const { nc, kv } = await openBucket(url, bucket, requestTimeoutMs);
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
