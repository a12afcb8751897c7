/**
 * One subscriber of an approval queue: the snapshots it has not received yet, handed to its
 * listener one at a time, in version order, each after the promise of the one before settled.
 *
 * The backlog is bounded: when a slow listener lets more than `backlog` snapshots wait, the oldest
 * waiting ones are skipped. The newest is never skipped, so a subscriber that catches up always
 * ends on the queue's current state; the versions it skipped show as gaps.
 */
export class ApprovalSubscriber<S> {
  readonly #listener: (snapshot: S) => void | Promise<void>;
  readonly #backlog: number;
  readonly #report: (error: unknown) => void;
  readonly #waiting: S[] = [];
  #busy = false;
  #active = true;

  constructor(
    listener: (snapshot: S) => void | Promise<void>,
    options: { readonly backlog: number; readonly report: (error: unknown) => void },
  ) {
    this.#listener = listener;
    this.#backlog = options.backlog;
    this.#report = options.report;
  }

  /** Queues a snapshot behind the ones waiting, skipping the oldest past the backlog. */
  enqueue(snapshot: S): void {
    if (!this.#active) return;
    this.#waiting.push(snapshot);
    if (this.#waiting.length > this.#backlog) this.#waiting.splice(0, this.#waiting.length - this.#backlog);
  }

  /** Hands waiting snapshots to the listener while it is not busy with one. */
  drain(): void {
    while (this.#active && !this.#busy && this.#waiting.length > 0) {
      const snapshot = this.#waiting.shift()!;
      this.#busy = true;
      let result: unknown;
      try {
        result = this.#listener(snapshot);
      } catch (error) {
        this.#report(error);
      }
      if (isThenable(result)) {
        const next = (): void => {
          this.#busy = false;
          this.drain();
        };
        Promise.resolve(result).then(next, (error: unknown) => {
          this.#report(error);
          next();
        });
        return;
      }
      this.#busy = false;
    }
  }

  /** Drops what waits; the listener is never called again. */
  close(): void {
    this.#active = false;
    this.#waiting.length = 0;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
