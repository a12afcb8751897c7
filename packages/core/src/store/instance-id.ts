import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const INSTANCE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * This instance's id in a cluster sharing one store: the configured one, else the one kept in
 * `<stateDir>/instance-id` (created on first use), so that an instance restarted on the same
 * stateDir is the same instance and takes back its own sessions and commands at once. Without
 * stateDir: random per start.
 */
export function instanceIdOf(configured: string | undefined, stateDir: string | undefined): string {
  if (configured !== undefined) return configured;
  const fresh = `vigil-${randomBytes(6).toString('hex')}`;
  if (stateDir === undefined) return fresh;
  const file = join(stateDir, 'instance-id');
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (INSTANCE_ID.test(kept)) return kept;
  } catch {
    // None yet: this start creates it.
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${fresh}\n`, { mode: 0o600 });
  return fresh;
}
