import { describe, expect, test } from 'vitest';
import { foldAsciiCase } from '../src/watch/case-fold.js';
import { CompiledPatterns, linearTimePattern } from '../src/watch/patterns.js';
import { enableLinearEngine } from '../src/watch/regex-engine.js';
import { mulberry32 as random } from './support/random.js';

/** Pieces of a regex source whose folding matters: letters, classes, ranges, escapes, names. */
const ATOMS = [
  'a',
  'Z',
  'e',
  '7',
  '_',
  '.',
  '\\w',
  '\\W',
  '\\d',
  '\\s',
  '\\b',
  '\\e',
  '\\.',
  '\\[',
  '[a-f]',
  '[^x-z]',
  '[A-z]',
  '[--z]',
  '[Q-b]',
  '[^a]',
  '[\\d-z]',
  '[a-]',
  '[é]',
  '(?<Na>q)',
  '(?:Ab)',
  '(k|K)',
  '^',
  '$',
  '😀',
];
const QUANTIFIERS = ['', '', '', '*', '+', '?', '{1,2}'];
/** Input characters: letters of both cases, the punctuation between the cases, look-alikes. */
const TEXT = [
  'a',
  'A',
  'e',
  'E',
  'z',
  'Z',
  'q',
  'Q',
  'k',
  'K',
  '\u212a',
  'ſ',
  's',
  'S',
  '[',
  '_',
  '`',
  '^',
  ']',
  '7',
  ' ',
  'é',
  'É',
  '😀',
  '-',
  '.',
];

function randomSource(rand: () => number): string {
  let source = '';
  const atoms = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < atoms; i++) {
    source += ATOMS[Math.floor(rand() * ATOMS.length)]!;
    source += QUANTIFIERS[Math.floor(rand() * QUANTIFIERS.length)]!;
  }
  return source;
}

function compiles(source: string): boolean {
  try {
    new RegExp(source, 'i');
    return true;
  } catch {
    return false;
  }
}

function randomText(rand: () => number): string {
  let text = '';
  const length = Math.floor(rand() * 8);
  for (let i = 0; i < length; i++) text += TEXT[Math.floor(rand() * TEXT.length)]!;
  return text;
}

describe('foldAsciiCase', () => {
  test('matches exactly what the i flag matches, on random sources and texts', () => {
    const rand = random(20261129);
    let folded = 0;
    for (let round = 0; round < 4000; round++) {
      const source = randomSource(rand);
      if (!compiles(source)) continue;
      const rewrite = foldAsciiCase(source);
      if (rewrite === undefined) continue;
      folded += 1;
      for (const flags of ['', 'm', 's']) {
        const expected = new RegExp(source, `${flags}i`);
        const actual = new RegExp(rewrite, flags);
        for (let sample = 0; sample < 12; sample++) {
          const text = randomText(rand);
          expect(
            actual.test(text),
            `/${source}/${flags}i as /${rewrite}/${flags} on ${JSON.stringify(text)}`,
          ).toBe(expected.test(text));
        }
      }
    }
    // Nearly every generated source folds: the property is not vacuous.
    expect(folded).toBeGreaterThan(2500);
  });

  test.each([
    ['error', '[eE][rR][rR][oO][rR]'],
    ['[a-c]x', '[a-cA-C][xX]'],
    ['[^A-Z]', '[^A-Za-z]'],
    ['[0-Z]', '[0-Za-z]'],
    ['(?<Name>Ok)\\s+\\e', '(?<Name>[Oo][kK])\\s+[eE]'],
    ['(?<=a)b', '(?<=[aA])[bB]'],
    ['\\d{2,3}!', '\\d{2,3}!'],
  ])('folds %s into %s', (source, rewrite) => {
    expect(foldAsciiCase(source)).toBe(rewrite);
  });

  test.each([
    ['a cased non-ASCII letter', 'é'],
    ['a code point escape', '\\x41'],
    ['a unicode escape', '\\u0041'],
    ['a control escape', '\\cA'],
    ['a backreference', '(a)\\1'],
    ['a range past ASCII', '[a-é]'],
    ['a range from an uncased non-ASCII character', '[×-÷]'],
    ['an escaped range start', '[\\\\-z]'],
    ['an escaped range end', '[!-\\]]'],
  ])('leaves the i flag to a source with %s', (_what, source) => {
    expect(foldAsciiCase(source)).toBeUndefined();
  });
});

describe('case-insensitive patterns', () => {
  test('run in linear time when their letters are ASCII, so a runaway one cannot get stuck', () => {
    expect(enableLinearEngine()).toBe(true);
    expect(linearTimePattern({ kind: 'regex', regex: '^(a+)+$', flags: 'i' })).toBe(true);
    expect(linearTimePattern({ kind: 'regex', regex: 'é(a+)+$', flags: 'i' })).toBe(false);
    expect(linearTimePattern({ kind: 'regex', regex: '(a+)+$', flags: 'iu' })).toBe(false);
    const patterns = new CompiledPatterns([{ kind: 'regex', regex: '^(a+)+$', flags: 'i' }]);
    // 30 letters and a mismatch: 2^30 backtracking steps without the linear-time fallback.
    expect(patterns.match(`${'aA'.repeat(15)}!`)).toBe(-1);
    expect(patterns.match('aAaA')).toBe(0);
    const text = `${'Aa'.repeat(15)}!\nAAAA\n`;
    expect(patterns.scan(text)).toEqual([text.indexOf('AAAA')]);
  });
});
