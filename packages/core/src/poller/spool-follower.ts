import { closeSync, type FSWatcher, openSync, read, readSync, watch } from 'node:fs';
import { WatchLimiter } from '../watch/limiter.js';
import { LineSplitter } from '../watch/line-splitter.js';
import { CompiledPatterns } from '../watch/patterns.js';
import type { PollerLimits, WatchedProcess } from './protocol.js';

/** How a poller reads spools: synchronously in its own thread, without blocking the loop on the main one. */
export type ReadMode = 'sync' | 'async';

/** A stretch of a spool just read: `length` bytes at absolute `offset`, in the caller's buffer. */
export interface ReadChunk {
  readonly offset: number;
  readonly length: number;
}

/**
 * One process as its poller follows it: the spool file, opened in the poller's thread and watched
 * (inotify) for appends, with its line assembly, patterns, rate limiter and heartbeat clock. Reads
 * continue from the committed cursor of the registry, skip a stretch the registry dropped to hold
 * the spool's cap, and stop at the process's end once it is known.
 */
export class SpoolFollower {
  readonly processId: string;
  readonly slot: number;
  readonly splitter: LineSplitter;
  readonly patterns: CompiledPatterns;
  readonly limiter: WatchLimiter | undefined;
  readonly heartbeatMs: number;
  heartbeatCursor: number;
  nextHeartbeatAt: number;
  /** The next byte to read. */
  received: number;
  watching: boolean;
  /** New output may be there (an append was seen, or reading stopped before the end). */
  dirty = true;
  /** The process ended: its output ends here. */
  end: number | undefined;
  /** `drained` went to the registry: nothing more to do for this process. */
  drainReported = false;
  readonly #drops: BigInt64Array;
  /** Undefined when the spool could not be opened (its directory was removed): nothing is read. */
  readonly #fd: number | undefined;
  readonly #watcher: FSWatcher | undefined;

  constructor(process: WatchedProcess, limits: PollerLimits, now: number, changed: () => void) {
    this.processId = process.processId;
    this.slot = process.slot;
    this.splitter = new LineSplitter({ maxLineLength: limits.maxLineLength, startOffset: process.cursor });
    this.patterns = new CompiledPatterns(process.patterns);
    const watched = process.patterns.some((pattern) => pattern !== null);
    this.limiter = watched ? new WatchLimiter(limits, process.limiter) : undefined;
    this.watching = watched && this.limiter?.disabled === null;
    this.heartbeatMs = process.heartbeatMs;
    this.heartbeatCursor = process.heartbeatCursor;
    // The schedule continues from the last heartbeat: one missed while no poller ran is due at once.
    this.nextHeartbeatAt =
      process.heartbeatMs > 0 ? (process.heartbeatAt ?? now) + process.heartbeatMs : Number.POSITIVE_INFINITY;
    this.received = process.cursor;
    this.end = process.end;
    this.#drops = new BigInt64Array(process.drops);
    this.#fd = openOrUndefined(process.spool);
    // Watched before the first read, so no append between the two goes unnoticed.
    this.#watcher =
      process.end === undefined && this.#fd !== undefined
        ? watch(process.spool, { persistent: false }, () => {
            this.dirty = true;
            changed();
          })
        : undefined;
    this.#watcher?.on('error', () => {});
  }

  /** Every byte up to the end has been read (or none can be: the spool is gone). */
  get drained(): boolean {
    return this.end !== undefined && (this.received >= this.end || this.#fd === undefined);
  }

  /** The process ended at `at`: read to there, and no further. */
  endAt(at: number): void {
    this.end = at;
    this.dirty = true;
    this.#watcher?.close();
  }

  /**
   * Reads the next stretch into `buffer` (at most `max` bytes), or returns undefined at the end of
   * what was written. A dropped stretch is skipped: the chunk then starts past `received`, which the
   * line splitter treats as a gap.
   */
  async read(buffer: Buffer, max: number, mode: ReadMode): Promise<ReadChunk | undefined> {
    const position = this.#afterDrop(this.received);
    const [dropFrom, dropTo] = this.#dropped();
    let length = Math.min(max, buffer.length, (this.end ?? Number.POSITIVE_INFINITY) - position);
    // The head is kept: read it up to where a drop may begin, then jump.
    if (dropTo > 0 && position < dropFrom) length = Math.min(length, dropFrom - position);
    if (length <= 0 || this.#fd === undefined) {
      this.received = Math.max(this.received, position);
      return undefined;
    }
    const read =
      mode === 'sync'
        ? readSync(this.#fd, buffer, 0, length, position)
        : await readAsync(this.#fd, buffer, length, position);
    // A drop decided while we read may have zeroed part of it: keep only what lies before it.
    const [laterFrom, laterTo] = this.#dropped();
    const kept =
      laterTo > 0 && position + read > laterFrom && position < laterTo
        ? Math.max(0, laterFrom - position)
        : read;
    if (kept === 0 && read > 0 && laterTo > position) {
      this.received = laterTo;
      return this.read(buffer, max, mode);
    }
    if (read === 0) {
      this.received = position;
      return undefined;
    }
    this.received = position + kept;
    return { offset: position, length: kept };
  }

  /** The last `chars` characters (at most) of the output in `[from, to)`, for a heartbeat. */
  text(from: number, to: number, chars: number): string {
    const start = this.#afterDrop(Math.max(from, to - chars * 4 - 3));
    if (to <= start || this.#fd === undefined) return '';
    const bytes = Buffer.allocUnsafe(to - start);
    const read = readSync(this.#fd, bytes, 0, bytes.length, start);
    const text = bytes.toString('utf8', 0, read);
    return text.length > chars ? text.slice(-chars) : text;
  }

  close(): void {
    this.#watcher?.close();
    if (this.#fd !== undefined) closeSync(this.#fd);
  }

  #dropped(): [number, number] {
    return [Number(Atomics.load(this.#drops, 0)), Number(Atomics.load(this.#drops, 1))];
  }

  #afterDrop(position: number): number {
    const [dropFrom, dropTo] = this.#dropped();
    return dropTo > 0 && position >= dropFrom && position < dropTo ? dropTo : position;
  }
}

/** The spool opened for reading, or undefined when it is gone: its process is then followed blind. */
function openOrUndefined(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch {
    return undefined;
  }
}

function readAsync(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead)));
  });
}
