import { z } from 'zod';
import { VigilError } from '../errors.js';
import { inputProblems } from '../validation.js';
import {
  CompiledPatterns,
  MAX_WATCH_PATTERN_LENGTH,
  MAX_WATCH_PATTERNS,
  normalizePatternInput,
  validFlags,
  WATCH_REGEX_FLAGS,
  type WatchPattern,
  type WatchPatternInput,
} from './patterns.js';

const source = z.string().min(1).max(MAX_WATCH_PATTERN_LENGTH);
const flags = z
  .string()
  .refine(validFlags, { message: `flags must be distinct letters of "${WATCH_REGEX_FLAGS}"` });

/**
 * One watch pattern: a string (substring match), `{ substring }`, or `{ regex, flags? }`, whose
 * regex compiles. The one validator of patterns; the input passes through unchanged.
 */
export const watchPatternSchema = z
  .union([
    source,
    z.strictObject({ substring: source }),
    z.strictObject({ regex: source, flags: flags.optional() }),
  ])
  .superRefine((pattern, ctx) => {
    if (typeof pattern !== 'object' || !('regex' in pattern)) return;
    try {
      new RegExp(pattern.regex, pattern.flags ?? '');
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: `invalid regex ${JSON.stringify(pattern.regex)}: ${reason(error)}`,
      });
    }
  });

/** The `watch` list of a spawn request. */
export const watchPatternsSchema = z
  .array(watchPatternSchema, { error: 'must be an array of patterns' })
  .max(MAX_WATCH_PATTERNS, {
    error: (issue) =>
      `at most ${MAX_WATCH_PATTERNS} patterns are allowed, got ${(issue.input as unknown[]).length}`,
  });

/**
 * Validates patterns and compiles them for matching. A bad one is `ERR_INVALID_PATTERN` whose
 * message starts with its path (`<path>[2]: invalid regex "a(b": ...`).
 */
export function compilePatterns(
  patterns: readonly WatchPatternInput[],
  options: { readonly path?: string } = {},
): CompiledPatterns {
  const path = options.path ?? 'watch.patterns';
  const result = watchPatternsSchema.safeParse(patterns);
  if (!result.success) throw patternError(result.error, path);
  return new CompiledPatterns(result.data.map(normalizePatternInput));
}

/** Validates one pattern and turns it into the normalised form, or throws `ERR_INVALID_PATTERN`. */
export function normalizePattern(input: WatchPatternInput, field = 'pattern'): WatchPattern {
  const result = watchPatternSchema.safeParse(input);
  if (!result.success) throw patternError(result.error, field);
  return normalizePatternInput(result.data);
}

/** Names the pattern (`<path>[i]`) first, then what is wrong inside it (`flags: ...`). */
function patternError(error: z.ZodError, path: string): VigilError {
  const [first] = inputProblems(error, '');
  const index = error.issues[0]?.path[0];
  const field = typeof index === 'number' ? `${path}[${index}]` : path;
  const inner = first?.field.replace(/^\[\d+\]\.?/, '') ?? '';
  const message = `${inner === '' ? '' : `${inner}: `}${first?.message ?? 'invalid pattern'}`;
  return new VigilError('ERR_INVALID_PATTERN', `${field}: ${message}`, {
    cause: error,
    details: typeof index === 'number' ? { field, index } : { field },
  });
}

/** `Invalid regular expression: /a(b/: Unterminated group` → `Unterminated group`. */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const at = message.lastIndexOf(': ');
  return at === -1 ? message : message.slice(at + 2);
}
