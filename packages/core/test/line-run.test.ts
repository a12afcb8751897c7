import { describe, expect, test } from 'vitest';
import { candidateLines } from '../src/watch/line-run.js';
import { LineSplitter, runLines, type SplitLine } from '../src/watch/line-splitter.js';
import { compilePatterns } from '../src/watch/pattern-schema.js';
import { CompiledPatterns, lineScanSource, type WatchPatternInput } from '../src/watch/patterns.js';
import { enableLinearEngine } from '../src/watch/regex-engine.js';
import { mulberry32 as random } from './support/random.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');

/** Output mixing ASCII, CRLF, lone CR, multibyte and astral characters, invalid bytes and pattern words. */
function randomStream(rand: () => number, lines: number): Buffer {
  const pieces = ['a', 'b', 'x', 'ERROR', ' ', '7', 'é', '😀', '\r', 'fail', '_'];
  const parts: Buffer[] = [];
  for (let i = 0; i < lines; i++) {
    const length = Math.floor(rand() * 10);
    for (let j = 0; j < length; j++) {
      if (rand() < 0.03) parts.push(Buffer.from([0x80 + Math.floor(rand() * 0x80)]));
      else parts.push(bytes(pieces[Math.floor(rand() * pieces.length)]!));
    }
    parts.push(bytes(rand() < 0.3 ? '\r\n' : '\n'));
  }
  return Buffer.concat(parts);
}

const SCANNABLE = [
  'a+b',
  '^x',
  'b$',
  '\\bERROR\\b',
  '[ab]{2}',
  'é+',
  '😀',
  'x|^a',
  '$',
  '^',
  'a*',
  '\\w+\\d',
  'fail(ed)?\\b',
  '(?<w>a)\\k<w>',
  '\\r',
  'a\\s+b',
  'x\\s*$',
  '^\\s',
  '[^a]+b',
  'b[^]',
  '\\W\\w',
  '\\D7',
  'a.*b',
  '.$',
  'ERROR\\s+\\d',
  '[^\\w./-]+7',
  '[^-a]b',
  '[^^]$',
  '\\r$',
  '^$',
  'a$|^b',
  '(^|_)a',
  '[$]',
];
const FLAGS = ['', 'i', 'm', 'u', 'iu', 'mu', 's', 'su', 'ims'];

/** Each line that matches, with the index of the first pattern it matches. */
const matching = (lines: readonly SplitLine[], patterns: CompiledPatterns) =>
  lines.flatMap((line) => {
    const pattern = patterns.match(line.text);
    return pattern < 0 ? [] : [{ ...line, pattern }];
  });

/** Scanning a run finds every line that testing each line finds, with its text and byte offset. */
function expectScanFindsEveryMatch(): void {
  for (let seed = 1; seed <= 150; seed++) {
    const rand = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
    const inputs: WatchPatternInput[] = Array.from({ length: 1 + Math.floor(rand() * 4) }, () =>
      rand() < 0.3 ? pick(['ERROR', 'é', 'x a', '\r']) : { regex: pick(SCANNABLE), flags: pick(FLAGS) },
    );
    const patterns = compilePatterns(inputs);
    const stream = randomStream(rand, 300);
    const splitter = new LineSplitter({ maxLineLength: 1000, startOffset: 0 });
    let at = 0;
    let runs = 0;
    while (at < stream.length) {
      const chunk = stream.subarray(at, Math.min(stream.length, at + 1 + Math.floor(rand() * 600)));
      const { run } = splitter.pushChunk(chunk, at);
      at += chunk.length;
      if (run === undefined) continue;
      runs += 1;
      const scanned = candidateLines(run, patterns);
      expect(matching(scanned, patterns), `seed ${seed}: ${JSON.stringify(inputs)}`).toEqual(
        matching(runLines(run, 1000), patterns),
      );
      // A scan hits a line once: the candidates are distinct and in order.
      expect(scanned.map((line) => line.offset)).toEqual(
        [...new Set(scanned.map((line) => line.offset))].sort((a, b) => a - b),
      );
    }
    expect(runs).toBeGreaterThan(0);
  }
}

describe('candidateLines', () => {
  test('finds every matching line, with its text and byte offset, that testing each line finds', () => {
    expectScanFindsEveryMatch();
  });

  test('finds the same lines with the linear-time fallback on (rewrites without lookarounds)', () => {
    expect(enableLinearEngine()).toBe(true);
    expectScanFindsEveryMatch();
  });

  test('scans a run of many pieces, with lines of every length across the cuts', () => {
    const rand = random(99);
    const stream = Buffer.concat([
      randomStream(rand, 40_000),
      bytes(`${'x'.repeat(70_000)} ERROR\n`),
      randomStream(rand, 5_000),
    ]);
    const run = { bytes: stream, offset: 5 };
    for (const inputs of [
      ['ERROR'],
      [{ regex: 'a\\s+b$' }, 'é'],
      [{ regex: '^x+ ERROR$', flags: 'm' }],
    ] as WatchPatternInput[][]) {
      const patterns = compilePatterns(inputs);
      const found = matching(candidateLines(run, patterns), patterns);
      expect(found).toEqual(matching(runLines(run, 100_000), patterns));
      expect(found.length).toBeGreaterThan(0);
    }
  });

  test('skips the lines no pattern can match', () => {
    const run = { bytes: bytes('ok 1\nok 2\nERROR 3\r\nok 4\n'), offset: 100 };
    expect(candidateLines(run, compilePatterns(['ERROR']))).toEqual([
      { text: 'ERROR 3', truncated: false, offset: 110 },
    ]);
    const unicode = { bytes: bytes('é 1\n😀 2\nERROR 3\n'), offset: 0 };
    expect(candidateLines(unicode, compilePatterns([{ regex: '^ERROR \\d$' }]))).toEqual([
      { text: 'ERROR 3', truncated: false, offset: 12 },
    ]);
  });

  test('with a pattern that could see past its line, returns every line for testing one by one', () => {
    const run = { bytes: bytes('a\nb\n'), offset: 0 };
    for (const regex of ['a(?=\\n)', '(?<!a\\n)b', '[\\s,]b', 'a\\x0ab']) {
      const patterns = compilePatterns(['zzz', { regex }]);
      expect(patterns.scan('a\nb\n')).toBeUndefined();
      expect(candidateLines(run, patterns)).toEqual(runLines(run, 1000));
    }
  });
});

describe('lineScanSource', () => {
  test('keeps a pattern that stays on its line as it is', () => {
    for (const source of [
      'ERROR ?',
      '[$^]',
      '\\bFAIL(ED)?\\b',
      '[a-z]+\\d',
      '(?:ab)+',
      '(?<name>a)\\k<name>',
      '\\t',
      '[\\r-z]',
      '\\.\\[\\]',
      '.',
    ]) {
      expect.soft(lineScanSource(source, 'i'), source).toBe(source);
    }
  });

  test('keeps what can match a newline off it', () => {
    expect(lineScanSource('ERROR\\s+\\[\\d{3}\\]', '')).toBe('ERROR[^\\S\\n]+\\[\\d{3}\\]');
    expect(lineScanSource('\\W\\D', '')).toBe('[^\\w\\n][^\\d\\n]');
    expect(lineScanSource('"[^"]*"', '')).toBe('"[^\\n"]*"');
    expect(lineScanSource('[^\\s]', '')).toBe('[^\\n\\s]');
    // `\n` goes first, so that it cannot end a range; a `-` right after it is escaped.
    expect(lineScanSource('[^\\w./-]+', '')).toBe('[^\\n\\w./-]+');
    expect(lineScanSource('[^-a]', 'u')).toBe('[^\\n\\-a]');
    expect(lineScanSource('[^]', '')).toBe('[^\\n]');
    expect(lineScanSource('a.b', 's')).toBe('a[^\\n]b');
    expect(lineScanSource('a.b', '')).toBe('a.b');
  });

  test('anchors lines at newlines only, unless the pattern asks for every line terminator', () => {
    // Under `m`, a scan would also start lines after a lone `\r` (a progress bar), where a lone
    // line has none: a pattern that backtracks from a line start would run where it never ran.
    expect(lineScanSource('^a$', '')).toBe('(?<![^\\n])a(?=\\r?\\n)');
    expect(lineScanSource('^a$', 'm')).toBe('^a$');
    const patterns = compilePatterns([{ regex: '^(\\w+\\s?)+$' }]);
    expect(patterns.scan(`!\r${'a'.repeat(12)}!\nok\n!\n`)).toEqual([16]);
  });

  test('gives up on what it cannot keep on the line', () => {
    for (const source of [
      '\\n',
      '\\x0a',
      '\\u000a',
      '\\cJ',
      '\\12',
      '\\1',
      '[\\t-z]',
      '[\\b-z]',
      '[\\s,]',
      '\\p{Cc}',
      '(?=a)',
      '(?!a)',
      '(?<=a)',
      '(?<!a)',
      '(?s:.)',
      'a\n',
      '\\\n',
      '\\',
      '[a',
    ]) {
      expect.soft(lineScanSource(source, 'u'), JSON.stringify(source)).toBeUndefined();
    }
    expect(lineScanSource('\\W', 'iu')).toBeUndefined();
  });

  test('a pattern with no rewrite makes the whole set scan line by line, and still matches', () => {
    const patterns = new CompiledPatterns([{ kind: 'regex', regex: 'a(?= )', flags: '' }]);
    expect(patterns.scan('a b\n')).toBeUndefined();
    expect(patterns.match('a b')).toBe(0);
  });
});
