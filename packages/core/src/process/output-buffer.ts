import { VigilError } from '../errors.js';

const NEWLINE = 0x0a;
const INITIAL_BYTES = 64 * 1024;

/** One page of `OutputBuffer.read`. */
export interface OutputRead {
  /** Absolute offset of `bytes[0]`: `from`, clamped to the retained window. */
  readonly offset: number;
  /** A copy of the bytes; later appends never change it. */
  readonly bytes: Buffer;
  /** True when `from` pointed before the retained window: the bytes in between were evicted. */
  readonly gap: boolean;
}

/** Options of `OutputBuffer.lines`. */
export interface OutputLinesOptions {
  /** Index of the first line to return, 0-based from the first retained whole line. Default 0. */
  readonly offset?: number;
  /** Most lines to return. Default: every line from `offset` on. */
  readonly limit?: number;
}

/** One page of `OutputBuffer.lines`. */
export interface OutputLines {
  /** The lines, without their `\n` (and without a `\r` before it); the last may be unfinished. */
  readonly lines: string[];
  /** Index of `lines[0]`: the requested offset, clamped to `totalLines`. */
  readonly offset: number;
  /** Lines retained, counting an unfinished last line. */
  readonly totalLines: number;
  /** True when lines follow this page. */
  readonly hasMore: boolean;
  /** True when output was evicted before the first retained line. */
  readonly truncatedBefore: boolean;
}

/**
 * The bounded output of one process: a byte ring of fixed capacity addressed by absolute offsets
 * (bytes ever written), so readers keep cursors across evictions. Memory grows by doubling up to the
 * capacity, then the ring wraps. Bytes are stored raw; decoding replaces invalid UTF-8 with U+FFFD.
 */
export class OutputBuffer {
  /** Retained bytes live at index `offset % capacity` (also while growing, since `end <= capacity`). */
  #ring: Buffer;
  readonly #capacity: number;
  #end = 0;
  /** Whether the byte just before `start` (evicted) was a newline, so the first retained line is whole. */
  #startsLine = true;

  /** @param capacityBytes bytes retained (a positive integer); older output is evicted. */
  constructor(capacityBytes: number) {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 1) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `capacityBytes must be a positive integer, got ${capacityBytes}`,
      );
    }
    this.#capacity = capacityBytes;
    this.#ring = Buffer.allocUnsafe(Math.min(capacityBytes, INITIAL_BYTES));
  }

  /** Oldest retained absolute offset. */
  get start(): number {
    return Math.max(0, this.#end - this.#capacity);
  }

  /** Total bytes ever written: the absolute offset the next append starts at. */
  get end(): number {
    return this.#end;
  }

  /** Appends a copy of `chunk`, evicting the oldest bytes past capacity. Returns the offset of `chunk[0]`. */
  append(chunk: Uint8Array): number {
    const offset = this.#end;
    const length = chunk.length;
    if (length === 0) return offset;
    const newEnd = offset + length;
    if (newEnd > this.#ring.length && this.#ring.length < this.#capacity) this.#grow(newEnd);
    const newStart = Math.max(0, newEnd - this.#capacity);
    if (newStart > this.start) {
      // Read before the write below overwrites it: the byte preceding the new window.
      const before = newStart - 1;
      this.#startsLine = (before >= offset ? chunk[before - offset] : this.#byteAt(before)) === NEWLINE;
    }
    const kept = Math.min(length, this.#capacity);
    this.#copyIn(chunk.subarray(length - kept), newEnd - kept);
    this.#end = newEnd;
    return offset;
  }

  /** Bytes from absolute offset `from` (clamped to the retained window), at most `maxBytes`. */
  read(from: number, maxBytes = Number.POSITIVE_INFINITY): OutputRead {
    if (!Number.isSafeInteger(from) || from < 0) {
      throw new VigilError('ERR_INVALID_INPUT', `from must be a non-negative integer, got ${from}`);
    }
    if (Number.isNaN(maxBytes) || maxBytes < 0) {
      throw new VigilError('ERR_INVALID_INPUT', `maxBytes must be non-negative, got ${maxBytes}`);
    }
    const start = this.start;
    const offset = Math.min(Math.max(from, start), this.#end);
    const stop = Math.min(this.#end, offset + Math.floor(maxBytes));
    return { offset, bytes: this.#copyOut(offset, stop), gap: from < start };
  }

  /** The last `chars` characters (code points) of retained output, decoded as UTF-8. */
  tail(chars: number): string {
    if (!Number.isSafeInteger(chars) || chars < 0) {
      throw new VigilError('ERR_INVALID_INPUT', `chars must be a non-negative integer, got ${chars}`);
    }
    if (chars === 0) return '';
    // A code point takes at most 4 bytes and invalid bytes decode to at most one U+FFFD each; the 3
    // spare bytes cover the continuation bytes skipped so the cut does not land inside a character.
    let from = Math.max(this.start, this.#end - chars * 4 - 3);
    for (
      let skipped = 0;
      skipped < 3 && from > 0 && from < this.#end && isContinuation(this.#byteAt(from));
      skipped++
    ) {
      from++;
    }
    const text = this.#copyOut(from, this.#end).toString('utf8');
    let cut = text.length;
    for (let count = 0; count < chars && cut > 0; count++) {
      cut -=
        cut >= 2 && isLowSurrogate(text.charCodeAt(cut - 1)) && isHighSurrogate(text.charCodeAt(cut - 2))
          ? 2
          : 1;
    }
    return text.slice(cut);
  }

  /**
   * A page of the retained output as lines. After an eviction the first retained line is dropped
   * when it is partial, and `truncatedBefore` is true. Scans the retained bytes: not for hot paths.
   */
  lines(options: OutputLinesOptions = {}): OutputLines {
    const { offset: wanted = 0, limit = Number.POSITIVE_INFINITY } = options;
    if (!Number.isSafeInteger(wanted) || wanted < 0) {
      throw new VigilError('ERR_INVALID_INPUT', `offset must be a non-negative integer, got ${wanted}`);
    }
    if (limit !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new VigilError('ERR_INVALID_INPUT', `limit must be a non-negative integer, got ${limit}`);
    }
    const truncatedBefore = this.start > 0;
    const data = this.#copyOut(this.start, this.#end);
    let position = 0;
    if (!this.#startsLine) {
      const newline = data.indexOf(NEWLINE);
      position = newline === -1 ? data.length : newline + 1;
    }
    const lines: string[] = [];
    let index = 0;
    while (position < data.length) {
      const newline = data.indexOf(NEWLINE, position);
      const stop = newline === -1 ? data.length : newline;
      if (index >= wanted && lines.length < limit) {
        const trimmed = newline !== -1 && stop > position && data[stop - 1] === 0x0d ? stop - 1 : stop;
        lines.push(data.toString('utf8', position, trimmed));
      }
      index++;
      position = stop + 1;
    }
    const offset = Math.min(wanted, index);
    return {
      lines,
      offset,
      totalLines: index,
      hasMore: offset + lines.length < index,
      truncatedBefore,
    };
  }

  #grow(needed: number): void {
    let size = this.#ring.length;
    while (size < needed) size *= 2;
    const ring = Buffer.allocUnsafe(Math.min(size, this.#capacity));
    this.#ring.copy(ring, 0, 0, this.#end);
    this.#ring = ring;
  }

  #byteAt(offset: number): number {
    return this.#ring[offset % this.#capacity] ?? 0;
  }

  #copyIn(bytes: Uint8Array, offset: number): void {
    const index = offset % this.#capacity;
    const first = Math.min(bytes.length, this.#capacity - index);
    this.#ring.set(bytes.subarray(0, first), index);
    if (first < bytes.length) this.#ring.set(bytes.subarray(first), 0);
  }

  #copyOut(from: number, to: number): Buffer {
    const out = Buffer.allocUnsafe(to - from);
    if (out.length === 0) return out;
    const index = from % this.#capacity;
    const first = Math.min(out.length, this.#capacity - index);
    this.#ring.copy(out, 0, index, index + first);
    if (first < out.length) this.#ring.copy(out, first, 0, out.length - first);
    return out;
  }
}

function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
