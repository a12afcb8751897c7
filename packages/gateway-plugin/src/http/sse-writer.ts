import { once } from 'node:events';
import type { ServerResponse } from 'node:http';

/** Why a stream dropped its client: blocked longer than `stallTimeoutMs`, or over `maxBufferedBytes`. */
export type DropReason = 'stalled' | 'buffered';

/** Bounds on what one stream may hold for a client that does not read. */
export interface WriterLimits {
  /** Bytes the response may hold unsent after a write; more drops the client. */
  readonly maxBufferedBytes: number;
  /**
   * How long the response may stay blocked (a write refused, no `drain` since) before the client is
   * dropped; also how long a dropped client may then take nothing before its connection is
   * destroyed.
   */
  readonly stallTimeoutMs: number;
}

/**
 * The write side of one SSE response, honouring backpressure: callers write only while `blocked` is
 * false and wait for `drained()` otherwise, so at most one event sits above the socket's high-water
 * mark. A client that stays blocked too long or lets too much pile up is reported once to
 * `onTooSlow`, which sends the final event and ends the stream.
 */
export class SseWriter {
  readonly #res: ServerResponse;
  readonly #limits: WriterLimits;
  readonly #onTooSlow: (reason: DropReason) => void;
  #stallTimer: NodeJS.Timeout | undefined;
  #tooSlow = false;

  constructor(res: ServerResponse, limits: WriterLimits, onTooSlow: (reason: DropReason) => void) {
    this.#res = res;
    this.#limits = limits;
    this.#onTooSlow = onTooSlow;
    res.on('drain', this.#onDrain);
    res.once('close', () => this.release());
  }

  /** The client has not taken what was written yet (or is gone): write nothing, wait for `drained()`. */
  get blocked(): boolean {
    return this.#res.destroyed || this.#res.writableEnded || this.#res.writableNeedDrain;
  }

  /** Bytes written and not yet taken by the kernel. */
  get bufferedBytes(): number {
    return this.#res.destroyed ? 0 : this.#res.writableLength;
  }

  /** Writes `text`; nothing once the response ended. Returns false when the writer is now blocked. */
  write(text: string): boolean {
    if (this.#res.destroyed || this.#res.writableEnded) return false;
    this.#res.write(text);
    if (this.#res.writableLength > this.#limits.maxBufferedBytes) this.#drop('buffered');
    else if (this.#res.writableNeedDrain && this.#stallTimer === undefined) {
      this.#stallTimer = setTimeout(() => this.#drop('stalled'), this.#limits.stallTimeoutMs);
    }
    return !this.blocked;
  }

  /** Resolves on the next `drain` (the client took what was written); rejects when `signal` aborts. */
  async drained(signal: AbortSignal): Promise<void> {
    await once(this.#res, 'drain', { signal });
  }

  /**
   * Ends the response after `last` (written even when blocked). A client that then takes nothing
   * for `stallTimeoutMs` (the unsent bytes do not shrink) is disconnected.
   */
  end(last?: string): void {
    this.#clearStall();
    const res = this.#res;
    if (res.destroyed || res.writableEnded) return;
    if (last !== undefined) res.write(last);
    res.end();
    let unsent = res.writableLength;
    const check = (): void => {
      if (res.destroyed || res.writableFinished) return;
      if (res.writableLength >= unsent) res.destroy();
      else {
        unsent = res.writableLength;
        timer = setTimeout(check, this.#limits.stallTimeoutMs);
      }
    };
    let timer = setTimeout(check, this.#limits.stallTimeoutMs);
    res.once('close', () => clearTimeout(timer));
  }

  /** Stops watching the response (it closed). Idempotent. */
  release(): void {
    this.#clearStall();
    this.#res.off('drain', this.#onDrain);
  }

  readonly #onDrain = (): void => this.#clearStall();

  #drop(reason: DropReason): void {
    this.#clearStall();
    if (this.#tooSlow) return;
    this.#tooSlow = true;
    this.#onTooSlow(reason);
  }

  #clearStall(): void {
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }
}
