import { VigilError } from '../errors.js';

/** One complete line of process output. Plain data: it crosses threads as is. */
export interface SplitLine {
  /** The line decoded as UTF-8 (invalid bytes become U+FFFD), without `\n` or a trailing `\r`. */
  readonly text: string;
  /** True when `text` was cut to `maxLineLength`, or when the line's start was lost to a gap. */
  readonly truncated: boolean;
  /** Absolute byte offset of the line's first byte in the process's output stream. */
  readonly offset: number;
}

export interface LineSplitterOptions {
  /** Lines longer than this many characters (UTF-16 code units) are cut and flagged. */
  readonly maxLineLength: number;
  /** Absolute byte offset of the first byte this splitter expects. Default 0. */
  readonly startOffset?: number;
}

const LF = 10;
const CR = 13;

/**
 * Splits a process's raw output into lines, across any number of chunk boundaries.
 *
 * Chunks carry absolute byte offsets. A chunk that overlaps bytes already seen is trimmed; a
 * chunk that starts past the expected offset (bytes evicted from the ring buffer) drops the
 * partial line and flags the next line `truncated`. The partial line is bounded: at most
 * `4 * maxLineLength + 4` bytes are kept, enough to decode `maxLineLength` characters.
 *
 * `committedOffset` is where a fresh splitter must start to produce exactly the lines this one
 * has not produced yet: the end of the last complete line.
 */
export class LineSplitter {
  readonly #maxLineLength: number;
  readonly #maxPendingBytes: number;
  /** Absolute offset of the next byte expected. */
  #expected: number;
  /** End of the last complete line. Differs from `#lineStart` only after a gap. */
  #committed: number;
  /** Absolute offset of the pending line's first known byte. */
  #lineStart: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The pending line lost bytes: to the byte cap, or its start to a gap. */
  #pendingTruncated = false;

  constructor(options: LineSplitterOptions) {
    const { maxLineLength, startOffset = 0 } = options;
    if (!Number.isSafeInteger(maxLineLength) || maxLineLength < 1) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `maxLineLength must be a positive integer, got ${maxLineLength}`,
      );
    }
    assertOffset(startOffset, 'startOffset');
    this.#maxLineLength = maxLineLength;
    this.#maxPendingBytes = 4 * maxLineLength + 4;
    this.#expected = startOffset;
    this.#committed = startOffset;
    this.#lineStart = startOffset;
  }

  /** Absolute byte offset just after the last complete line: where a restarted splitter begins. */
  get committedOffset(): number {
    return this.#committed;
  }

  /** Absolute byte offset of the next byte this splitter expects. */
  get expectedOffset(): number {
    return this.#expected;
  }

  /** Bytes held for the pending partial line; never more than `4 * maxLineLength + 4`. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  /** Feeds `chunk`, whose first byte sits at absolute `chunkOffset`; returns the lines it completes. */
  push(chunk: Uint8Array, chunkOffset: number): SplitLine[] {
    assertOffset(chunkOffset, 'chunkOffset');
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const end = chunkOffset + bytes.length;
    let start = 0;
    if (chunkOffset < this.#expected) {
      if (end <= this.#expected) return [];
      start = this.#expected - chunkOffset;
    } else if (chunkOffset > this.#expected) {
      this.#resetPending(chunkOffset);
      this.#pendingTruncated = true;
    }

    const lines: SplitLine[] = [];
    let newline = bytes.indexOf(LF, start);
    while (newline !== -1) {
      if (this.#pendingBytes > 0 || this.#pendingTruncated) {
        this.#append(bytes, start, newline);
        lines.push(this.#takePending());
      } else {
        lines.push(decodeLine(bytes, start, newline, this.#lineStart, false, this.#maxLineLength));
      }
      start = newline + 1;
      this.#lineStart = chunkOffset + start;
      this.#committed = this.#lineStart;
      newline = bytes.indexOf(LF, start);
    }
    if (start < bytes.length) this.#append(bytes, start, bytes.length);
    this.#expected = end;
    return lines;
  }

  /** Emits the trailing partial line, if any (call at process end); the splitter stays usable. */
  flush(): SplitLine[] {
    const lines = this.#pendingBytes > 0 || this.#pendingTruncated ? [this.#takePending()] : [];
    this.#lineStart = this.#expected;
    this.#committed = this.#expected;
    return lines;
  }

  #append(bytes: Buffer, from: number, to: number): void {
    const room = this.#maxPendingBytes - this.#pendingBytes;
    const take = Math.min(room, to - from);
    if (take > 0) {
      // Copy: the caller may reuse its chunk buffer.
      this.#pending.push(Buffer.from(bytes.subarray(from, from + take)));
      this.#pendingBytes += take;
    }
    if (take < to - from) this.#pendingTruncated = true;
  }

  #takePending(): SplitLine {
    const bytes =
      this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    const line = decodeLine(
      bytes,
      0,
      this.#pendingBytes,
      this.#lineStart,
      this.#pendingTruncated,
      this.#maxLineLength,
    );
    this.#resetPending(this.#lineStart);
    return line;
  }

  #resetPending(lineStart: number): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#pendingTruncated = false;
    this.#lineStart = lineStart;
  }
}

/** Decodes `bytes[from, to)` (a line without its `\n`), stripping a trailing `\r` and truncating. */
function decodeLine(
  bytes: Buffer,
  from: number,
  to: number,
  offset: number,
  truncated: boolean,
  maxLineLength: number,
): SplitLine {
  let end = to;
  if (end > from && bytes[end - 1] === CR) end -= 1;
  // Every UTF-8 sequence (valid or not) of at most 4 bytes decodes to at most 2 code units and
  // at least 1 per 3 bytes, so this many bytes always holds the first maxLineLength characters.
  const byteCap = 4 * maxLineLength + 4;
  let cut = truncated;
  if (end - from > byteCap) {
    end = from + byteCap;
    cut = true;
  }
  let text = bytes.toString('utf8', from, end);
  if (text.length > maxLineLength) {
    const last = text.charCodeAt(maxLineLength - 1);
    // Never leave half of a surrogate pair at the end.
    text = text.slice(0, last >= 0xd800 && last <= 0xdbff ? maxLineLength - 1 : maxLineLength);
    cut = true;
  }
  return { text, truncated: cut, offset };
}

function assertOffset(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new VigilError('ERR_INVALID_INPUT', `${name} must be a non-negative integer, got ${value}`);
  }
}
