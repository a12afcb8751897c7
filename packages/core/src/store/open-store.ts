import type { VigilConfig } from '../config.js';
import type { VigilError } from '../errors.js';
import { MemoryStore } from './memory-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { JournalStore } from './store.js';

/** The journal's store: SQLite in `stateDir` when there is one, else nothing durable. */
export function openStore(config: VigilConfig, onError: (error: VigilError) => void): JournalStore {
  if (config.stateDir === undefined) return new MemoryStore();
  const { synchronous, maxBytes } = config.journal;
  return new SqliteStore({ stateDir: config.stateDir, synchronous, maxBytes, onError });
}
