/**
 * Redis, the single-node reference: GET and SET through ioredis on one
 * connection (concurrent commands are pipelined on it, as any ioredis user gets).
 */
import { Redis } from 'ioredis';
import type { BenchClient } from './client.js';

export async function openRedis(port: number, requestTimeoutMs: number): Promise<BenchClient> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    commandTimeout: requestTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
  });
  await redis.connect();
  return {
    async put(key, value) {
      await redis.set(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    },
    async get(key) {
      if ((await redis.getBuffer(key)) === null) throw new Error(`${key} not found`);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
