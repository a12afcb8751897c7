import { describe, expect, test } from 'vitest';
import { VigilError } from '../src/errors.js';
import {
  compilePatterns,
  normalizePattern,
  watchPatternSchema,
  watchPatternsSchema,
} from '../src/watch/pattern-schema.js';
import { describePattern, MAX_WATCH_PATTERNS, type WatchPatternInput } from '../src/watch/patterns.js';

function compileError(patterns: unknown): VigilError {
  try {
    compilePatterns(patterns as WatchPatternInput[]);
  } catch (error) {
    if (error instanceof VigilError) return error;
    throw error;
  }
  throw new Error('compilePatterns did not throw');
}

describe('compilePatterns', () => {
  test('matches substrings and regexes and returns the index of the first matching pattern', () => {
    const patterns = compilePatterns([
      'ERROR',
      { substring: 'panic:' },
      { regex: 'fail(ed|ure)', flags: 'i' },
    ]);
    expect(patterns.size).toBe(3);
    expect(patterns.match('all good')).toBe(-1);
    expect(patterns.match('[ERROR] panic: x')).toBe(0);
    expect(patterns.match('goroutine panic: x')).toBe(1);
    expect(patterns.match('Build FAILED')).toBe(2);
  });

  test('treats substring patterns literally, regex metacharacters included', () => {
    const patterns = compilePatterns(['a.b(']);
    expect(patterns.match('xa.b(y')).toBe(0);
    expect(patterns.match('axb(')).toBe(-1);
  });

  test('matches regexes the same on every line (no lastIndex state)', () => {
    const patterns = compilePatterns([{ regex: '^\\d+ tests? passed$', flags: 'm' }]);
    for (let i = 0; i < 3; i++) expect(patterns.match('12 tests passed')).toBe(0);
  });

  test('applies the s and u flags', () => {
    const patterns = compilePatterns([{ regex: '^\\p{Lu}.$', flags: 'su' }]);
    expect(patterns.match('É\n')).toBe(0);
    expect(patterns.match('é\n')).toBe(-1);
  });

  test('exposes the normalised patterns as plain data that survives a structured clone', () => {
    const inputs: WatchPatternInput[] = [
      'a',
      { substring: 'b' },
      { regex: 'c+' },
      { regex: 'd', flags: 'i' },
    ];
    const compiled = compilePatterns(inputs);
    expect(compiled.patterns).toEqual([
      { kind: 'substring', substring: 'a' },
      { kind: 'substring', substring: 'b' },
      { kind: 'regex', regex: 'c+', flags: '' },
      { kind: 'regex', regex: 'd', flags: 'i' },
    ]);
    expect(structuredClone(compiled.patterns)).toEqual(compiled.patterns);
    expect(compilePatterns(structuredClone(inputs)).match('xDx')).toBe(3);
  });

  test('names the pattern and its index when a regex does not compile', () => {
    const error = compileError(['ok', 'fine', { regex: 'a(b' }]);
    expect(error.code).toBe('ERR_INVALID_PATTERN');
    expect(error.message).toBe('watch.patterns[2]: invalid regex "a(b": Unterminated group');
    expect(error.details).toEqual({ field: 'watch.patterns[2]', index: 2 });
  });

  test('uses the field path given in options', () => {
    expect(() => compilePatterns([''], { path: 'spawn.watch.patterns' })).toThrow(
      /^spawn\.watch\.patterns\[0\]: /,
    );
  });

  test.each([
    ['an empty string', ''],
    ['an empty substring', { substring: '' }],
    ['an empty regex', { regex: '' }],
    ['a pattern over 1000 characters', 'x'.repeat(1001)],
    ['the g flag', { regex: 'a', flags: 'g' }],
    ['the y flag', { regex: 'a', flags: 'y' }],
    ['the d flag', { regex: 'a', flags: 'd' }],
    ['the v flag', { regex: 'a', flags: 'v' }],
    ['a duplicated flag', { regex: 'a', flags: 'ii' }],
    ['flags that are not a string', { regex: 'a', flags: 1 }],
    ['an unknown key', { regex: 'a', extra: true }],
    ['a substring with other keys', { substring: 'a', flags: 'i' }],
    ['a number', 42],
    ['null', null],
  ])('rejects %s with ERR_INVALID_PATTERN', (_what, pattern) => {
    const error = compileError(['fine', pattern]);
    expect(error.code).toBe('ERR_INVALID_PATTERN');
    expect(error.message).toMatch(/^watch\.patterns\[1\]: /);
  });

  test('accepts 50 patterns of 1000 characters and rejects a 51st', () => {
    const patterns = Array.from({ length: MAX_WATCH_PATTERNS }, (_, i) => `${i}`.padEnd(1000, 'x'));
    expect(compilePatterns(patterns).size).toBe(50);
    const error = compileError([...patterns, 'one more']);
    expect(error.code).toBe('ERR_INVALID_PATTERN');
    expect(error.message).toMatch(/at most 50 patterns/);
  });

  test('rejects a value that is not an array', () => {
    expect(compileError('ERROR').message).toBe('watch.patterns: must be an array of patterns');
  });
});

describe('normalizePattern', () => {
  test('turns every input form into one shape', () => {
    expect(normalizePattern('x')).toEqual({ kind: 'substring', substring: 'x' });
    expect(normalizePattern({ regex: 'x', flags: 'mi' })).toEqual({ kind: 'regex', regex: 'x', flags: 'mi' });
    expect(() => normalizePattern({ regex: '(' }, 'pattern')).toThrow(/^pattern: invalid regex/);
  });
});

describe('describePattern', () => {
  test('shows substrings quoted and regexes with their flags', () => {
    expect(describePattern('say "hi"')).toBe('"say \\"hi\\""');
    expect(describePattern({ substring: 'x' })).toBe('"x"');
    expect(describePattern({ regex: 'a+b', flags: 'i' })).toBe('/a+b/i');
    expect(describePattern({ kind: 'regex', regex: 'c', flags: '' })).toBe('/c/');
  });
});

describe('watchPatternsSchema', () => {
  test('accepts the three input forms', () => {
    const input = ['a', { substring: 'b' }, { regex: 'c', flags: 'imsu' }];
    expect(watchPatternsSchema.parse(input)).toEqual(input);
  });

  test('rejects bad flags, empty and unknown forms, and more than 50 patterns', () => {
    expect(watchPatternSchema.safeParse({ regex: 'a', flags: 'g' }).success).toBe(false);
    expect(watchPatternSchema.safeParse({ regex: 'a', flags: 'ss' }).success).toBe(false);
    expect(watchPatternSchema.safeParse('').success).toBe(false);
    expect(watchPatternSchema.safeParse({ glob: '*' }).success).toBe(false);
    expect(watchPatternsSchema.safeParse(Array.from({ length: 51 }, () => 'x')).success).toBe(false);
  });
});

describe('CompiledPatterns fast path', () => {
  test('returns the same first match as testing every pattern in order, for random patterns and lines', () => {
    const atoms = ['a', 'b', '.', '*', '(', ')', '[', ']', '|', '\\', '/', '$', '^', '+', '?', '{', '}', 'x'];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const word = (max: number): string =>
      Array.from({ length: 1 + random(max) }, () => atoms[random(atoms.length)]).join('');
    for (let round = 0; round < 300; round++) {
      const inputs: WatchPatternInput[] = Array.from({ length: 1 + random(6) }, () =>
        random(3) === 0
          ? { regex: ['a+b', '^x', 'b$', '\\(a\\)', '[ab]{2}'][random(5)]!, flags: random(2) ? 'i' : '' }
          : word(3),
      );
      const compiled = compilePatterns(inputs);
      const naive = (line: string): number =>
        compiled.patterns.findIndex((p) =>
          p === null
            ? false
            : p.kind === 'substring'
              ? line.includes(p.substring)
              : new RegExp(p.regex, p.flags).test(line),
        );
      for (let i = 0; i < 20; i++) {
        const line = word(8);
        expect(compiled.match(line)).toBe(naive(line));
      }
    }
  });
});
