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

/**
 * Complete lines, each ending with `\n`, none longer than the splitter's `maxLineLength` bytes, not
 * decoded yet: a view of the caller's buffer.
 */
export interface LineRun {
  readonly bytes: Buffer;
  /** Absolute byte offset of `bytes[0]`. */
  readonly offset: number;
}

/** What one chunk completes: `lines` first, then the lines of `run`. */
export interface SplitChunk {
  readonly lines: SplitLine[];
  readonly run: LineRun | undefined;
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
    const { lines, run } = this.pushChunk(chunk, chunkOffset);
    return run === undefined ? lines : [...lines, ...runLines(run)];
  }

  /**
   * Feeds `chunk` like `push`, but leaves the complete lines that lie wholly inside it undecoded:
   * `lines` are the lines completed the slow way (a pending line's end, or every line when one is
   * longer than `maxLineLength` bytes), and `run` the lines after them, a view of `chunk` that is
   * valid until the caller reuses its buffer. A matcher decodes a run once and slices only the
   * lines it needs (`line-run.ts`).
   */
  pushChunk(chunk: Uint8Array, chunkOffset: number): SplitChunk {
    assertOffset(chunkOffset, 'chunkOffset');
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const end = chunkOffset + bytes.length;
    let start = 0;
    if (chunkOffset < this.#expected) {
      if (end <= this.#expected) return { lines: [], run: undefined };
      start = this.#expected - chunkOffset;
    } else if (chunkOffset > this.#expected) {
      this.#resetPending(chunkOffset);
      this.#pendingTruncated = true;
    }

    const lines: SplitLine[] = [];
    let newline = bytes.indexOf(LF, start);
    if (newline !== -1 && (this.#pendingBytes > 0 || this.#pendingTruncated)) {
      this.#append(bytes, start, newline);
      lines.push(this.#takePending());
      start = newline + 1;
      this.#lineStart = chunkOffset + start;
      this.#committed = this.#lineStart;
      newline = bytes.indexOf(LF, start);
    }
    // The whole lines after it: one run, unless one of them is long enough to need cutting.
    const runStart = start;
    let long = false;
    while (newline !== -1) {
      long ||= newline - start > this.#maxLineLength;
      start = newline + 1;
      newline = bytes.indexOf(LF, start);
    }
    let run: LineRun | undefined;
    if (start > runStart) {
      run = { bytes: bytes.subarray(runStart, start), offset: chunkOffset + runStart };
      if (long) {
        for (const line of runLines(run, this.#maxLineLength)) lines.push(line);
        run = undefined;
      }
      this.#lineStart = chunkOffset + start;
      this.#committed = this.#lineStart;
    }
    if (start < bytes.length) this.#append(bytes, start, bytes.length);
    this.#expected = end;
    return { lines, run };
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

/**
 * Every line of `run`. Without `maxLineLength` the run holds no line longer than a splitter's
 * limit, so it is decoded a piece at a time and sliced; with it, each line is decoded and cut on
 * its own.
 */
export function runLines(run: LineRun, maxLineLength?: number): SplitLine[] {
  const lines: SplitLine[] = [];
  if (maxLineLength !== undefined) {
    const { bytes, offset } = run;
    let start = 0;
    for (let newline = bytes.indexOf(LF); newline !== -1; newline = bytes.indexOf(LF, start)) {
      lines.push(decodeLine(bytes, start, newline, offset + start, false, maxLineLength));
      start = newline + 1;
    }
    return lines;
  }
  for (const { bytes, offset } of runPieces(run)) {
    const text = bytes.toString('utf8');
    // Each byte decoded to one character: character and byte positions agree. Otherwise the byte
    // positions come from the bytes' own newlines, which pair one to one with the text's.
    const ascii = text.length === bytes.length;
    let byteStart = 0;
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      lines.push({
        text: lineText(text, start, newline),
        truncated: false,
        offset: offset + (ascii ? start : byteStart),
      });
      start = newline + 1;
      if (!ascii) byteStart = bytes.indexOf(LF, byteStart) + 1;
    }
  }
  return lines;
}

/**
 * A run decoded at once stays under this many bytes, so that its string is a young object, cheap
 * to make and to collect (a 1 MiB string costs five times as much per byte, most of it in the GC).
 */
const PIECE_BYTES = 64 * 1024;

/** `run` cut at newlines into runs of at most `PIECE_BYTES` (or of one line, when it is longer). */
export function* runPieces(run: LineRun): Generator<LineRun> {
  const { bytes, offset } = run;
  let from = 0;
  while (from < bytes.length) {
    let to = bytes.length;
    if (to - from > PIECE_BYTES) {
      to = bytes.lastIndexOf(LF, from + PIECE_BYTES - 1) + 1;
      if (to <= from) to = bytes.indexOf(LF, from + PIECE_BYTES) + 1;
    }
    yield { bytes: bytes.subarray(from, to), offset: offset + from };
    from = to;
  }
}

/** The line of a decoded run in `[start, newline)`, without a trailing `\r`. */
export function lineText(text: string, start: number, newline: number): string {
  return text.slice(start, newline > start && text.charCodeAt(newline - 1) === CR ? newline - 1 : newline);
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
