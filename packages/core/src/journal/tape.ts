import { abortError, VigilError } from '../errors.js';
import type {
  AnyTapeEvent,
  EventDataMap,
  LooseEventData,
  TapeAppendOptions,
  TapeEventOf,
  TapeEventType,
  TapeOptions,
  TapePageOf,
  TapeReadOptions,
  TapeSubscribeOptions,
} from './tape-events.js';
import { type PageSource, TapeSubscription } from './tape-subscription.js';

/** Keyed by the union, so adding an event type without listing it here fails to compile. */
const EVENT_TYPES: Readonly<Record<TapeEventType, true>> = {
  'process.started': true,
  'process.output': true,
  'process.supersedes': true,
  'process.exited': true,
  'watch.match': true,
  'watch.disabled': true,
  'watch.paused': true,
  'watch.resumed': true,
  heartbeat: true,
  'notification.delivered': true,
  'notification.withdrawn': true,
  'approval.requested': true,
  'approval.resolved': true,
  'session.opened': true,
  'session.closed': true,
};

function invalid(field: string, message: string, cause?: unknown): VigilError {
  return new VigilError('ERR_INVALID_INPUT', `${field} ${message}`, {
    details: { field },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * The append-only event log of one session, with a gapless `seq` from 1 (G11, G12).
 *
 * `append` is synchronous, so a caller can change a process's state and append its
 * `process.exited` in one step that no reader can observe half-done (G7). Retention evicts the
 * oldest events beyond `maxEvents` / `maxBytes`; a cursor that fell behind answers `reset: true`.
 * `M` types each event's data (a session's tape uses `TapeEventData`); alone, any JSON object goes.
 */
export class Tape<M extends EventDataMap = LooseEventData> {
  readonly sessionId: string;
  readonly #options: TapeOptions;
  readonly #now: () => number;
  /** Retained events live at indices `#head..length-1`; seq is `firstSeq + (index - #head)`. */
  #events: (AnyTapeEvent<M> | undefined)[] = [];
  #sizes: number[] = [];
  #head = 0;
  #bytes = 0;
  /** The newest event appended (staged or published). */
  #lastSeq = 0;
  /** The newest event readers may see: events after it are staged, waiting for their commit. */
  #visibleSeq = 0;
  /** `session.closed` was appended; nothing more can be. */
  #closed = false;
  readonly #exited = new Set<string>();
  readonly #waiters = new Set<() => void>();
  /** Why nothing more becomes readable (the journal's store dropped the session), once it did. */
  #dropped: VigilError | undefined;

  constructor(sessionId: string, options: TapeOptions) {
    this.sessionId = sessionId;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The seq of the newest readable event; 0 before the first append. */
  get lastSeq(): number {
    return this.#visibleSeq;
  }

  /** The oldest retained seq, or `lastSeq + 1` while the tape is empty. */
  get firstSeq(): number {
    return this.#lastSeq - (this.#events.length - this.#head) + 1;
  }

  /** True once `session.closed` is on the tape, readable. */
  get closed(): boolean {
    return this.#closed && this.#visibleSeq === this.#lastSeq;
  }

  /** Readers and subscribers currently long-polling (for stats and leak checks). */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Appends one event and wakes every waiting reader. Synchronous and O(1) amortized.
   * Throws `ERR_SESSION_CLOSED` once `session.closed` was appended (appending it closes the tape),
   * and `ERR_INVALID_INPUT` for an unknown type, a `process.*` event without `processId`, any
   * event for a process after its `process.exited`, or `data` that is not a JSON-serialisable object.
   * `data` is copied shallowly and frozen.
   */
  append<T extends TapeEventType>(
    type: T,
    data: M[T] = {} as M[T],
    options: TapeAppendOptions = {},
  ): TapeEventOf<M, T> {
    const event = this.stage(type, data, options);
    this.publish(event.seq);
    return event;
  }

  /**
   * Appends one event that readers do not see yet: `publish` makes it readable (once it is
   * durable). Checks and throws like `append`; later appends see it (its seq is taken).
   */
  stage<T extends TapeEventType>(
    type: T,
    data: M[T] = {} as M[T],
    options: TapeAppendOptions = {},
  ): TapeEventOf<M, T> {
    return this.stageEncoded(type, data, options).event;
  }

  /** `stage`, returning the event's JSON too (the tape computes it for its byte budget). */
  stageEncoded<T extends TapeEventType>(
    type: T,
    data: M[T] = {} as M[T],
    options: TapeAppendOptions = {},
  ): { readonly event: TapeEventOf<M, T>; readonly json: string } {
    if (this.#closed) {
      throw new VigilError('ERR_SESSION_CLOSED', `Session ${this.sessionId} is closed; its tape is final`, {
        details: { sessionId: this.sessionId, type },
      });
    }
    if (!Object.hasOwn(EVENT_TYPES, type)) throw invalid('type', `is not a tape event type: ${String(type)}`);
    const { processId } = options;
    if (processId !== undefined && (typeof processId !== 'string' || processId === '')) {
      throw invalid('processId', 'must be a non-empty string');
    }
    if (processId === undefined && type.startsWith('process.')) {
      throw invalid('processId', `is required for ${type}`);
    }
    if (processId !== undefined && this.#exited.has(processId)) {
      throw invalid('processId', `${processId} has exited; process.exited is its last tape event`);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw invalid('data', 'must be a plain object');
    }
    const event: TapeEventOf<M, T> = Object.freeze({
      seq: this.#lastSeq + 1,
      type,
      at: this.#now(),
      ...(processId === undefined ? {} : { processId }),
      data: Object.freeze({ ...data }),
    });
    let json: string;
    try {
      json = JSON.stringify(event);
    } catch (cause) {
      throw invalid('data', 'must be JSON-serialisable', cause);
    }
    // Nothing above mutated the tape, so a throw leaves it unchanged.
    this.#events.push(event as AnyTapeEvent<M>);
    this.#sizes.push(json.length);
    this.#bytes += json.length;
    this.#lastSeq = event.seq;
    if (type === 'process.exited' && processId !== undefined) this.#exited.add(processId);
    if (type === 'session.closed') this.#closed = true;
    return { event, json };
  }

  /**
   * Nothing more becomes readable (the session's store dropped it): a reader that has read
   * everything readable gets `why` instead of waiting, and the waiting ones are woken to get it.
   */
  drop(why: VigilError): void {
    this.#dropped = why;
    this.#wake();
  }

  /** Makes every staged event up to `seq` readable, and wakes every waiting reader. */
  publish(seq: number): void {
    if (seq <= this.#visibleSeq) return;
    this.#visibleSeq = Math.min(seq, this.#lastSeq);
    this.#evict();
    this.#wake();
  }

  /**
   * Loads a restored tape into an empty one: `events` are the retained events (gapless, in order)
   * and `lastSeq` the newest seq; all of them are readable at once.
   */
  load(events: readonly AnyTapeEvent<M>[], lastSeq: number): void {
    if (this.#lastSeq !== 0) throw new Error('Tape.load needs an empty tape');
    for (const event of events) {
      this.#events.push(event);
      const size = JSON.stringify(event).length;
      this.#sizes.push(size);
      this.#bytes += size;
      if (event.type === 'process.exited' && event.processId !== undefined) this.#exited.add(event.processId);
      if (event.type === 'session.closed') this.#closed = true;
    }
    this.#lastSeq = lastSeq;
    this.#visibleSeq = lastSeq;
    this.#evict();
  }

  /**
   * Reads the events with `seq > after` (G11). Waits up to `waitMs` only when caught up and the tape
   * is open, returning as soon as an event is appended or the tape closes (G12).
   * `waitMs` above `maxWaitMs` is clamped to `maxWaitMs`; every other bad option rejects:
   * `after` with `ERR_INVALID_CURSOR` (also when ahead of `lastSeq`), `limit`/`waitMs` with
   * `ERR_INVALID_INPUT`. Aborting `signal` rejects with `abortError(signal)`. A wait rejects with
   * the store's error (`ERR_SESSION_OWNED`) once the session was dropped (see `drop`).
   */
  async read(options: TapeReadOptions = {}): Promise<TapePageOf<AnyTapeEvent<M>>> {
    if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object');
    const after = this.#cursor(options.after);
    const { limit = this.#options.defaultLimit, waitMs = 0, signal } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > this.#options.maxLimit) {
      throw invalid('limit', `must be an integer from 1 to ${this.#options.maxLimit}, got ${String(limit)}`);
    }
    if (typeof waitMs !== 'number' || Number.isNaN(waitMs) || waitMs < 0) {
      throw invalid('waitMs', `must be a non-negative number, got ${String(waitMs)}`);
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw invalid('signal', 'must be an AbortSignal');
    }
    return this.#collect(after, limit, Math.min(waitMs, this.#options.maxWaitMs), signal);
  }

  /**
   * Yields every event with `seq > after` in order, long-polling when caught up, and ends after
   * yielding `session.closed`. If retention evicts events it has not yielded, `next()` rejects with
   * `ERR_INVALID_CURSOR` (`details.firstSeq`), and once the session was dropped, after its last
   * readable event, with the store's error. `return()` (a `break`) releases a pending wait.
   * Throws `ERR_INVALID_CURSOR` synchronously for a bad `after`.
   */
  subscribe(options: TapeSubscribeOptions = {}): AsyncIterableIterator<AnyTapeEvent<M>, undefined> {
    const after = this.#cursor(options.after);
    const source: PageSource<AnyTapeEvent<M>> = (from, signal) =>
      this.#collect(from, this.#options.maxLimit, Number.POSITIVE_INFINITY, signal);
    return new TapeSubscription(source, after, options.signal);
  }

  #cursor(after: unknown): number {
    if (after === undefined) return 0;
    if (typeof after !== 'number' || !Number.isInteger(after) || after < 0) {
      throw new VigilError(
        'ERR_INVALID_CURSOR',
        `after must be a non-negative integer, got ${String(after)}`,
        {
          details: { field: 'after' },
        },
      );
    }
    if (after > this.#visibleSeq) {
      throw new VigilError(
        'ERR_INVALID_CURSOR',
        `after (${after}) is ahead of the tape of session ${this.sessionId}: lastSeq is ${this.#visibleSeq}`,
        { details: { field: 'after', after, lastSeq: this.#visibleSeq } },
      );
    }
    return after;
  }

  async #collect(
    after: number,
    limit: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<TapePageOf<AnyTapeEvent<M>>> {
    if (signal?.aborted) throw abortError(signal);
    // No await between this check and registering the waiter, so no append can slip in between.
    if (after === this.#visibleSeq && waitMs > 0 && !this.closed) {
      if (this.#dropped !== undefined) throw this.#dropped;
      await this.#waitForAppend(waitMs, signal);
      if (after === this.#visibleSeq && this.#dropped !== undefined) throw this.#dropped;
    }
    return this.#page(after, limit);
  }

  #page(after: number, limit: number): TapePageOf<AnyTapeEvent<M>> {
    const firstSeq = this.firstSeq;
    const lastSeq = this.#visibleSeq;
    const closed = this.closed;
    if (after < firstSeq - 1) {
      return { events: [], next: firstSeq - 1, hasMore: true, lastSeq, firstSeq, reset: true, closed };
    }
    const start = this.#head + (after + 1 - firstSeq);
    const events = this.#events.slice(start, start + Math.min(limit, lastSeq - after)) as AnyTapeEvent<M>[];
    const next = after + events.length;
    return { events, next, hasMore: next < lastSeq, lastSeq, firstSeq, reset: false, closed };
  }

  async #waitForAppend(ms: number, signal?: AbortSignal): Promise<void> {
    let wake!: () => void;
    let fail!: (reason: unknown) => void;
    const woken = new Promise<void>((resolve, reject) => {
      wake = resolve;
      fail = reject;
    });
    const onAbort = (): void => {
      if (signal) fail(abortError(signal));
    };
    const timer = Number.isFinite(ms) ? setTimeout(wake, ms) : undefined;
    this.#waiters.add(wake);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await woken;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(wake);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #wake(): void {
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  #evict(): void {
    const { maxEvents, maxBytes } = this.#options;
    // Only readable events are evicted, and never the newest one.
    while (this.#events.length - this.#head > 1 && this.firstSeq <= this.#visibleSeq) {
      if (this.#events.length - this.#head <= maxEvents && this.#bytes <= maxBytes) break;
      this.#bytes -= this.#sizes[this.#head] ?? 0;
      this.#events[this.#head] = undefined;
      this.#head++;
    }
    // Compact once the evicted prefix is at least half the array: each event is copied O(1) times.
    if (this.#head >= 64 && this.#head * 2 >= this.#events.length) {
      this.#events = this.#events.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }
}
