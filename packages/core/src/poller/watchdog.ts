/**
 * Notices a poller run stuck on a batch (a catastrophic regex). The run counts its batches in its
 * progress buffer and flags the one it is in; the registry inspects the buffer periodically, and a
 * batch that has run for longer than the timeout fires `onStuck` once. The run also marks which
 * pattern it is running for which slot, so the owner can tell whom to blame.
 */
export class Watchdog {
  readonly #timeoutMs: number;
  readonly #onStuck: (cells: Int32Array) => void;
  #cells = new Int32Array(new SharedArrayBuffer(8));
  #batch = -1;
  #since = 0;
  #fired = false;

  constructor(timeoutMs: number, onStuck: (cells: Int32Array) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onStuck = onStuck;
  }

  /** A fresh progress buffer for a new run: a cell per slot, then the batch count and the busy flag. */
  renew(slots: number): SharedArrayBuffer {
    this.#cells = new Int32Array(new SharedArrayBuffer(4 * (slots + 2)));
    this.#batch = -1;
    return this.#cells.buffer as SharedArrayBuffer;
  }

  /** Fires `onStuck` once when the run's current batch started more than the timeout before `now`. */
  inspect(now: number): void {
    const slots = this.#cells.length - 2;
    if (Atomics.load(this.#cells, slots + 1) !== 1) {
      this.#batch = -1;
      return;
    }
    const batch = Atomics.load(this.#cells, slots);
    if (batch !== this.#batch) {
      this.#batch = batch;
      this.#since = now;
      this.#fired = false;
    } else if (!this.#fired && now - this.#since >= this.#timeoutMs) {
      this.#fired = true;
      this.#onStuck(this.#cells);
    }
  }
}
