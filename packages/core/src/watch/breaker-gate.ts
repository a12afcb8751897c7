import type { MatchGate } from '../journal/journal.js';
import { type BreakerRelease, WatchBreaker, type WatchBreakerOptions } from './breaker.js';

/**
 * The global breaker of G8 with its one timer: sessions' journals ask it to admit each match; when a
 * pause has ended, `onRelease` hears once how many matches each session lost.
 */
export class BreakerGate implements MatchGate {
  readonly #breaker: WatchBreaker;
  readonly #now: () => number;
  readonly #onRelease: (release: BreakerRelease) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: WatchBreakerOptions, now: () => number, onRelease: (release: BreakerRelease) => void) {
    this.#breaker = new WatchBreaker(options);
    this.#now = now;
    this.#onRelease = onRelease;
  }

  admit(sessionId: string): boolean {
    if (this.#breaker.admit(sessionId, this.#now())) return true;
    this.#arm();
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
        else this.#onRelease(release);
      },
      Math.max(0, at - this.#now()),
    );
    this.#timer.unref();
  }
}
