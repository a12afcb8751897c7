import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SqlDatabase } from './sqlite-driver.js';
import { lock, open } from './sqlite-store.js';

/** A stateDir held by this process alone (the Redis store's; the SQLite store locks its journal). */
export interface StateLock {
  /** The lease holder (`<instanceId>/<nonce>`) the last process on this stateDir wrote, '' for none. */
  readonly previous: string;
  release(): void;
}

/**
 * Takes `<stateDir>/redis.lock` for this process with SQLite's exclusive locking, as `SqliteStore`
 * takes its journal: a second vigil on the same stateDir fails with `ERR_STATE_LOCKED` naming the
 * holder's pid, and the lock dies with its process (a SIGKILLed vigil never blocks the next one).
 * `<stateDir>/redis.owner` names the holder; it stays after the process, so that the next one on
 * this stateDir knows whose leases it may take back at once (that process is gone: the lock was free).
 */
export function lockStateDir(stateDir: string, holder: string): StateLock {
  const path = join(stateDir, 'redis.lock');
  const ownerFile = join(stateDir, 'redis.owner');
  const db: SqlDatabase = open(path, stateDir);
  try {
    lock(db, path, ownerFile);
  } catch (error) {
    db.close();
    throw error;
  }
  const previous = previousHolder(ownerFile);
  writeFileSync(ownerFile, `${JSON.stringify({ pid: process.pid, since: Date.now(), holder })}\n`, {
    mode: 0o600,
  });
  return { previous, release: () => db.close() };
}

function previousHolder(ownerFile: string): string {
  try {
    const { holder } = JSON.parse(readFileSync(ownerFile, 'utf8')) as { holder?: unknown };
    return typeof holder === 'string' ? holder : '';
  } catch {
    return '';
  }
}
