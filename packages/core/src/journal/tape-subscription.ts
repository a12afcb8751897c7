import { abortError, VigilError } from '../errors.js';
import type { TapePageOf } from './tape-events.js';

/** Fetches the page after a cursor, waiting without a deadline when caught up. */
export type PageSource<E> = (after: number, signal: AbortSignal) => Promise<TapePageOf<E>>;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
const noop = (): void => {};

/** The iterator behind `Tape.subscribe`: pages through the tape and owns one abort controller. */
export class TapeSubscription<E extends { readonly seq: number; readonly type: string }>
  implements AsyncIterableIterator<E, undefined>, AsyncDisposable
{
  readonly #source: PageSource<E>;
  readonly #signal: AbortSignal | undefined;
  readonly #controller = new AbortController();
  #after: number;
  #buffer: E[] = [];
  #index = 0;
  #done = false;
  #returned = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(source: PageSource<E>, after: number, signal: AbortSignal | undefined) {
    this.#source = source;
    this.#after = after;
    this.#signal = signal;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Concurrent calls are served one after the other, in call order. */
  next(): Promise<IteratorResult<E, undefined>> {
    const result = this.#queue.then(() => this.#step());
    this.#queue = result.then(noop, noop);
    return result;
  }

  /** Ends the subscription; a pending `next()` resolves done and its wait is released first. */
  async return(): Promise<IteratorReturnResult<undefined>> {
    this.#returned = true;
    this.#finish();
    this.#controller.abort(new VigilError('ERR_CLOSED', 'The subscription was returned'));
    await this.#queue;
    return DONE;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  async #step(): Promise<IteratorResult<E, undefined>> {
    for (;;) {
      if (this.#done) return DONE;
      if (this.#signal?.aborted) {
        this.#finish();
        throw abortError(this.#signal);
      }
      const event = this.#buffer[this.#index];
      if (event !== undefined) {
        this.#index++;
        this.#after = event.seq;
        if (event.type === 'session.closed') this.#finish();
        return { done: false, value: event };
      }
      const page = await this.#fetch();
      if (page === undefined) return DONE;
      if (page.reset) {
        this.#finish();
        throw new VigilError(
          'ERR_INVALID_CURSOR',
          `Events ${this.#after + 1}..${page.firstSeq - 1} were evicted before the subscriber read them`,
          { details: { after: this.#after, firstSeq: page.firstSeq } },
        );
      }
      if (page.events.length === 0 && page.closed) return this.#finish();
      this.#buffer = page.events;
      this.#index = 0;
    }
  }

  /** The next page, or undefined once `return()` was called. */
  async #fetch(): Promise<TapePageOf<E> | undefined> {
    const signal = this.#signal;
    const onAbort = (): void => {
      if (signal) this.#controller.abort(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.#source(this.#after, this.#controller.signal);
    } catch (error) {
      if (this.#returned) return undefined;
      this.#finish();
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #finish(): IteratorReturnResult<undefined> {
    this.#done = true;
    this.#buffer = [];
    this.#index = 0;
    return DONE;
  }
}
