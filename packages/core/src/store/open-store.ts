import type { VigilConfig } from '../config.js';
import type { VigilError } from '../errors.js';
import { instanceIdOf } from './instance-id.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { JournalStore } from './store.js';

/**
 * The journal's store: Redis when `store.kind` is `redis` (shared by several instances), else
 * SQLite in `stateDir` when there is one, else nothing durable.
 */
export function openStore(config: VigilConfig, onError: (error: VigilError) => void): JournalStore {
  const { store } = config;
  if (store.kind === 'redis') {
    const { url, prefix, leaseMs, timeoutMs } = store;
    const instanceId = instanceIdOf(store.instanceId, config.stateDir);
    const { stateDir } = config;
    return new RedisStore({
      url,
      prefix,
      leaseMs,
      timeoutMs,
      instanceId,
      onError,
      ...(stateDir === undefined ? {} : { stateDir }),
    });
  }
  if (config.stateDir === undefined) return new MemoryStore();
  const { synchronous, maxBytes } = config.journal;
  return new SqliteStore({ stateDir: config.stateDir, synchronous, maxBytes, onError });
}
