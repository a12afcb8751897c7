import { describe, expect, test } from 'vitest';
import { VigilError } from '../src/errors.js';
import { LineSplitter, type SplitLine } from '../src/watch/line-splitter.js';
import { mulberry32 as random } from './support/random.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');

/** Feeds `stream[from..]` in random chunks; returns every line, the flushed tail included. */
function feed(
  splitter: LineSplitter,
  stream: Buffer,
  from: number,
  rand: () => number,
  flush = true,
): SplitLine[] {
  const lines: SplitLine[] = [];
  let at = from;
  while (at < stream.length) {
    const size = 1 + Math.floor(rand() * (rand() < 0.2 ? 400 : 40));
    const chunk = stream.subarray(at, Math.min(stream.length, at + size));
    lines.push(...splitter.push(chunk, at));
    at += chunk.length;
  }
  if (flush) lines.push(...splitter.flush());
  return lines;
}

/** An independent, naive reference splitter over the whole stream. */
function reference(stream: Buffer, maxLineLength: number): SplitLine[] {
  const lines: SplitLine[] = [];
  let start = 0;
  while (start < stream.length) {
    const newline = stream.indexOf(10, start);
    const end = newline === -1 ? stream.length : newline;
    const raw = stream.subarray(start, end > start && stream[end - 1] === 13 ? end - 1 : end);
    let text = raw.toString('utf8');
    let truncated = false;
    if (text.length > maxLineLength) {
      const last = text.charCodeAt(maxLineLength - 1);
      text = text.slice(0, last >= 0xd800 && last <= 0xdbff ? maxLineLength - 1 : maxLineLength);
      truncated = true;
    }
    lines.push({ text, truncated, offset: start });
    start = end + 1;
  }
  return lines;
}

/** Random output: ASCII, CRLF, multibyte and astral characters, invalid bytes, long lines. */
function randomStream(rand: () => number, lines: number): Buffer {
  const pieces = ['a', 'bc', ' ', 'é', '€', '😀', '\r', '\r\n', '\n', '\n', 'ERROR'];
  const parts: Buffer[] = [];
  for (let i = 0; i < lines; i++) {
    const length = rand() < 0.05 ? 200 : Math.floor(rand() * 12);
    for (let j = 0; j < length; j++) {
      if (rand() < 0.03) parts.push(Buffer.from([0x80 + Math.floor(rand() * 0x80)]));
      else parts.push(bytes(pieces[Math.floor(rand() * (pieces.length - 2))]!));
    }
    parts.push(bytes(rand() < 0.3 ? '\r\n' : '\n'));
  }
  if (rand() < 0.5) parts.push(bytes('tail without newline'));
  return Buffer.concat(parts);
}

describe('LineSplitter', () => {
  test('splits on LF, strips a trailing CR and reports absolute line offsets', () => {
    const splitter = new LineSplitter({ maxLineLength: 100, startOffset: 1000 });
    expect(splitter.push(bytes('one\r\ntwo\n\nthree'), 1000)).toEqual([
      { text: 'one', truncated: false, offset: 1000 },
      { text: 'two', truncated: false, offset: 1005 },
      { text: '', truncated: false, offset: 1009 },
    ]);
    expect(splitter.committedOffset).toBe(1010);
    expect(splitter.push(bytes(' more\n'), 1015)).toEqual([
      { text: 'three more', truncated: false, offset: 1010 },
    ]);
    expect(splitter.committedOffset).toBe(1021);
  });

  test('reassembles a line split across many chunks, including a split multibyte character', () => {
    const splitter = new LineSplitter({ maxLineLength: 100 });
    const stream = bytes('xx FATAL: caf€ 😀\r\n');
    const lines: SplitLine[] = [];
    for (let i = 0; i < stream.length; i++) lines.push(...splitter.push(stream.subarray(i, i + 1), i));
    expect(lines).toEqual([{ text: 'xx FATAL: caf€ 😀', truncated: false, offset: 0 }]);
  });

  test('accepts a plain Uint8Array and copies bytes the caller may reuse', () => {
    const splitter = new LineSplitter({ maxLineLength: 100 });
    const chunk = new Uint8Array(bytes('abc'));
    splitter.push(chunk, 0);
    chunk.fill(0x7a);
    expect(splitter.push(new Uint8Array(bytes('d\n')), 3)).toEqual([
      { text: 'abcd', truncated: false, offset: 0 },
    ]);
  });

  test('decodes invalid UTF-8 and binary data as U+FFFD without throwing', () => {
    const splitter = new LineSplitter({ maxLineLength: 100 });
    const lines = splitter.push(Buffer.from([0x61, 0xff, 0xc3, 0x0a, 0xe2, 0x82, 0x0a]), 0);
    expect(lines.map((line) => line.text)).toEqual(['a\ufffd\ufffd', '\ufffd']);
    const rand = random(7);
    const binary = Buffer.from(Array.from({ length: 10_000 }, () => Math.floor(rand() * 256)));
    expect(() => [...splitter.push(binary, 7), ...splitter.flush()]).not.toThrow();
  });

  test('truncates lines longer than maxLineLength and flags them', () => {
    const splitter = new LineSplitter({ maxLineLength: 5 });
    expect(splitter.push(bytes('12345\n123456\n€€€€€€\n'), 0)).toEqual([
      { text: '12345', truncated: false, offset: 0 },
      { text: '12345', truncated: true, offset: 6 },
      { text: '€€€€€', truncated: true, offset: 13 },
    ]);
  });

  test('never ends a truncated line with half of a surrogate pair', () => {
    const splitter = new LineSplitter({ maxLineLength: 3 });
    expect(splitter.push(bytes('ab😀cd\n'), 0)).toEqual([{ text: 'ab', truncated: true, offset: 0 }]);
  });

  test('keeps a bounded buffer for an endless line and emits it truncated', () => {
    const splitter = new LineSplitter({ maxLineLength: 16 });
    const chunk = Buffer.alloc(1000, 0x78);
    for (let i = 0; i < 1000; i++) {
      expect(splitter.push(chunk, i * 1000)).toEqual([]);
      expect(splitter.bufferedBytes).toBeLessThanOrEqual(4 * 16 + 4);
    }
    expect(splitter.committedOffset).toBe(0);
    expect(splitter.push(bytes('\nnext\n'), 1_000_000)).toEqual([
      { text: 'x'.repeat(16), truncated: true, offset: 0 },
      { text: 'next', truncated: false, offset: 1_000_001 },
    ]);
  });

  test('flush emits the trailing partial line once and nothing when there is none', () => {
    const splitter = new LineSplitter({ maxLineLength: 100 });
    splitter.push(bytes('done\nexit code 3'), 0);
    expect(splitter.flush()).toEqual([{ text: 'exit code 3', truncated: false, offset: 5 }]);
    expect(splitter.committedOffset).toBe(16);
    expect(splitter.flush()).toEqual([]);
  });

  test('skips bytes of a chunk that overlaps what it has already seen', () => {
    const splitter = new LineSplitter({ maxLineLength: 100 });
    expect(splitter.push(bytes('alpha\nbe'), 0)).toHaveLength(1);
    expect(splitter.push(bytes('alpha\nbe'), 0)).toEqual([]);
    expect(splitter.push(bytes('beta\ngamma\n'), 6)).toEqual([
      { text: 'beta', truncated: false, offset: 6 },
      { text: 'gamma', truncated: false, offset: 11 },
    ]);
  });

  test('drops the partial line at a gap and flags the first line after it truncated', () => {
    const splitter = new LineSplitter({ maxLineLength: 100 });
    expect(splitter.push(bytes('first\nlost par'), 0)).toHaveLength(1);
    expect(splitter.push(bytes('ial line\nnext\n'), 50)).toEqual([
      { text: 'ial line', truncated: true, offset: 50 },
      { text: 'next', truncated: false, offset: 59 },
    ]);
    expect(splitter.committedOffset).toBe(64);
  });

  test('keeps committedOffset at the last complete line while a gap has no newline yet', () => {
    const splitter = new LineSplitter({ maxLineLength: 100 });
    splitter.push(bytes('first\n'), 0);
    splitter.push(bytes('midline'), 40);
    expect(splitter.committedOffset).toBe(6);
    expect(splitter.flush()).toEqual([{ text: 'midline', truncated: true, offset: 40 }]);
  });

  test('rejects invalid options and offsets', () => {
    expect(() => new LineSplitter({ maxLineLength: 0 })).toThrow(VigilError);
    expect(() => new LineSplitter({ maxLineLength: 10, startOffset: -1 })).toThrow(/startOffset/);
    expect(() => new LineSplitter({ maxLineLength: 10 }).push(bytes('a'), 1.5)).toThrow(/chunkOffset/);
  });

  test('gives the same lines for any chunking as a naive one-shot split', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = random(seed);
      const stream = randomStream(rand, 200);
      const maxLineLength = 1 + Math.floor(rand() * 60);
      const expected = reference(stream, maxLineLength);
      const oneShot = new LineSplitter({ maxLineLength });
      expect([...oneShot.push(stream, 0), ...oneShot.flush()]).toEqual(expected);
      expect(feed(new LineSplitter({ maxLineLength }), stream, 0, rand)).toEqual(expected);
    }
  });

  test('a splitter restarted from committedOffset loses and duplicates no line', () => {
    for (let seed = 100; seed < 160; seed++) {
      const rand = random(seed);
      const stream = randomStream(rand, 150);
      const maxLineLength = 1 + Math.floor(rand() * 60);
      const expected = reference(stream, maxLineLength);
      const stopAt = Math.floor(rand() * stream.length);
      const first = new LineSplitter({ maxLineLength });
      const before = feed(first, stream.subarray(0, stopAt), 0, rand, false);
      const resumeAt = first.committedOffset;
      // The restarted poller may re-read bytes before the cursor: they must be skipped.
      const rereadFrom = Math.max(0, resumeAt - Math.floor(rand() * 30));
      const second = new LineSplitter({ maxLineLength, startOffset: resumeAt });
      const after = feed(second, stream, rereadFrom, rand);
      expect([...before, ...after]).toEqual(expected);
    }
  });

  test('splits 32 MB of 100-byte lines fed in 64 KiB chunks that cut lines anywhere', () => {
    const line = bytes(`${'x'.repeat(91)} INFO ok\n`);
    const lineCount = 10_000;
    const stream = Buffer.concat(Array.from({ length: lineCount }, () => line));
    const splitter = new LineSplitter({ maxLineLength: 4096 });
    let count = 0;
    let offset = 0;
    for (let round = 0; round < 32; round++) {
      for (let at = 0; at < stream.length; at += 65_536) {
        const chunk = stream.subarray(at, at + 65_536);
        const lines = splitter.push(chunk, offset);
        count += lines.length;
        offset += chunk.length;
      }
    }
    expect(line.length).toBe(100);
    expect(count).toBe(lineCount * 32);
    expect(splitter.committedOffset).toBe(offset);
  });
});
