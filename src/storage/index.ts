/**
 * Picks the engine a node's configuration names. The engines share one
 * contract (engine.ts), so nothing past this factory knows which one runs.
 */
import type { EngineKind, StorageEngine, SyncMode } from './engine.js';
import { LmdbEngine } from './lmdb.js';
import { MemoryEngine } from './memory.js';
import { RedisEngine } from './redis.js';

export { EngineKind, SyncMode, type HashCursor, type HashedEntry, type HashRange, type StorageEngine, type StorageEntry } from './engine.js';
export { LmdbEngine, type LmdbEngineOptions } from './lmdb.js';
export { MemoryEngine } from './memory.js';
export { RedisEngine, type RedisEngineOptions } from './redis.js';

export interface EngineConfig {
  engine: EngineKind;
  redis: { host: string; port: number; db: number; password: string };
  /** Directory of the lmdb environment. */
  lmdbPath: string;
  lmdbMapSizeBytes: number;
  /** When an lmdb write resolves (default always); redis and memory ignore it. */
  lmdbSync?: SyncMode;
  lmdbSyncIntervalMs?: number;
}

/** Builds an engine that is not yet open: the caller opens it, so failures surface where they are handled. */
export function createEngine(cfg: EngineConfig): StorageEngine {
  switch (cfg.engine) {
    case 'memory':
      return new MemoryEngine();
    case 'redis':
      return new RedisEngine({ ...cfg.redis });
    case 'lmdb':
      return new LmdbEngine({
        path: cfg.lmdbPath,
        mapSizeBytes: cfg.lmdbMapSizeBytes,
        ...(cfg.lmdbSync === undefined ? {} : { sync: cfg.lmdbSync }),
        ...(cfg.lmdbSyncIntervalMs === undefined ? {} : { syncIntervalMs: cfg.lmdbSyncIntervalMs }),
      });
    default:
      return unknownEngine(cfg.engine);
  }
}

function unknownEngine(kind: never): never {
  throw new Error(`unknown storage engine: ${String(kind)}`);
}
