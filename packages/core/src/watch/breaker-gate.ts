import type { MatchGate } from '../journal/journal.js';
import { type BreakerRelease, WatchBreaker, type WatchBreakerOptions } from './breaker.js';

/** A pause as a session first hears of it: at its first refused match. */
export interface BreakerPause {
  /** When the breaker tripped (the first trip, when pauses merged): names the pause. */
  readonly trippedAt: number;
  /** How long matches stay refused from now. */
  readonly pausedMs: number;
}

/** Who hears of the breaker: each session it refused a match of, at the first and when it released. */
export interface BreakerListener {
  paused(sessionId: string, pause: BreakerPause): void;
  released(release: BreakerRelease): void;
}

/**
 * The global breaker of G8 with its one timer: sessions' journals ask it to admit each match; a
 * session hears of a pause at its first refused match, and once more, when the pause has ended,
 * how many matches it lost.
 */
export class BreakerGate implements MatchGate {
  readonly #breaker: WatchBreaker;
  readonly #now: () => number;
  readonly #listener: BreakerListener;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: WatchBreakerOptions, now: () => number, listener: BreakerListener) {
    this.#breaker = new WatchBreaker(options);
    this.#now = now;
    this.#listener = listener;
  }

  admit(sessionId: string): boolean {
    const now = this.#now();
    if (this.#breaker.admit(sessionId, now)) return true;
    this.#arm();
    const trippedAt = this.#breaker.trippedAt();
    const until = this.#breaker.nextReleaseAt();
    if (this.#breaker.refused(sessionId) === 1 && trippedAt !== null && until !== null) {
      this.#listener.paused(sessionId, { trippedAt, pausedMs: Math.max(0, until - now) });
    }
    return false;
  }

  /** Drops a closed session's refused count, so it is never reported (G2). */
  forget(sessionId: string): void {
    this.#breaker.forgetSession(sessionId);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    const at = this.#breaker.nextReleaseAt();
    if (at === null) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        const release = this.#breaker.poll(this.#now());
        if (release === null) this.#arm();
        else this.#listener.released(release);
      },
      Math.max(0, at - this.#now()),
    );
    this.#timer.unref();
  }
}
