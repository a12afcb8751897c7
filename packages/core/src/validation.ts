import type { z } from 'zod';
import { VigilError, type VigilErrorCode } from './errors.js';

/** One offending field of an input, as a message names it. */
export interface InputProblem {
  /** The field's path (`pool.maxThreads`, `watch[1]`); `root` when the input itself is wrong. */
  readonly field: string;
  readonly message: string;
}

/** The problems of a failed parse, one per field; an unknown key is its own field (`unknown field`). */
export function inputProblems(error: z.ZodError, root = '(input)'): InputProblem[] {
  const problems: InputProblem[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map((key) => (typeof key === 'number' ? `[${key}]` : String(key)));
    const path = (keys: readonly string[]) => keys.join('.').replaceAll('.[', '[') || root;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ field: path([...base, key]), message: 'unknown field' });
    } else {
      problems.push({ field: path(base), message: issue.message });
    }
  }
  return problems;
}

export interface ParseOptions {
  /** What was parsed, for the message: `Invalid <what>: <field>: <problem>; ...`. */
  readonly what: string;
  /** Default `ERR_INVALID_INPUT`; a function chooses by the first offending field. */
  readonly code?: VigilErrorCode | ((field: string) => VigilErrorCode);
  /** The name of the input itself, when it is not an object at all. Default `(input)`. */
  readonly root?: string;
}

/**
 * Parses `input` at a trust boundary (options, HTTP bodies, tool input, messages from a thread).
 * A failure throws `code` with a message that names every offending field, and `details.field`
 * naming the first.
 */
export function parse<S extends z.ZodType>(schema: S, input: unknown, options: ParseOptions): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = inputProblems(result.error, options.root);
  const text = problems.map(({ field, message }) => `${field}: ${message}`).join('; ');
  const field = problems[0]?.field ?? options.root ?? '(input)';
  const { code = 'ERR_INVALID_INPUT' } = options;
  throw new VigilError(typeof code === 'function' ? code(field) : code, `Invalid ${options.what}: ${text}`, {
    cause: result.error,
    details: { field },
  });
}
