import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dropMarker, Spool } from '../src/process/spool.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-spool-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let made = 0;

/** A spool of `maxBytes` (default 1 MiB) with `text` already written; `using` deletes it. */
function spool(text: string | Buffer = '', maxBytes = 1 << 20): Spool & Disposable {
  const spool = new Spool(join(dir, `s${++made}.out`), maxBytes);
  if (text.length > 0) appendFileSync(spool.path, text);
  return Object.assign(spool, { [Symbol.dispose]: () => spool.delete() });
}

const lineOf = (i: number): string => `line ${String(i).padStart(6, '0')} ${'x'.repeat(84)}`;

describe('Spool', () => {
  it('creates an empty file and refuses a path it cannot create, naming it', () => {
    using empty = spool();
    expect(empty.size()).toBe(0);
    expect(empty.tail(10)).toBe('');
    expect(() => new Spool(join(dir, 'no-such-dir', 'x.out'), 1 << 20)).toThrow(
      expect.objectContaining({
        code: 'ERR_SPOOL',
        message: expect.stringContaining(join(dir, 'no-such-dir')),
      }),
    );
  });

  it('returns the last characters as UTF-8 and counts a surrogate pair as one character', () => {
    using s = spool('plain é, ü and 😀!');
    expect(s.tail(4)).toBe('d 😀!');
    expect(s.tail(0)).toBe('');
    expect(s.tail(1000)).toBe('plain é, ü and 😀!');
  });

  it('never splits a multibyte character where the tail starts', () => {
    using s = spool('aa€€€');
    expect(s.tail(2)).toBe('€€');
    expect(s.tail(1)).toBe('€');
  });

  it('pages over lines with offset and limit, counts an unfinished last line, and gives the last lines without an offset', async () => {
    using s = spool('one\r\ntwo\n\nfour\nfive');
    expect(await s.lines({ offset: 0, limit: 100 })).toEqual({
      lines: ['one', 'two', '', 'four', 'five'],
      offset: 0,
      totalLines: 5,
      hasMore: false,
      droppedBytes: 0,
    });
    expect(await s.lines({ offset: 1, limit: 2 })).toEqual({
      lines: ['two', ''],
      offset: 1,
      totalLines: 5,
      hasMore: true,
      droppedBytes: 0,
    });
    expect(await s.lines({ offset: 9, limit: 2 })).toMatchObject({ lines: [], offset: 5, hasMore: false });
    expect(await s.lines({ limit: 2 })).toMatchObject({ lines: ['four', 'five'], offset: 3, hasMore: false });
  });

  it('decodes binary and invalid UTF-8 with U+FFFD and never throws', async () => {
    using s = spool(Buffer.from([0x41, 0x0a, 0xff, 0xfe, 0x0a, 0xc3, 0x28, 0x0a, 0xe2, 0x82]));
    expect(s.tail(1)).toBe('\ufffd');
    expect((await s.lines({ offset: 0, limit: 10 })).lines).toEqual([
      'A',
      '\ufffd\ufffd',
      '\ufffd(',
      '\ufffd',
    ]);
  });

  it('cuts a line of megabytes without a newline in a log page, holding no more than the cut', async () => {
    using s = spool(`${'z'.repeat(3 << 20)}\nafter\n`, 16 << 20);
    const { lines } = await s.lines({ offset: 0, limit: 10 });
    expect(lines).toHaveLength(2);
    expect(lines[0]!.length).toBe(64 * 1024);
    expect(lines[1]).toBe('after');
  });

  it('keeps the head and a rolling tail past maxBytes, drops the middle, counts it, and frees its disk', async () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => lineOf(i));
    const text = `${lines.join('\n')}\n`; // 3.9 MB
    using s = spool(text);
    const errors: unknown[] = [];
    await s.enforce((error) => errors.push(error));
    expect(errors).toEqual([]);
    expect(s.headBytes).toBe(128 * 1024);
    expect(s.size()).toBe(text.length);
    expect(s.droppedBytes).toBeGreaterThan(text.length - (1 << 20) - (1 << 16));
    expect(s.size() - s.droppedBytes).toBeLessThanOrEqual((1 << 20) + (1 << 16));
    // The dropped blocks are really gone from the disk. Nothing announces when the file system's
    // count shows it (under write load it lags the punch), so this is a bounded poll.
    for (let i = 0; i < 200 && statSync(s.path).blocks * 512 >= 2 << 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(statSync(s.path).blocks * 512).toBeLessThan(2 << 20);
    expect(s.tail(20)).toBe(`${lineOf(39_999).slice(-19)}\n`);
    const page = await s.lines({ offset: 0, limit: 100_000 });
    expect(page.droppedBytes).toBe(s.droppedBytes);
    const marker = page.lines.indexOf(dropMarker(s.droppedBytes));
    expect(marker).toBeGreaterThan(1000);
    expect(page.lines.slice(0, 1000)).toEqual(lines.slice(0, 1000));
    expect(page.lines.slice(-1000)).toEqual(lines.slice(-1000));
    // Reading into the dropped stretch continues where the tail begins.
    expect(s.read(s.headBytes, s.tailFrom + 10).toString()).toBe(text.slice(s.tailFrom, s.tailFrom + 10));
  });

  it('punches nothing while the spool is under its cap', async () => {
    using s = spool('small\n');
    expect(s.enforce(() => undefined)).toBeUndefined();
    expect(s.droppedBytes).toBe(0);
  });
});
