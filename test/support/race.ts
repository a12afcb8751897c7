import { it } from 'vitest';

/** How often `pnpm test:stress` repeats each race test (1 in a normal run). */
export const RACE_REPEATS = Math.max(0, Number(process.env.VIGIL_STRESS ?? '1') - 1);

/**
 * A concurrency or lifecycle test: `pnpm test:stress` runs it 50 times in one process, so a race
 * that fails once in 50 fails the stress run, and leaks that pile up across repeats show.
 */
export function raceIt(name: string, fn: () => Promise<void> | void, timeout?: number): void {
  it(name, { repeats: RACE_REPEATS, ...(timeout === undefined ? {} : { timeout }) }, fn);
}
