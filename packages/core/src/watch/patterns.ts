/** Most patterns one process may watch. */
export const MAX_WATCH_PATTERNS = 50;
/** Longest pattern source, in characters. */
export const MAX_WATCH_PATTERN_LENGTH = 1000;
/** Regex flags a pattern may use (each at most once). `g`, `y`, `d` and `v` are refused. */
export const WATCH_REGEX_FLAGS = 'imsu';

/**
 * One watch pattern, as a caller writes it: a string (substring match), `{ substring }`, or
 * `{ regex, flags? }`. Validated once, on the main thread, by `pattern-schema.ts`; this module runs
 * in poller threads too, which should not pay for loading zod.
 */
export type WatchPatternInput =
  | string
  | { readonly substring: string }
  | { readonly regex: string; readonly flags?: string };

/** A pattern in its one normalised form. */
export type WatchPattern =
  | { readonly kind: 'substring'; readonly substring: string }
  | { readonly kind: 'regex'; readonly regex: string; readonly flags: string };

/** Watch patterns compiled for matching. Validate them first (`compilePatterns` does both). */
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

  /** `patterns` must be valid (`pattern-schema.ts`); a poller gets them validated from the registry. */
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

/** Whether `text` is a set of distinct flags of `WATCH_REGEX_FLAGS`. */
export function validFlags(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const flag = text[i]!;
    if (!WATCH_REGEX_FLAGS.includes(flag) || text.indexOf(flag) !== i) return false;
  }
  return true;
}

/** Turns an accepted input form into the one normalised form (it must be valid already). */
export function normalizePatternInput(input: WatchPatternInput): WatchPattern {
  if (typeof input === 'string') return { kind: 'substring', substring: input };
  if ('substring' in input) return { kind: 'substring', substring: input.substring };
  return { kind: 'regex', regex: input.regex, flags: input.flags ?? '' };
}
