import { VigilError } from './errors.js';

/** Most patterns one process may watch. */
export const MAX_WATCH_PATTERNS = 50;
/** Longest pattern source, in characters. */
export const MAX_WATCH_PATTERN_LENGTH = 1000;
/** Regex flags a pattern may use (each at most once). `g`, `y`, `d` and `v` are refused. */
export const WATCH_REGEX_FLAGS = 'imsu';

/**
 * One watch pattern, as a caller writes it: a string (substring match), `{ substring }`, or
 * `{ regex, flags? }`. Plain JSON, so it crosses threads as is and is compiled on each side.
 * (The zod schema lives in `watch-pattern-schema.ts`: this module runs in poller threads, which
 * should not pay for loading zod.)
 */
export type WatchPatternInput =
  | string
  | { readonly substring: string }
  | { readonly regex: string; readonly flags?: string };

/** A pattern in its one normalised form. */
export type WatchPattern =
  | { readonly kind: 'substring'; readonly substring: string }
  | { readonly kind: 'regex'; readonly regex: string; readonly flags: string };

export interface CompilePatternsOptions {
  /** Field path used in error messages. Default `watch.patterns`. */
  readonly path?: string;
}

/** Watch patterns compiled for matching; build with `compilePatterns`. */
export class CompiledPatterns {
  /** The normalised patterns, in input order (plain data); `null` marks a disabled pattern. */
  readonly patterns: readonly (WatchPattern | null)[];
  readonly #tests: readonly (((line: string) => boolean) | null)[];
  /** Indices of the regex patterns, in input order. */
  readonly #regexes: readonly number[];
  /**
   * Every substring pattern as one literal alternation: one test per line instead of one per
   * pattern. A literal alternation cannot backtrack catastrophically, so it needs no progress mark.
   */
  readonly #literals: RegExp | null;

  /** @internal Use `compilePatterns`, which validates. */
  constructor(patterns: readonly (WatchPattern | null)[]) {
    this.patterns = patterns;
    this.#tests = patterns.map((pattern) => {
      if (pattern === null) return null;
      if (pattern.kind === 'substring') {
        const needle = pattern.substring;
        return (line: string) => line.includes(needle);
      }
      // Without `g` or `y`, `test` keeps no `lastIndex` state between lines.
      const re = new RegExp(pattern.regex, pattern.flags);
      return (line: string) => re.test(line);
    });
    this.#regexes = patterns.flatMap((pattern, index) => (pattern?.kind === 'regex' ? [index] : []));
    const literals = patterns.flatMap((pattern) =>
      pattern?.kind === 'substring' ? [pattern.substring.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')] : [],
    );
    this.#literals = literals.length === 0 ? null : new RegExp(literals.join('|'));
  }

  /** Number of patterns (disabled ones included, so indices stay stable). */
  get size(): number {
    return this.#tests.length;
  }

  /**
   * Index of the first pattern (in input order) that matches `line`, or -1. With `progress`, the
   * index of each regex is stored in `progress[slot]` before it runs, so a watchdog on another
   * thread can name the pattern a stuck thread is in.
   */
  match(line: string, progress?: Int32Array, slot = 0): number {
    if (this.#literals?.test(line)) return this.#first(line, progress, slot);
    for (const index of this.#regexes) {
      if (progress !== undefined) Atomics.store(progress, slot, index + 1);
      // No substring matched, and no earlier regex: this is the first matching pattern.
      if (this.#tests[index]!(line)) return index;
    }
    return -1;
  }

  /** The slow path for a line known to match something: the first pattern in input order. */
  #first(line: string, progress: Int32Array | undefined, slot: number): number {
    const tests = this.#tests;
    for (let i = 0; i < tests.length; i++) {
      const test = tests[i];
      if (test == null) continue;
      if (progress !== undefined && this.patterns[i]?.kind === 'regex') Atomics.store(progress, slot, i + 1);
      if (test(line)) return i;
    }
    return -1;
  }
}

export function compilePatterns(
  patterns: readonly WatchPatternInput[],
  options: CompilePatternsOptions = {},
): CompiledPatterns {
  const path = options.path ?? 'watch.patterns';
  if (!Array.isArray(patterns)) {
    throw new VigilError('ERR_INVALID_PATTERN', `${path}: must be an array of patterns`, {
      details: { field: path },
    });
  }
  if (patterns.length > MAX_WATCH_PATTERNS) {
    throw new VigilError(
      'ERR_INVALID_PATTERN',
      `${path}: at most ${MAX_WATCH_PATTERNS} patterns are allowed, got ${patterns.length}`,
      { details: { field: path } },
    );
  }
  return new CompiledPatterns(
    patterns.map((input, index) => validatePattern(input, `${path}[${index}]`, index)),
  );
}

/** Turns any accepted input form into a `WatchPattern`, or throws `ERR_INVALID_PATTERN`. */
export function normalizePattern(input: WatchPatternInput, field = 'pattern'): WatchPattern {
  return validatePattern(input, field, undefined);
}

/** A short human form of a pattern for messages: `"text"` or `/source/flags`. */
export function describePattern(pattern: WatchPatternInput | WatchPattern): string {
  if (typeof pattern === 'string') return JSON.stringify(pattern);
  if (typeof pattern !== 'object' || pattern === null) return String(pattern);
  if ('regex' in pattern && typeof pattern.regex === 'string') {
    return `/${pattern.regex}/${typeof pattern.flags === 'string' ? pattern.flags : ''}`;
  }
  if ('substring' in pattern && typeof pattern.substring === 'string')
    return JSON.stringify(pattern.substring);
  return '(invalid pattern)';
}

function validatePattern(input: unknown, field: string, index: number | undefined): WatchPattern {
  const fail = (message: string): never => {
    throw new VigilError('ERR_INVALID_PATTERN', `${field}: ${message}`, {
      details: index === undefined ? { field } : { field, index },
    });
  };
  if (typeof input === 'string') {
    checkSource(input, 'substring', fail);
    return { kind: 'substring', substring: input };
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return fail('must be a string, { substring } or { regex, flags? }');
  }
  const record = input as Record<string, unknown>;
  const keys = Object.keys(record);
  if ('substring' in record) {
    if (keys.length !== 1) fail('a { substring } pattern takes no other keys');
    checkSource(record.substring, 'substring', fail);
    return { kind: 'substring', substring: record.substring as string };
  }
  if ('regex' in record) {
    if (keys.some((key) => key !== 'regex' && key !== 'flags'))
      fail('a { regex } pattern takes only regex and flags');
    const regex = record.regex;
    checkSource(regex, 'regex', fail);
    const flagText = record.flags ?? '';
    if (typeof flagText !== 'string' || !validFlags(flagText)) {
      fail(
        `invalid flags ${JSON.stringify(flagText)} for regex ${JSON.stringify(regex)}: use distinct letters of "${WATCH_REGEX_FLAGS}"`,
      );
    }
    try {
      new RegExp(regex as string, flagText as string);
    } catch (error) {
      fail(`invalid regex ${JSON.stringify(regex)}: ${regexReason(error)}`);
    }
    return { kind: 'regex', regex: regex as string, flags: flagText as string };
  }
  return fail('must be a string, { substring } or { regex, flags? }');
}

function checkSource(value: unknown, what: string, fail: (message: string) => never): void {
  if (typeof value !== 'string') fail(`${what} must be a string`);
  const text = value as string;
  if (text.length === 0) fail(`${what} must not be empty`);
  if (text.length > MAX_WATCH_PATTERN_LENGTH) {
    fail(`${what} is ${text.length} characters long, at most ${MAX_WATCH_PATTERN_LENGTH} are allowed`);
  }
}

export function validFlags(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const flag = text[i]!;
    if (!WATCH_REGEX_FLAGS.includes(flag) || text.indexOf(flag) !== i) return false;
  }
  return true;
}

/** `Invalid regular expression: /a(b/: Unterminated group` → `Unterminated group`. */
function regexReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const at = message.lastIndexOf(': ');
  return at === -1 ? message : message.slice(at + 2);
}
