/**
 * A storage namespace of its own beside the node's data (hints, Paxos
 * state): LMDB in `<dataDir>/<dir>`, Redis under its own key prefix with its
 * own hash index, or memory for the memory engine. Not yet open: its owner
 * (HintStore, PaxosAcceptor) opens it.
 */
import { join } from 'node:path';
import type { NodeConfig } from '../config/types.js';
import { EngineKind, SyncMode, type StorageEngine } from '../storage/engine.js';
import { createEngine } from '../storage/index.js';
import { MemoryEngine } from '../storage/memory.js';
import { hashIndexKeyOf, RedisEngine } from '../storage/redis.js';

export interface StorageNamespace {
  /** Directory under the data dir (lmdb). */
  dir: string;
  /** Redis key prefix (the data is under 'god:r:'). */
  redisKeyPrefix: string;
  /** Always synced whatever storage.sync says of the data (lmdb). */
  alwaysSync: boolean;
}

export const Namespace = {
  // Hints count toward W under sloppy quorum: they are acknowledged like the data (storage.sync).
  Hints: { dir: 'hints', redisKeyPrefix: 'god:h:', alwaysSync: false },
  // A promise forgotten in a power loss could let two proposals be chosen: always synced.
  Paxos: { dir: 'paxos', redisKeyPrefix: 'god:p:', alwaysSync: true },
} as const satisfies Record<string, StorageNamespace>;

export function createNamespaceEngine(config: Readonly<NodeConfig>, ns: StorageNamespace): StorageEngine {
  switch (config.storage.engine) {
    case EngineKind.Redis:
      return new RedisEngine({ ...config.storage.redis, keyPrefix: ns.redisKeyPrefix, hashIndexKey: hashIndexKeyOf(ns.redisKeyPrefix) });
    case EngineKind.Lmdb:
      return createEngine({
        engine: EngineKind.Lmdb,
        redis: config.storage.redis,
        lmdbPath: join(config.dataDir, ns.dir),
        lmdbMapSizeBytes: config.storage.lmdb.mapSizeBytes,
        lmdbSync: ns.alwaysSync ? SyncMode.Always : config.storage.sync,
        lmdbSyncIntervalMs: config.storage.syncIntervalMs,
      });
    default:
      return new MemoryEngine();
  }
}
