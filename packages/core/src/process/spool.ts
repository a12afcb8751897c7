import { execFile } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { VigilError } from '../errors.js';
import { lastChars } from '../secrets/redactor.js';
import { exitStatusPath } from './exit-status.js';

/** The file system's block: holes are punched in whole blocks. */
const BLOCK = 4096;
/** How much a spool may grow past its cap before the next punch (a punch runs a small program). */
const SLACK_FRACTION = 16;
/** Bytes read per step when a spool is scanned for lines. */
const SCAN_BYTES = 1 << 20;
/** A line longer than this is cut in a `log` page (its bytes stay in the spool). */
const LOG_LINE_BYTES = 64 * 1024;
/** A line this long without its end is offered by `linesAfter` before it ends. */
const LIVE_LINE_BYTES = 64 * 1024;
const LF = 10;

/** One page of `Spool.lines`. */
export interface SpoolLines {
  /** The lines, without their `\n` (and without a `\r` before it); the last may be unfinished. */
  readonly lines: string[];
  /** Index of `lines[0]`, 0-based over the retained lines. */
  readonly offset: number;
  /** Lines retained, counting an unfinished last line and the marker of a dropped stretch. */
  readonly totalLines: number;
  /** True when lines follow this page. */
  readonly hasMore: boolean;
  /** Bytes dropped from the middle of the output (`output.maxBytes`); a marker line stands in their place. */
  readonly droppedBytes: number;
}

/** The drop marker a page of lines shows where bytes were dropped. */
export function dropMarker(bytes: number): string {
  return `[vigil: ${bytes} bytes of output dropped here (output.maxBytes)]`;
}

/**
 * The output of one process: a file its child writes directly (stdout and stderr, `O_APPEND`), read
 * here only to answer `log`, `poll` and a completion's tail; the session's poller reads it in its
 * own thread. Bounded by `maxBytes`: the first eighth is kept, and a rolling tail; when the file
 * grows past the cap the bytes between are dropped (their blocks punched out, so offsets stay
 * absolute) and counted. The poller learns the dropped range through `drops`, shared memory that
 * is written before each punch.
 */
export class Spool {
  readonly path: string;
  /** Where the exit status of its process is written when it ends (see `exit-status.ts`). */
  readonly statusPath: string;
  readonly headBytes: number;
  readonly tailBytes: number;
  /** Shared with the poller: `[dropFrom, dropTo)` is gone (both 0 until the first drop). */
  readonly drops = new SharedArrayBuffer(16);
  readonly #cells = new BigInt64Array(this.drops);
  #fd: number | undefined;
  #dropTo = 0;
  #punching = false;
  /** The end of the dropped range handed to a punch so far. */
  #punchedTo = 0;

  /**
   * Creates the file (empty), or with `existing` opens the spool a previous run left (creating it
   * if it is gone); `ERR_SPOOL` names the path when that fails.
   */
  constructor(path: string, maxBytes: number, options: { readonly existing?: boolean } = {}) {
    this.path = path;
    this.statusPath = exitStatusPath(path);
    this.headBytes = Math.floor(maxBytes / 8 / BLOCK) * BLOCK;
    this.tailBytes = maxBytes - this.headBytes;
    try {
      this.#fd = openSync(path, options.existing === true ? 'a+' : 'wx+', 0o600);
    } catch (cause) {
      const what = options.existing === true ? 'open' : 'create';
      throw new VigilError(
        'ERR_SPOOL',
        `cannot ${what} the output spool ${path}: ${(cause as Error).message}`,
        {
          cause,
          details: { path },
        },
      );
    }
  }

  /** A descriptor the child writes to (`O_APPEND`); the caller closes it once the child has it. */
  openForChild(): number {
    return openSync(this.path, 'a');
  }

  /** Bytes the process has written, dropped ones included. */
  size(): number {
    return this.#fd === undefined ? 0 : fstatSync(this.#fd).size;
  }

  /** Bytes dropped from the middle so far. */
  get droppedBytes(): number {
    return Math.max(0, this.#dropTo - this.headBytes);
  }

  /** Where the retained tail begins: everything from here to the end is kept. */
  get tailFrom(): number {
    return Math.max(this.#dropTo, this.headBytes);
  }

  /** The retained bytes in `[from, to)`, dropped ones left out. */
  read(from: number, to: number): Buffer {
    const start = this.#dropTo > 0 && from >= this.headBytes && from < this.#dropTo ? this.#dropTo : from;
    if (this.#fd === undefined || to <= start) return Buffer.alloc(0);
    const bytes = Buffer.allocUnsafe(to - start);
    const read = readSync(this.#fd, bytes, 0, bytes.length, start);
    return bytes.subarray(0, read);
  }

  /** The last `chars` characters (code points) of the output, decoded as UTF-8. */
  tail(chars: number): string {
    if (chars <= 0) return '';
    const end = this.size();
    // A code point takes at most 4 bytes; the 3 spare bytes let the cut skip continuation bytes.
    let from = Math.max(this.#dropTo > 0 ? this.tailFrom : 0, end - chars * 4 - 3);
    let bytes = this.read(from, end);
    let skipped = 0;
    while (skipped < 3 && from > 0 && skipped < bytes.length && ((bytes[skipped] ?? 0) & 0xc0) === 0x80)
      skipped++;
    from += skipped;
    bytes = bytes.subarray(skipped);
    return lastChars(bytes.toString('utf8'), chars);
  }

  /**
   * The complete lines written after `offset` (a line start), at most the last `maxBytes` of them,
   * and where they end; undefined when no line was completed since. A line longer than
   * `LIVE_LINE_BYTES` that has not ended yet counts as complete.
   */
  linesAfter(offset: number, maxBytes: number): { readonly text: string; readonly end: number } | undefined {
    const size = this.size();
    const from = Math.max(offset, size - maxBytes);
    const bytes = this.read(from, size);
    const lineEnd = bytes.lastIndexOf(LF) + 1;
    const end = lineEnd > 0 ? from + lineEnd : size - offset > LIVE_LINE_BYTES ? size : offset;
    if (end <= offset) return undefined;
    // Started inside a line (more was written than `maxBytes`): from the next whole line.
    const start = from > offset ? bytes.indexOf(LF) + 1 : 0;
    return { text: bytes.toString('utf8', start, end - from), end };
  }

  /**
   * A page of the retained output as lines, read from the file (never from memory). Without
   * `offset`, the last `limit` lines. Reads the whole retained spool, in steps, without blocking.
   */
  async lines(options: { readonly offset?: number; readonly limit: number }): Promise<SpoolLines> {
    const { limit } = options;
    const wanted = options.offset;
    const droppedBytes = this.droppedBytes;
    const kept: string[] = [];
    let index = 0;
    const take = (line: string): void => {
      if (wanted === undefined) {
        kept.push(line);
        if (kept.length > limit) kept.shift();
      } else if (index >= wanted && kept.length < limit) {
        kept.push(line);
      }
      index++;
    };
    const end = this.size();
    const ranges: [number, number][] =
      droppedBytes > 0
        ? [
            [0, this.headBytes],
            [this.tailFrom, end],
          ]
        : [[0, end]];
    const handle = await open(this.path, 'r');
    try {
      for (const [position, [from, to]] of ranges.entries()) {
        if (position > 0) take(dropMarker(droppedBytes));
        await scanLines(handle, from, to, take);
      }
    } finally {
      await handle.close();
    }
    const offset = wanted === undefined ? Math.max(0, index - kept.length) : Math.min(wanted, index);
    return { lines: kept, offset, totalLines: index, hasMore: offset + kept.length < index, droppedBytes };
  }

  /**
   * Holds the cap: once the file has grown past `maxBytes` (and a slack), drops the bytes between
   * the head and the rolling tail. The poller is told first, then the blocks are punched out by
   * `fallocate`; `onError` hears when that fails (the bytes are then still skipped, only not freed).
   * The drop takes effect at once, also while an earlier punch runs: that one's end punches the rest.
   */
  enforce(onError: (error: VigilError) => void): void {
    if (this.#fd === undefined) return;
    const size = this.size();
    const keepFrom = Math.floor((size - this.tailBytes) / BLOCK) * BLOCK;
    const from = this.tailFrom;
    if (keepFrom - from < (this.headBytes + this.tailBytes) / SLACK_FRACTION) return;
    Atomics.store(this.#cells, 0, BigInt(this.headBytes));
    Atomics.store(this.#cells, 1, BigInt(keepFrom));
    this.#dropTo = keepFrom;
    this.#punch(onError);
  }

  /** Frees the blocks of the dropped range not punched yet, one `fallocate` at a time. */
  #punch(onError: (error: VigilError) => void): void {
    const from = Math.max(this.#punchedTo, this.headBytes);
    if (this.#punching || this.#fd === undefined || this.#dropTo <= from) return;
    this.#punching = true;
    this.#punchedTo = this.#dropTo;
    execFile(
      'fallocate',
      ['--punch-hole', '--offset', String(from), '--length', String(this.#dropTo - from), this.path],
      (error) => {
        this.#punching = false;
        if (error !== null && this.#fd !== undefined) {
          onError(
            new VigilError('ERR_SPOOL', `cannot free dropped output of ${this.path}: ${error.message}`, {
              cause: error,
            }),
          );
        }
        this.#punch(onError);
      },
    );
  }

  /** Closes the file and deletes it, and its exit status. Idempotent. */
  delete(): void {
    if (this.#fd === undefined) return;
    this.close();
    for (const path of [this.path, this.statusPath]) {
      try {
        unlinkSync(path);
      } catch {
        // Already gone with its directory, or never written.
      }
    }
  }

  /** Closes the file and keeps it (its process runs on, for a later vigil to adopt). Idempotent. */
  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** Calls `take` with every line of `[from, to)` of the file; an unfinished last line counts. */
async function scanLines(
  handle: import('node:fs/promises').FileHandle,
  from: number,
  to: number,
  take: (line: string) => void,
): Promise<void> {
  let pending: Buffer[] = [];
  let position = from;
  const buffer = Buffer.allocUnsafe(SCAN_BYTES);
  while (position < to) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(SCAN_BYTES, to - position), position);
    if (bytesRead === 0) break;
    const chunk = buffer.subarray(0, bytesRead);
    position += bytesRead;
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      const line =
        pending.length > 0
          ? Buffer.concat([...pending, chunk.subarray(start, newline)])
          : chunk.subarray(start, newline);
      pending = [];
      const end = line.length > 0 && line[line.length - 1] === 13 ? line.length - 1 : line.length;
      take(line.toString('utf8', 0, end));
      start = newline + 1;
    }
    // Megabytes without a newline cost no more memory than a cut line.
    const held = pending.reduce((sum, part) => sum + part.length, 0);
    if (start < chunk.length && held < LOG_LINE_BYTES) {
      pending.push(Buffer.from(chunk.subarray(start, start + LOG_LINE_BYTES - held)));
    }
  }
  if (pending.length > 0) take(Buffer.concat(pending).toString('utf8'));
}
