import { VigilError } from '../errors.js';

/** The global breaker settings (the `watch.breaker` section of the options). */
export interface WatchBreakerOptions {
  /** More than this many matches within `windowMs` trips the breaker. Default 15. */
  readonly maxMatches: number;
  /** Length of the sliding window. Default 10 s. */
  readonly windowMs: number;
  /** How long a tripped breaker refuses matches. Default 30 s. */
  readonly pauseMs: number;
}

/** What a pause refused, reported once when it ends. */
export interface BreakerRelease {
  /** When the breaker tripped (the first trip, when pauses were merged). */
  readonly trippedAt: number;
  /** When the pause ended (`trippedAt + pauseMs`). */
  readonly releasedAt: number;
  /** Matches refused during the pause, the tripping one included. */
  readonly suppressed: number;
  /** The same count per session (sessions forgotten with `forgetSession` are left out). */
  readonly suppressedBySession: ReadonlyMap<string, number>;
}

/**
 * The global watch breaker of G8: one per vigil instance, on the main thread, with the caller's
 * clock.
 *
 * `admit` counts a match in a sliding window (`(now - windowMs, now]`). The match that would
 * make more than `maxMatches` admitted in the window trips the breaker: it and every match
 * until `now + pauseMs` (exclusive) are refused and counted per session. When the pause has
 * ended, `poll` returns the counts once. The window starts empty after a pause. If the breaker
 * trips again before the previous pause was polled, both pauses are reported together.
 *
 * The owner needs one timer: at `nextReleaseAt()`, call `poll`.
 */
export class WatchBreaker {
  readonly #maxMatches: number;
  readonly #windowMs: number;
  readonly #pauseMs: number;
  /** Times of admitted matches, a ring of `maxMatches` slots, oldest at `#head`. */
  readonly #times: number[] = [];
  #head = 0;
  #count = 0;
  #trippedAt: number | null = null;
  #pausedUntil: number | null = null;
  #paused = false;
  #suppressed = 0;
  #bySession = new Map<string, number>();

  constructor(options: WatchBreakerOptions) {
    checkPositive(options.maxMatches, 'maxMatches');
    checkPositive(options.windowMs, 'windowMs');
    checkPositive(options.pauseMs, 'pauseMs');
    this.#maxMatches = options.maxMatches;
    this.#windowMs = options.windowMs;
    this.#pauseMs = options.pauseMs;
  }

  /** True while the breaker refuses matches (the pause has not ended by `now`). */
  isPaused(now: number): boolean {
    this.#endPause(now);
    return this.#paused;
  }

  /** Counts a match of `sessionId` at `now`; false when the breaker refuses it. */
  admit(sessionId: string, now: number): boolean {
    this.#endPause(now);
    if (!this.#paused) {
      const horizon = now - this.#windowMs;
      while (this.#count > 0 && this.#times[this.#head]! <= horizon) {
        this.#head = (this.#head + 1) % this.#maxMatches;
        this.#count -= 1;
      }
      if (this.#count < this.#maxMatches) {
        this.#times[(this.#head + this.#count) % this.#maxMatches] = now;
        this.#count += 1;
        return true;
      }
      this.#trip(now);
    }
    this.#suppressed += 1;
    this.#bySession.set(sessionId, (this.#bySession.get(sessionId) ?? 0) + 1);
    return false;
  }

  /** The counts of the pause that has ended by `now`, once; null otherwise. */
  poll(now: number): BreakerRelease | null {
    this.#endPause(now);
    if (this.#paused || this.#trippedAt === null || this.#pausedUntil === null) return null;
    const release: BreakerRelease = {
      trippedAt: this.#trippedAt,
      releasedAt: this.#pausedUntil,
      suppressed: this.#suppressed,
      suppressedBySession: this.#bySession,
    };
    this.#trippedAt = null;
    this.#pausedUntil = null;
    this.#suppressed = 0;
    this.#bySession = new Map();
    return release;
  }

  /** Matches of `sessionId` refused since the last `poll` (1 right after its first refused one). */
  refused(sessionId: string): number {
    return this.#bySession.get(sessionId) ?? 0;
  }

  /** When the breaker tripped (the first trip, when pauses merge), or null if nothing is pending. */
  trippedAt(): number | null {
    return this.#trippedAt;
  }

  /** When `poll` will next return counts (possibly already past), or null if nothing is pending. */
  nextReleaseAt(): number | null {
    return this.#pausedUntil;
  }

  /** Drops a closed session's refused count, so it is never reported. */
  forgetSession(sessionId: string): void {
    const count = this.#bySession.get(sessionId);
    if (count === undefined) return;
    this.#bySession.delete(sessionId);
    this.#suppressed -= count;
  }

  #trip(now: number): void {
    this.#paused = true;
    // A report not yet polled is merged into this pause's report.
    this.#trippedAt ??= now;
    this.#pausedUntil = now + this.#pauseMs;
    this.#head = 0;
    this.#count = 0;
  }

  #endPause(now: number): void {
    if (this.#paused && this.#pausedUntil !== null && now >= this.#pausedUntil) this.#paused = false;
  }
}

function checkPositive(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new VigilError(
      'ERR_INVALID_INPUT',
      `watch breaker: ${name} must be a positive integer, got ${value}`,
    );
  }
}
