/**
 * Notices a poller run that is stuck on a batch (a catastrophic regex): armed when a batch with
 * output is handed out, cleared by the run's commit. The run marks in its progress buffer which
 * pattern it is running for which slot, so the watchdog can tell the owner whom to blame.
 */
export class Watchdog {
  readonly #timeoutMs: number;
  readonly #onStuck: (cells: Int32Array) => void;
  #progress = new SharedArrayBuffer(4);
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, onStuck: (cells: Int32Array) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onStuck = onStuck;
  }

  /** A fresh progress buffer of `slots` cells for a new run. */
  renew(slots: number): SharedArrayBuffer {
    this.#progress = new SharedArrayBuffer(4 * slots);
    return this.#progress;
  }

  /** Fires `onStuck` after the timeout unless cleared first; `stillCurrent` is checked when it fires. */
  arm(stillCurrent: () => boolean): void {
    this.clear();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (stillCurrent()) this.#onStuck(new Int32Array(this.#progress));
    }, this.#timeoutMs);
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
