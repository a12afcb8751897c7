import { describe, expect, it } from 'vitest';
import { VigilError } from '../src/errors.js';
import { OutputBuffer } from '../src/process/output-buffer.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

/** A deterministic byte stream, so a failing case can be replayed. */
function* chunks(seed: number, count: number, maxLength: number): Generator<Buffer> {
  let state = seed;
  const next = (): number => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state;
  };
  for (let i = 0; i < count; i++) {
    const chunk = Buffer.alloc(next() % maxLength);
    for (let j = 0; j < chunk.length; j++) chunk[j] = next() & 0xff;
    yield chunk;
  }
}

describe('OutputBuffer', () => {
  it('returns the absolute offset of each appended chunk and counts every byte in end', () => {
    const buffer = new OutputBuffer(8);
    expect(buffer.append(bytes('abc'))).toBe(0);
    expect(buffer.append(bytes(''))).toBe(3);
    expect(buffer.append(bytes('defghij'))).toBe(3);
    expect(buffer.end).toBe(10);
    expect(buffer.start).toBe(2);
  });

  it('reads from an absolute offset up to maxBytes', () => {
    const buffer = new OutputBuffer(64);
    buffer.append(bytes('hello '));
    buffer.append(bytes('world'));
    expect(buffer.read(3, 5)).toEqual({ offset: 3, bytes: bytes('lo wo'), gap: false });
    expect(buffer.read(6).bytes.toString()).toBe('world');
    expect(buffer.read(11)).toEqual({ offset: 11, bytes: Buffer.alloc(0), gap: false });
    expect(buffer.read(50).offset).toBe(11);
  });

  it('evicts the oldest bytes past capacity and reports the gap to a reader behind the window', () => {
    const buffer = new OutputBuffer(5);
    buffer.append(bytes('0123'));
    buffer.append(bytes('4567'));
    expect(buffer.start).toBe(3);
    expect(buffer.read(1)).toEqual({ offset: 3, bytes: bytes('34567'), gap: true });
    expect(buffer.read(3)).toEqual({ offset: 3, bytes: bytes('34567'), gap: false });
  });

  it('keeps only the last capacity bytes of a chunk larger than the capacity', () => {
    const buffer = new OutputBuffer(4);
    buffer.append(bytes('ab'));
    expect(buffer.append(bytes('0123456789'))).toBe(2);
    expect(buffer.read(0).bytes.toString()).toBe('6789');
    expect(buffer.start).toBe(8);
  });

  it('matches a naive model across random appends, growth and wrap-around', () => {
    for (const capacity of [1, 7, 1000, 100_000, 300_000]) {
      const buffer = new OutputBuffer(capacity);
      let total = 0;
      let recent = Buffer.alloc(0);
      for (const chunk of chunks(capacity, 400, 3000)) {
        expect(buffer.append(chunk)).toBe(total);
        total += chunk.length;
        recent = Buffer.concat([recent, chunk]);
        if (recent.length > 2 * capacity + 4000) recent = recent.subarray(recent.length - capacity - 4000);
      }
      const retained = recent.subarray(recent.length - Math.min(capacity, total));
      expect(buffer.end).toBe(total);
      expect(buffer.read(buffer.start).bytes.equals(retained)).toBe(true);
      const middle = Math.floor(retained.length / 2);
      const page = buffer.read(buffer.start + middle, 10);
      expect(page.bytes.equals(retained.subarray(middle, middle + 10))).toBe(true);
    }
  });

  it('copies appended chunks and returned bytes, so later writes change neither', () => {
    const buffer = new OutputBuffer(4);
    const chunk = bytes('abcd');
    buffer.append(chunk);
    const read = buffer.read(0);
    chunk.fill(0x7a);
    buffer.append(bytes('xy'));
    expect(read.bytes.toString()).toBe('abcd');
    expect(buffer.read(0).bytes.toString()).toBe('cdxy');
  });

  it('returns the last characters as UTF-8 and counts a surrogate pair as one character', () => {
    const buffer = new OutputBuffer(1024);
    buffer.append(bytes('plain é, ü and 😀!'));
    expect(buffer.tail(4)).toBe('d 😀!');
    expect(buffer.tail(0)).toBe('');
    expect(buffer.tail(1000)).toBe('plain é, ü and 😀!');
  });

  it('never splits a multibyte character at an eviction cut', () => {
    const buffer = new OutputBuffer(7);
    buffer.append(bytes('aa€€€')); // '€' is 3 bytes: the window starts inside the first one
    expect(buffer.start).toBe(4);
    expect(buffer.tail(10)).toBe('€€');
    expect(buffer.tail(1)).toBe('€');
  });

  it('decodes binary and invalid UTF-8 with U+FFFD and never throws', () => {
    const buffer = new OutputBuffer(4096);
    for (const chunk of chunks(42, 20, 300)) buffer.append(chunk);
    buffer.append(Buffer.from([0x0a, 0xff, 0xfe, 0x0a, 0xc3, 0x28, 0x0a, 0xe2, 0x82]));
    expect(() => buffer.tail(100)).not.toThrow();
    expect(buffer.tail(1)).toBe('\ufffd');
    const page = buffer.lines({ offset: 0 });
    expect(page.lines.slice(-3)).toEqual(['\ufffd\ufffd', '\ufffd(', '\ufffd']);
  });

  it('pages over lines with offset and limit and counts an unfinished last line', () => {
    const buffer = new OutputBuffer(1024);
    buffer.append(bytes('one\r\ntwo\n\nfour\nfi'));
    buffer.append(bytes('ve'));
    expect(buffer.lines({})).toEqual({
      lines: ['one', 'two', '', 'four', 'five'],
      offset: 0,
      totalLines: 5,
      hasMore: false,
      truncatedBefore: false,
    });
    expect(buffer.lines({ offset: 1, limit: 2 })).toEqual({
      lines: ['two', ''],
      offset: 1,
      totalLines: 5,
      hasMore: true,
      truncatedBefore: false,
    });
    expect(buffer.lines({ offset: 9, limit: 2 })).toMatchObject({ lines: [], offset: 5, hasMore: false });
    buffer.append(bytes('\n'));
    expect(buffer.lines({ offset: 4 })).toMatchObject({ lines: ['five'], totalLines: 5, hasMore: false });
  });

  it('drops the partial first line after an eviction and reports truncatedBefore', () => {
    const buffer = new OutputBuffer(10);
    buffer.append(bytes('first\nsecond\nthird\n'));
    expect(buffer.lines({})).toMatchObject({ lines: ['third'], totalLines: 1, truncatedBefore: true });
  });

  it('keeps the first retained line when the eviction ends exactly at a newline', () => {
    const buffer = new OutputBuffer(6);
    buffer.append(bytes('ab\n'));
    buffer.append(bytes('cd\nef\n'));
    expect(buffer.start).toBe(3);
    expect(buffer.lines({})).toMatchObject({ lines: ['cd', 'ef'], totalLines: 2, truncatedBefore: true });
    buffer.append(bytes('g'));
    expect(buffer.lines({})).toMatchObject({ lines: ['ef', 'g'], truncatedBefore: true });
  });

  it('rejects invalid arguments with ERR_INVALID_INPUT', () => {
    expect(() => new OutputBuffer(0)).toThrow(VigilError);
    expect(() => new OutputBuffer(1.5)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }));
    const buffer = new OutputBuffer(8);
    expect(() => buffer.read(-1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }));
    expect(() => buffer.tail(-1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }));
    expect(() => buffer.lines({ offset: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT' }),
    );
    expect(() => buffer.lines({ limit: 0.5 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT' }),
    );
  });
});
