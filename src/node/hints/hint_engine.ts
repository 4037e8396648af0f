/**
 * The hint store's own engine, beside the node's data (a namespace of its
 * own): LMDB in `<dataDir>/hints`, Redis under the `god:h:` prefix with its
 * own hash index, or memory for the memory engine.
 */
import { join } from 'node:path';
import type { NodeConfig } from '../../config/types.js';
import { EngineKind, type StorageEngine } from '../../storage/engine.js';
import { createEngine } from '../../storage/index.js';
import { MemoryEngine } from '../../storage/memory.js';
import { hashIndexKeyOf, RedisEngine } from '../../storage/redis.js';

/** Redis keys of hints (the data is under 'god:r:'). */
export const hintsRedisKeyPrefix = 'god:h:';

/** Not yet open: HintStore.open() opens it. */
export function createHintEngine(config: Readonly<NodeConfig>): StorageEngine {
  switch (config.storage.engine) {
    case EngineKind.Redis:
      return new RedisEngine({ ...config.storage.redis, keyPrefix: hintsRedisKeyPrefix, hashIndexKey: hashIndexKeyOf(hintsRedisKeyPrefix) });
    case EngineKind.Lmdb:
      // Hints count toward W under sloppy quorum: they are acknowledged like the data (storage.sync).
      return createEngine({
        engine: EngineKind.Lmdb,
        redis: config.storage.redis,
        lmdbPath: join(config.dataDir, 'hints'),
        lmdbMapSizeBytes: config.storage.lmdb.mapSizeBytes,
        lmdbSync: config.storage.sync,
        lmdbSyncIntervalMs: config.storage.syncIntervalMs,
      });
    default:
      return new MemoryEngine();
  }
}
