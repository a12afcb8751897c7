import { foldAsciiCase } from './case-fold.js';
import { runsInLinearTime } from './regex-engine.js';

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
  /**
   * For `scan`: the literal alternation and each regex rewritten to stay on its line, global, with
   * the index of the regex (-1 for the literals); undefined when a regex has no
   * such rewrite.
   */
  readonly #scanners: readonly { readonly re: RegExp; readonly index: number }[] | undefined;

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
      const { source, flags } = engineForm(pattern.regex, pattern.flags);
      const re = new RegExp(source, flags);
      return (line: string) => re.test(line);
    });
    this.#regexes = patterns.flatMap((pattern, index) => (pattern?.kind === 'regex' ? [index] : []));
    const literals = patterns.flatMap((pattern) =>
      pattern?.kind === 'substring' ? [pattern.substring.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')] : [],
    );
    this.#literals = literals.length === 0 ? null : new RegExp(literals.join('|'));
    const scanned = this.#regexes.map((index) => {
      const { regex, flags } = patterns[index] as { regex: string; flags: string };
      const form = engineForm(regex, flags);
      const re = scanRegex(form.source, form.flags);
      return re === undefined ? undefined : { re, index };
    });
    this.#scanners = scanned.every((scanner) => scanner !== undefined)
      ? [
          ...(literals.length === 0 ? [] : [{ re: new RegExp(literals.join('|'), 'g'), index: -1 }]),
          ...scanned,
        ]
      : undefined;
  }

  /** Whether `scan` can find the candidate lines of a text (every regex has a line-bound rewrite). */
  get scannable(): boolean {
    return this.#scanners !== undefined;
  }

  /**
   * Where the lines that may match start in `text` (lines, each ending with `\n`), ascending: a
   * line that matches a pattern on its own is always among them; the caller confirms each with
   * `match`. Each pattern runs once over the whole text rather than once per line, which is where
   * the time goes when few lines match. Undefined when a regex could match across a newline or
   * look around its line (`lineScanSource`): test every line then.
   */
  scan(text: string, progress?: Int32Array, slot = 0): number[] | undefined {
    if (this.#scanners === undefined) return undefined;
    let starts: number[] = [];
    let scanned = 0;
    for (const { re, index } of this.#scanners) {
      if (progress !== undefined && index >= 0) Atomics.store(progress, slot, index + 1);
      const before = starts.length;
      re.lastIndex = 0;
      for (let found = re.exec(text); found !== null; found = re.exec(text)) {
        const at = found.index;
        if (at >= text.length) break;
        const end = text.indexOf('\n', at);
        starts.push(at === 0 ? 0 : text.lastIndexOf('\n', at - 1) + 1);
        if (end === -1) break;
        // The next line: one hit per line is enough.
        re.lastIndex = end + 1;
      }
      if (starts.length > before) scanned += 1;
    }
    if (scanned > 1) starts = [...new Set(starts.sort((a, b) => a - b))];
    return starts;
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

/**
 * The source of a regex for scanning many lines at once, each ending with `\n`: equivalent on any
 * one line to `source`, unable to match a `\n`, and trying no start position that a lone line
 * would not; undefined when there is no such rewrite here (a lookaround, an inline modifier, a
 * backreference by number, an escape for a code point or property, one of those or `\s`, `\W`,
 * `\D` in a class): such a pattern is matched line by line. `\s`, `\D` and `\W` become classes
 * without `\n`, a negated class leaves `\n` out, `.` under `s` becomes `[^\n]`. Without the `m`
 * flag, `^` becomes "after a `\n` or at the start" and `$` "before `\r\n` or `\n`" (the `m` flag
 * would also see line ends at a lone `\r`, where a lone line has none); under `m` a line has them
 * too, and `\n` only adds the line ends. `\b` sees a newline where a lone line has its start or
 * end, which it treats alike.
 *
 * With `multilineAnchors`, `^` and `$` stay as they are, to run under the `m` flag: no lookaround,
 * so the linear-time engine accepts the rewrite. It also tries starts after a lone `\r` (or
 * U+2028/9) inside a line and so finds a superset of the lines; `scan`'s caller confirms each.
 */
export function lineScanSource(
  source: string,
  flags: string,
  options: { readonly multilineAnchors?: boolean } = {},
): string | undefined {
  const dotAll = flags.includes('s');
  const multiline = flags.includes('m') || options.multilineAnchors === true;
  // Under `iu`, `\W` and a class built from `\w` may differ on characters that fold to word ones.
  const unicodeCase = flags.includes('i') && flags.includes('u');
  let out = '';
  let inClass = false;
  let negated = false;
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (source.charCodeAt(i) <= 10) return undefined;
    if (char === '\\') {
      const next = source[++i];
      if (next === undefined || next.charCodeAt(0) <= 10) return undefined;
      if (inClass) {
        // A negated class leaves `\n` out whatever it holds. In another, `\b` (a backspace) and
        // `\t` can open a range over `\n`.
        if (!negated && 'sWDnxuUcpPbt0123456789'.includes(next)) return undefined;
        out += `\\${next}`;
      } else if (next === 's') out += '[^\\S\\n]';
      else if (next === 'D') out += '[^\\d\\n]';
      else if (next === 'W' && !unicodeCase) out += '[^\\w\\n]';
      else if ('WnxuUcpP0123456789'.includes(next)) return undefined;
      else out += `\\${next}`;
    } else if (inClass) {
      if (char === ']') inClass = false;
      out += char;
    } else if (char === '[') {
      inClass = true;
      negated = source[i + 1] === '^';
      if (!negated) {
        out += '[';
        continue;
      }
      // `\n` first: last, it could end a range (`[^a-]` would become `[^a-\n]`). A `-` right
      // after it would start one, so that `-` is escaped.
      out += '[^\\n';
      i++;
      if (source[i + 1] === '-') {
        out += '\\-';
        i++;
      }
    } else if (char === '.' && dotAll) {
      out += '[^\\n]';
    } else if (char === '^' && !multiline) {
      out += '(?<![^\\n])';
    } else if (char === '$' && !multiline) {
      out += '(?=\\r?\\n)';
    } else {
      if (char === '(' && source[i + 1] === '?') {
        const kind = source[i + 2];
        const named = kind === '<' && source[i + 3] !== '=' && source[i + 3] !== '!';
        if (kind !== ':' && !named) return undefined;
      }
      out += char;
    }
  }
  return inClass ? undefined : out;
}

/**
 * The regex a scan runs for a pattern, or undefined when it has none (or it would not compile).
 * A pattern the linear-time engine accepts gets a rewrite it accepts too, so a runaway scan falls
 * back to linear time (`regex-engine.ts`); any other keeps its anchors exact, which spares it the
 * extra start positions.
 */
function scanRegex(regex: string, flags: string): RegExp | undefined {
  const linear = lineScanSource(regex, flags, { multilineAnchors: true });
  const linearFlags = flags.includes('m') ? flags : `${flags}m`;
  const linearSafe =
    linear !== undefined && runsInLinearTime(regex, flags) && runsInLinearTime(linear, linearFlags);
  const source = linearSafe ? linear : lineScanSource(regex, flags);
  if (source === undefined) return undefined;
  try {
    return new RegExp(source, `${linearSafe ? linearFlags : flags}g`);
  } catch {
    // A rewrite this module got wrong must cost speed, never the poller.
    return undefined;
  }
}

/** Whether a pattern can run in linear time (a substring always can). */
export function linearTimePattern(pattern: WatchPattern): boolean {
  if (pattern.kind === 'substring') return true;
  const { source, flags } = engineForm(pattern.regex, pattern.flags);
  return runsInLinearTime(source, flags);
}

/**
 * The source and flags a regex pattern runs as: the same, except that `i` without `u` becomes
 * explicit letter cases where that is exact (`case-fold.ts`), so the linear-time engine takes it.
 */
function engineForm(regex: string, flags: string): { source: string; flags: string } {
  if (!flags.includes('i') || flags.includes('u')) return { source: regex, flags };
  const folded = foldAsciiCase(regex);
  return folded === undefined ? { source: regex, flags } : { source: folded, flags: flags.replace('i', '') };
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
