import { toVigilError, VigilError } from '../errors.js';
import { deadline, TIMED_OUT } from '../timeout.js';
import type { Notification } from './notification.js';

/** The delivered items at the front of the queue's array are dropped once there are this many (and half of it). */
const COMPACT_AT = 1024;

/** What an outbox delivers: anything with a stable `id`. */
export interface OutboxItem {
  readonly id: string;
}

/** Delivers one item; resolving acknowledges it. */
export type DeliverOne<N> = (item: N, context: { readonly signal: AbortSignal }) => unknown;
/** Delivers the items ready, in order; resolving acknowledges them all. */
export type DeliverMany<N> = (items: readonly N[], context: { readonly signal: AbortSignal }) => unknown;

/** How an outbox hands items over: one per call, or every ready one (bounded) per call. */
export type OutboxDelivery<N> = DeliverOne<N> | { readonly batch: DeliverMany<N> };

export interface OutboxOptions<N extends OutboxItem = Notification> {
  /** Called one at a time; resolving acknowledges. Absent: items wait (a session without `deliver`). */
  readonly deliver: OutboxDelivery<N> | undefined;
  /** Items in one batch at most (batch delivery only). Default 50. */
  readonly maxBatch?: number;
  /** `sizeOf` summed over one batch at most; a batch holds one item whatever its size. Default unbounded. */
  readonly maxBatchChars?: number;
  /** An item's size against `maxBatchChars`. Default: the length of its JSON. */
  readonly sizeOf?: (item: N) => number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly timeoutMs: number;
  /** Consulted right before each attempt: a withdrawn item is dropped unsent. */
  readonly withdrawn: (item: N) => boolean;
  /** An item was acknowledged; the next one waits for a promise this returns (its acknowledgement made durable). */
  readonly onDelivered?: (item: N, attempts: number) => void | Promise<void>;
  /** Ids acknowledged before (by a previous run): never delivered. */
  readonly acknowledged?: Iterable<string>;
  readonly onWithdrawn?: (item: N) => void;
  /**
   * A failed attempt, reported with the call's first item: `ERR_DELIVERY` (deliver threw or
   * rejected; the cause is kept) or `ERR_TIMEOUT`.
   */
  readonly onFailure?: (item: N, error: VigilError, attempt: number) => void;
}

/**
 * One session's outbox: delivers notifications in the order they were enqueued (tape order), one
 * call at a time, retrying each call with backoff until `deliver` acknowledges it. A batch call
 * carries the run of ready items at the queue's head, so a burst costs one call (and one commit of
 * its acknowledgements) instead of one per item. Acknowledged ids are
 * remembered here, in the session, so a replay from any poller run is never delivered twice.
 */
export class Outbox<N extends OutboxItem = Notification> {
  readonly #options: OutboxOptions<N>;
  #deliverTo: DeliverMany<N> | undefined;
  #maxBatch = 1;
  /** Waiting items are `#queue[#head..]`: a delivered head is dropped in O(1), however long the queue. */
  #queue: (N | undefined)[] = [];
  #head = 0;
  readonly #acked: Set<string>;
  readonly #queued = new Set<string>();
  /** The attempt in flight: `close` aborts it. */
  #attempting: AbortController | undefined;
  /** The `deliver` call in flight, until it settles: `close` waits for it (G2). */
  /** Every `deliver` call not settled yet, a timed-out one included: a close waits for them all. */
  readonly #calls = new Set<Promise<unknown>>();
  /** Aborted once `close` stopped waiting for the call in flight. */
  readonly #abandoned = new AbortController();
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #wakeRetry: (() => void) | undefined;
  #closed = false;

  constructor(options: OutboxOptions<N>) {
    this.#options = options;
    if (options.deliver !== undefined) this.#install(options.deliver);
    this.#acked = new Set(options.acknowledged);
  }

  /** Whether a `deliver` is installed. */
  get attached(): boolean {
    return this.#deliverTo !== undefined;
  }

  /** Installs `deliver` on an outbox that had none (a restored session), and starts delivering. */
  attach(deliver: OutboxDelivery<N>): void {
    if (this.#deliverTo !== undefined || this.#closed) return;
    this.#install(deliver);
    if (this.depth > 0) this.#running ??= this.#drain();
  }

  /** Notifications waiting to be delivered (including one in flight). */
  get depth(): number {
    return this.#queue.length - this.#head;
  }

  /** Whether `id` was acknowledged. */
  acknowledged(id: string): boolean {
    return this.#acked.has(id);
  }

  /** Whether `id` was acknowledged or waits in the queue: `enqueue` would refuse it. */
  knows(id: string): boolean {
    return this.#acked.has(id) || this.#queued.has(id);
  }

  /** Queues a notification unless its id was already queued or acknowledged. Returns whether it was new. */
  enqueue(notification: N): boolean {
    if (this.#closed || this.#acked.has(notification.id) || this.#queued.has(notification.id)) return false;
    this.#queue.push(notification);
    this.#queued.add(notification.id);
    if (this.#deliverTo !== undefined) this.#running ??= this.#drain();
    return true;
  }

  /**
   * Stops delivering: no new `deliver` call starts, and the one in flight sees its signal abort.
   * Resolves once every call made settled (so nothing of it runs afterwards), or after `graceMs`
   * if one ignores its signal.
   */
  async close(graceMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.#closed = true;
    this.#attempting?.abort();
    clearTimeout(this.#timer);
    this.#wakeRetry?.();
    const calls = [...this.#calls, this.#running].filter((call) => call !== undefined);
    if (calls.length > 0) await deadline(Promise.allSettled(calls), graceMs);
    // A call that ignored its signal past the grace is left to itself; no timer of it stays.
    this.#abandoned.abort();
    this.#queue = [];
    this.#head = 0;
    this.#queued.clear();
  }

  #install(deliver: OutboxDelivery<N>): void {
    if (typeof deliver === 'function') {
      this.#deliverTo = (items, context) => deliver(items[0]!, context);
      this.#maxBatch = 1;
    } else {
      this.#deliverTo = deliver.batch;
      this.#maxBatch = this.#options.maxBatch ?? 50;
    }
  }

  async #drain(): Promise<void> {
    try {
      while (!this.#closed && this.depth > 0) await this.#deliver();
    } finally {
      this.#running = undefined;
      if (!this.#closed && this.depth > 0) this.#running = this.#drain();
    }
  }

  /**
   * The items of the next call: withdrawn items at the head are dropped (reported), then the run of
   * not-withdrawn items that follows, up to the bounds and up to `last` (a retry carries the failed
   * batch again, never more). A withdrawn item ends the run, so it is dropped at the head of the
   * next one and items still leave the queue in order.
   */
  #ready(last?: N): N[] {
    while (this.depth > 0 && this.#options.withdrawn(this.#queue[this.#head]!)) {
      const head = this.#queue[this.#head]!;
      this.#dequeue(head);
      this.#options.onWithdrawn?.(head);
    }
    const maxChars = this.#maxBatch === 1 ? undefined : this.#options.maxBatchChars;
    const sizeOf = this.#options.sizeOf ?? ((item: N) => JSON.stringify(item).length);
    const batch: N[] = [];
    let chars = 0;
    for (let at = this.#head; at < this.#queue.length && batch.length < this.#maxBatch; at++) {
      const item = this.#queue[at]!;
      if (batch.length > 0 && this.#options.withdrawn(item)) break;
      if (maxChars !== undefined) {
        chars += sizeOf(item);
        if (batch.length > 0 && chars > maxChars) break;
      }
      batch.push(item);
      if (item === last) break;
    }
    return batch;
  }

  /** Delivers the items ready now, retrying them (less withdrawn ones) until acknowledged. */
  async #deliver(): Promise<void> {
    const deliver = this.#deliverTo!;
    let items: N[] = [];
    for (let attempt = 1; !this.#closed; attempt++) {
      items = this.#ready(items.at(-1));
      if (items.length === 0) return;
      try {
        await this.#attempt((signal) => deliver(items, { signal }));
        for (const item of items) {
          this.#dequeue(item);
          this.#acked.add(item.id);
        }
        // Every acknowledgement is recorded in this turn (one commit); the next call waits for it.
        const onDelivered = this.#options.onDelivered;
        if (onDelivered !== undefined) await Promise.all(items.map((item) => onDelivered(item, attempt)));
        return;
      } catch (error) {
        if (this.#closed) return;
        this.#options.onFailure?.(items[0]!, toVigilError(error, 'ERR_DELIVERY'), attempt);
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
    this.#attempting = attempt;
    const settled = Promise.resolve().then(() => call(attempt.signal));
    this.#calls.add(settled);
    const forget = (): void => {
      this.#calls.delete(settled);
    };
    settled.then(forget, forget);
    try {
      // Not raced against the attempt's signal: a close waits for the call itself, up to its grace.
      const outcome = await deadline(settled, this.#options.timeoutMs, this.#abandoned.signal);
      if (outcome === TIMED_OUT) {
        attempt.abort();
        throw new VigilError('ERR_TIMEOUT', `deliver did not settle within ${this.#options.timeoutMs} ms`);
      }
    } finally {
      this.#attempting = undefined;
    }
  }

  /** Drops the head, which `notification` is (items leave in order). */
  #dequeue(notification: N): void {
    this.#queued.delete(notification.id);
    if (this.#queue[this.#head] !== notification) return;
    this.#queue[this.#head++] = undefined;
    if (this.#head >= COMPACT_AT && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
