import { VigilError } from '../errors.js';

/** The per-process limits of G8 (the `watch` section of the options). */
export interface WatchLimits {
  /** Length of the window a delivered match opens. Default 15 s. */
  readonly cooldownMs: number;
  /** Consecutive windows with drops that disable watching. Default 3. */
  readonly strikeLimit: number;
  /** The delivered match that disables watching. Default 8. */
  readonly lifetimeMaxHits: number;
}

/** Everything a `WatchLimiter` remembers. Plain data: a restarted poller resumes from it exactly. */
export interface WatchLimiterState {
  /** End (exclusive) of the window opened by the last delivered match; null before the first. */
  readonly windowEndsAt: number | null;
  /** Matches dropped since the last delivered one (all of them inside its window). */
  readonly suppressed: number;
  /** Consecutive windows with drops, counting the current one once it has a drop. */
  readonly strikes: number;
  /** Delivered matches so far. */
  readonly hits: number;
  /** Why watching stopped, or null while it goes on. */
  readonly disabled: 'strikes' | 'lifetime' | null;
}

/** What to do with one match. */
export type LimiterVerdict =
  | {
      readonly action: 'deliver';
      /** Matches dropped since the previous delivered match. */
      readonly suppressed: number;
      /** 1-based count of delivered matches. */
      readonly hit: number;
      /** Present on the `lifetimeMaxHits`-th delivery: deliver it, then stop watching. */
      readonly disable?: { readonly reason: 'lifetime' };
    }
  | { readonly action: 'drop'; readonly suppressedSoFar: number }
  | { readonly action: 'disable'; readonly reason: 'strikes'; readonly suppressed: number }
  | { readonly action: 'disabled' };

const INITIAL: WatchLimiterState = { windowEndsAt: null, suppressed: 0, strikes: 0, hits: 0, disabled: null };

/**
 * The per-process watch rate limiter of G8 (defaults: one match per 15 s, 3 strikes,
 * 8 hits). Time comes from the caller, so tests and restarted pollers drive it exactly.
 *
 * - A delivered match opens a window `[now, now + cooldownMs)`. A match at exactly
 *   `now + cooldownMs` is outside it.
 * - A match inside the window is dropped and counted; the next delivered match carries the
 *   count as `suppressed`.
 * - A window with at least one drop is a strike, counted at its first drop. When the strike
 *   count reaches `strikeLimit` (that many consecutive windows with drops), that drop returns
 *   `disable` (reason `strikes`) instead of `drop`, once.
 * - A window that ended with no drop resets the strikes to 0; this is evaluated when the next
 *   match arrives after the window has ended.
 * - The `lifetimeMaxHits`-th delivered match is delivered with `disable: { reason: 'lifetime' }`.
 * - Once disabled, every later offer returns `disabled`.
 */
export class WatchLimiter {
  readonly #limits: WatchLimits;
  #windowEndsAt: number | null;
  #suppressed: number;
  #strikes: number;
  #hits: number;
  #disabled: 'strikes' | 'lifetime' | null;

  constructor(limits: WatchLimits, state: WatchLimiterState = INITIAL) {
    checkInteger(limits.cooldownMs, 'cooldownMs', 0);
    checkInteger(limits.strikeLimit, 'strikeLimit', 1);
    checkInteger(limits.lifetimeMaxHits, 'lifetimeMaxHits', 1);
    checkState(state);
    this.#limits = {
      cooldownMs: limits.cooldownMs,
      strikeLimit: limits.strikeLimit,
      lifetimeMaxHits: limits.lifetimeMaxHits,
    };
    this.#windowEndsAt = state.windowEndsAt;
    this.#suppressed = state.suppressed;
    this.#strikes = state.strikes;
    this.#hits = state.hits;
    this.#disabled = state.disabled;
  }

  /** A snapshot of the state, as plain data. */
  get state(): WatchLimiterState {
    return {
      windowEndsAt: this.#windowEndsAt,
      suppressed: this.#suppressed,
      strikes: this.#strikes,
      hits: this.#hits,
      disabled: this.#disabled,
    };
  }

  /** Why watching stopped, or null. */
  get disabled(): 'strikes' | 'lifetime' | null {
    return this.#disabled;
  }

  /** Whether a match seen at `now` falls inside the window of the last delivered one (would be dropped). */
  windowOpen(now: number): boolean {
    return this.#windowEndsAt !== null && now < this.#windowEndsAt;
  }

  /** Decides what happens to a match seen at `now` (milliseconds, any monotonic clock). */
  offer(now: number): LimiterVerdict {
    if (this.#disabled !== null) return { action: 'disabled' };
    if (this.windowOpen(now)) {
      this.#suppressed += 1;
      if (this.#suppressed === 1) this.#strikes += 1;
      if (this.#strikes >= this.#limits.strikeLimit) {
        this.#disabled = 'strikes';
        return { action: 'disable', reason: 'strikes', suppressed: this.#suppressed };
      }
      return { action: 'drop', suppressedSoFar: this.#suppressed };
    }
    if (this.#windowEndsAt !== null && this.#suppressed === 0) this.#strikes = 0;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#hits += 1;
    this.#windowEndsAt = now + this.#limits.cooldownMs;
    if (this.#hits >= this.#limits.lifetimeMaxHits) {
      this.#disabled = 'lifetime';
      return { action: 'deliver', suppressed, hit: this.#hits, disable: { reason: 'lifetime' } };
    }
    return { action: 'deliver', suppressed, hit: this.#hits };
  }
}

function checkInteger(value: number, name: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new VigilError(
      'ERR_INVALID_INPUT',
      `watch limiter: ${name} must be an integer >= ${min}, got ${value}`,
    );
  }
}

function checkState(state: WatchLimiterState): void {
  const { windowEndsAt, disabled } = state;
  if (windowEndsAt !== null && !Number.isFinite(windowEndsAt)) {
    throw new VigilError('ERR_INVALID_INPUT', `watch limiter state: windowEndsAt must be a number or null`);
  }
  checkInteger(state.suppressed, 'state.suppressed', 0);
  checkInteger(state.strikes, 'state.strikes', 0);
  checkInteger(state.hits, 'state.hits', 0);
  if (disabled !== null && disabled !== 'strikes' && disabled !== 'lifetime') {
    throw new VigilError(
      'ERR_INVALID_INPUT',
      `watch limiter state: disabled must be null, "strikes" or "lifetime"`,
    );
  }
}
