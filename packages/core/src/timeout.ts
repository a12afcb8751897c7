import { abortError } from './errors.js';

const MAX_TIMER_MS = 2_147_483_647;

/** What `deadline` resolves with when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * Races `promise` against `ms` (no limit when infinite or beyond a timer's reach) and `signal`: resolves with its value, or
 * with `TIMED_OUT` once `ms` passed; rejects with `abortError(signal)` once the signal aborts. The
 * timer and the abort listener never outlive the race.
 */
export async function deadline<T>(
  promise: PromiseLike<T>,
  ms: number,
  signal?: AbortSignal,
): Promise<T | typeof TIMED_OUT> {
  if (signal?.aborted) throw abortError(signal);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const cutoff = new Promise<typeof TIMED_OUT>((resolve, reject) => {
    // Longer than a timer can wait (about 24.8 days) is as good as no limit.
    if (ms <= MAX_TIMER_MS) timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
    if (signal !== undefined) {
      onAbort = () => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([promise, cutoff]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}
