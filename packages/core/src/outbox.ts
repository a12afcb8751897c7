import { toVigilError, type VigilError } from './errors.js';

/** A notification: a tape event that must reach the agent, delivered with acknowledgement. */
export interface Notification {
  /** Stable across poller restarts and replays: derived from the process and output offset. */
  readonly id: string;
  readonly sessionId: string;
  readonly type: 'completion' | 'watch_match' | 'watch_disabled' | 'heartbeat';
  /** The tape event this notification is. */
  readonly seq: number;
  readonly at: number;
  readonly processId: string;
  readonly command: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** The gateway's way into a session. Resolving acknowledges; throwing or rejecting retries later. */
export type Deliver = (notification: Notification, context: { readonly signal: AbortSignal }) => unknown;

export interface OutboxOptions {
  readonly deliver: Deliver | undefined;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly timeoutMs: number;
  /** Consulted right before each attempt: a withdrawn notification is dropped unsent. */
  readonly withdrawn: (notification: Notification) => boolean;
  readonly onDelivered?: (notification: Notification, attempts: number) => void;
  readonly onWithdrawn?: (notification: Notification) => void;
  readonly onFailure?: (notification: Notification, error: VigilError, attempt: number) => void;
}

const TIMED_OUT = Symbol('timed out');

/**
 * One session's outbox: delivers notifications in the order they were enqueued (tape order), one
 * at a time, retrying each with backoff until `deliver` acknowledges it. Acknowledged ids are
 * remembered here, in the session, so a replay from any poller run is never delivered twice.
 */
export class Outbox {
  readonly #options: OutboxOptions;
  readonly #queue: Notification[] = [];
  readonly #acked = new Set<string>();
  readonly #queued = new Set<string>();
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #wakeRetry: (() => void) | undefined;
  #closed = false;

  constructor(options: OutboxOptions) {
    this.#options = options;
  }

  /** Notifications waiting to be delivered (including one in flight). */
  get depth(): number {
    return this.#queue.length;
  }

  /** Whether `id` was acknowledged. */
  acknowledged(id: string): boolean {
    return this.#acked.has(id);
  }

  /** Queues a notification unless its id was already queued or acknowledged. Returns whether it was new. */
  enqueue(notification: Notification): boolean {
    if (this.#closed || this.#acked.has(notification.id) || this.#queued.has(notification.id)) return false;
    this.#queue.push(notification);
    this.#queued.add(notification.id);
    if (this.#options.deliver !== undefined) this.#running ??= this.#drain();
    return true;
  }

  /**
   * Stops delivering: no new `deliver` call starts, and the one in flight sees its signal abort.
   * Resolves once that call settled, or after `graceMs` if it ignores the signal.
   */
  async close(graceMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    clearTimeout(this.#timer);
    this.#wakeRetry?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#running,
      new Promise<void>((resolve) => {
        if (Number.isFinite(graceMs)) timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    this.#queue.length = 0;
    this.#queued.clear();
  }

  async #drain(): Promise<void> {
    try {
      while (!this.#closed && this.#queue.length > 0) {
        const head = this.#queue[0]!;
        if (this.#options.withdrawn(head)) {
          this.#dequeue(head);
          this.#options.onWithdrawn?.(head);
          continue;
        }
        await this.#deliver(head);
      }
    } finally {
      this.#running = undefined;
      if (!this.#closed && this.#queue.length > 0) this.#running = this.#drain();
    }
  }

  async #deliver(notification: Notification): Promise<void> {
    const deliver = this.#options.deliver!;
    for (let attempt = 1; !this.#closed; attempt++) {
      if (attempt > 1 && this.#options.withdrawn(notification)) return;
      try {
        await this.#attempt((signal) => deliver(notification, { signal }));
        this.#dequeue(notification);
        this.#acked.add(notification.id);
        this.#options.onDelivered?.(notification, attempt);
        return;
      } catch (error) {
        if (this.#closed) return;
        this.#options.onFailure?.(notification, toVigilError(error, 'ERR_TIMEOUT'), attempt);
        const delay = Math.min(this.#options.maxDelayMs, this.#options.initialDelayMs * 2 ** (attempt - 1));
        await new Promise<void>((resolve) => {
          this.#wakeRetry = resolve;
          this.#timer = setTimeout(resolve, delay);
        });
        this.#wakeRetry = undefined;
      }
    }
  }

  /**
   * One `deliver` call with its own signal: aborted when it times out (so a gateway can drop a
   * late injection instead of doubling it) and when the outbox closes. The attempt settles on
   * whichever comes first, so no timer of it outlives `close()`.
   */
  async #attempt(call: (signal: AbortSignal) => unknown): Promise<void> {
    const attempt = new AbortController();
    const signal = AbortSignal.any([this.#abort.signal, attempt.signal]);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const cutoff = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), this.#options.timeoutMs);
      onAbort = () => resolve(TIMED_OUT);
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const outcome = await Promise.race([Promise.resolve().then(() => call(signal)), cutoff]);
      if (outcome === TIMED_OUT) {
        attempt.abort();
        throw new Error(`deliver did not settle within ${this.#options.timeoutMs} ms`);
      }
    } finally {
      clearTimeout(timer);
      if (onAbort !== undefined) this.#abort.signal.removeEventListener('abort', onAbort);
    }
  }

  #dequeue(notification: Notification): void {
    const index = this.#queue.indexOf(notification);
    if (index >= 0) this.#queue.splice(index, 1);
    this.#queued.delete(notification.id);
  }
}
