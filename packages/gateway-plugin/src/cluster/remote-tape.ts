import { type TapeEvent, type TapePage, toVigilError, VigilError } from '@vigil/core';
import type { RedisKeys } from '@vigil/core/redis';
import type { Redis } from 'ioredis';
import { execAll, guarded } from './redis-errors.js';

/** The tape limits of this instance's config (`tape.*`): the cluster shares one config. */
export interface TapeLimits {
  readonly defaultLimit: number;
  readonly maxLimit: number;
  readonly maxWaitMs: number;
}

/** Options of a remote tape read, as `GET /v1/sessions/:sid/events` takes them. */
export interface RemoteReadOptions {
  readonly after?: number | undefined;
  readonly limit?: number | undefined;
  readonly waitMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

type Entries = [id: string, fields: string[]][];

/** A subscription's waits, one blocking read after another: the stream never ends on its own. */
const SUBSCRIPTION_WAIT_MS = 30_000;

/**
 * A session's tape read from its Redis stream, for a session another instance serves: the same
 * pages as `vigil.tape.read` (cursor checks, `reset`, `closed`), long-polling with `XREAD BLOCK`.
 */
export class RemoteTape {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #url: string;
  readonly #limits: TapeLimits;
  readonly #timeoutMs: number;

  constructor(
    redis: Redis,
    keys: RedisKeys,
    options: { url: string; limits: TapeLimits; timeoutMs: number },
  ) {
    this.#redis = redis;
    this.#keys = keys;
    this.#url = options.url;
    this.#limits = options.limits;
    this.#timeoutMs = options.timeoutMs;
  }

  /** One page after `after`; waits up to `waitMs` (capped at `tape.maxWaitMs`) when caught up. */
  async read(sessionId: string, options: RemoteReadOptions = {}): Promise<TapePage> {
    const after = options.after ?? 0;
    const limit = options.limit ?? this.#limits.defaultLimit;
    if (limit < 1 || limit > this.#limits.maxLimit) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `limit must be an integer from 1 to ${this.#limits.maxLimit}, got ${limit}`,
        { details: { field: 'limit' } },
      );
    }
    const waitMs = Math.min(options.waitMs ?? 0, this.#limits.maxWaitMs);
    return this.#read(sessionId, { after, limit, waitMs, signal: options.signal });
  }

  /** Every event after `after`, in order, until `session.closed`; a cursor evicted meanwhile rejects `ERR_INVALID_CURSOR`. */
  async *subscribe(
    sessionId: string,
    options: { readonly after: number; readonly signal: AbortSignal },
  ): AsyncGenerator<TapeEvent, void> {
    let cursor = options.after;
    for (;;) {
      // Not bounded by `tape.maxWaitMs` (which may be 0): a subscriber waits as long as it takes.
      const page = await this.#read(sessionId, {
        after: cursor,
        limit: this.#limits.maxLimit,
        waitMs: SUBSCRIPTION_WAIT_MS,
        signal: options.signal,
      });
      if (page.reset) {
        throw new VigilError(
          'ERR_INVALID_CURSOR',
          `Events ${cursor + 1}..${page.firstSeq - 1} were evicted before the subscriber read them`,
          { details: { after: cursor, firstSeq: page.firstSeq } },
        );
      }
      for (const event of page.events) {
        cursor = event.seq;
        yield event;
        if (event.type === 'session.closed') return;
      }
      if (page.closed && page.events.length === 0) return;
    }
  }

  /** One page after `after`, waiting up to `waitMs` for one when caught up. */
  async #read(
    sessionId: string,
    options: { after: number; limit: number; waitMs: number; signal: AbortSignal | undefined },
  ): Promise<TapePage> {
    const { after, limit, waitMs, signal } = options;
    const page = await this.#page(sessionId, after, limit);
    if (page.events.length > 0 || page.reset || page.closed || waitMs === 0) return page;
    await this.#waitAfter(sessionId, after, waitMs, signal);
    return this.#page(sessionId, after, limit);
  }

  /** Reads the counters and the range in one transaction: the page never mixes two commits. */
  async #page(sessionId: string, after: number, limit: number): Promise<TapePage> {
    const key = this.#keys.tape(sessionId);
    const [meta, range, newest] = (await execAll(
      this.#url,
      this.#redis
        .multi()
        .hmget(this.#keys.session(sessionId), 'lastSeq', 'firstSeq', 'state')
        .xrange(key, `(${after}-0`, '+', 'COUNT', limit)
        .xrevrange(key, '+', '-', 'COUNT', 1),
    )) as [(string | null)[], Entries, Entries];
    const [last, first, state] = meta;
    if (state === null || state === undefined) {
      throw new VigilError('ERR_UNKNOWN_SESSION', `No session ${sessionId}`, { details: { sessionId } });
    }
    const lastSeq = Number(last ?? 0);
    const firstSeq = Number(first ?? 1);
    const closed = newest.length > 0 && eventOf(newest[0]!).type === 'session.closed';
    if (after > lastSeq) {
      throw new VigilError(
        'ERR_INVALID_CURSOR',
        `after (${after}) is ahead of the tape of session ${sessionId}: lastSeq is ${lastSeq}`,
        { details: { field: 'after', after, lastSeq } },
      );
    }
    if (after < firstSeq - 1) {
      return { events: [], next: firstSeq - 1, hasMore: true, lastSeq, firstSeq, reset: true, closed };
    }
    const events = range.map(eventOf);
    const next = after + events.length;
    return { events, next, hasMore: next < lastSeq, lastSeq, firstSeq, reset: false, closed };
  }

  /**
   * Blocks on the stream until an entry after `after` exists, `ms` passed or `signal` aborted. A
   * blocking command holds its connection, so each wait takes its own (closed on abort).
   */
  async #waitAfter(sessionId: string, after: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw abortError(signal);
    // A blocked XREAD answers after `ms` at the latest: only past that (and the usual bound) is Redis gone.
    const connection = this.#redis.duplicate({ lazyConnect: true, commandTimeout: ms + this.#timeoutMs });
    const onAbort = (): void => connection.disconnect();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await guarded(this.#url, async () => {
        await connection.connect();
        await connection.xread('BLOCK', ms, 'STREAMS', this.#keys.tape(sessionId), `${after}-0`);
      });
    } catch (error) {
      if (signal?.aborted) throw abortError(signal);
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      connection.disconnect();
    }
  }
}

/** The reason an aborted signal carries, as a VigilError (`ERR_ABORTED` unless it is one). */
function abortError(signal: AbortSignal): VigilError {
  return toVigilError(signal.reason, 'ERR_ABORTED');
}

function eventOf([, fields]: [string, string[]]): TapeEvent {
  const at = fields.indexOf('e');
  return JSON.parse(fields[at + 1] ?? 'null') as TapeEvent;
}
