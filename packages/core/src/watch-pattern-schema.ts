import { z } from 'zod';
import {
  MAX_WATCH_PATTERN_LENGTH,
  MAX_WATCH_PATTERNS,
  validFlags,
  WATCH_REGEX_FLAGS,
} from './watch-patterns.js';

const source = z.string().min(1).max(MAX_WATCH_PATTERN_LENGTH);
const flags = z
  .string()
  .refine(validFlags, { message: `flags must be distinct letters of "${WATCH_REGEX_FLAGS}"` });

/** One watch pattern: a string (substring match), `{ substring }`, or `{ regex, flags? }`. */
export const watchPatternSchema = z.union([
  source,
  z.strictObject({ substring: source }),
  z.strictObject({ regex: source, flags: flags.optional() }),
]);

/** The `watch` list of a spawn request. */
export const watchPatternsSchema = z.array(watchPatternSchema).max(MAX_WATCH_PATTERNS);
