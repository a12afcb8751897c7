import { z } from 'zod';
import { invalidInput } from '../errors.js';
import { parse } from '../validation.js';
import { watchPatternsSchema } from '../watch/pattern-schema.js';
import { normalizePatternInput, type WatchPattern } from '../watch/patterns.js';
import { type CompletionPolicy, completionPolicyOf, completionPolicySchema } from './completion-policy.js';

/** Bounds of a terminal's `cols` and `rows`. */
export const TERMINAL_MAX_DIMENSION = 1000;
const terminalDimension = z.number().int().min(1).max(TERMINAL_MAX_DIMENSION);

/** A terminal's size in character cells. */
export interface TerminalSize {
  readonly cols: number;
  readonly rows: number;
}

/** The size of a terminal spawned without `cols` or `rows`. */
export const DEFAULT_TERMINAL_SIZE: TerminalSize = { cols: 80, rows: 24 };

/** `processes.resize` input. */
export const terminalSizeSchema = z.strictObject({ cols: terminalDimension, rows: terminalDimension });

/** The input of `processes.spawn` (and of the HTTP route and the agent tool). */
export const spawnInputSchema = z.strictObject({
  sessionId: z.string(),
  /** A shell command (run with `/bin/sh -c`) or an argv array (no shell). */
  command: z.union([z.string().min(1).max(100_000), z.array(z.string().max(100_000)).min(1).max(1000)]),
  cwd: z.string().min(1).max(4096).optional(),
  env: z.record(z.string(), z.string()).optional(),
  /**
   * When its end is a `completion` notification: `'always'` (or `true`), `'onFailure'` (a non-zero
   * exit, a signal, a kill), `'never'` (or `false`). Default `'always'`.
   */
  notifyOnComplete: completionPolicySchema.default('always'),
  /** Deliver the completion of a successful run that printed nothing at all. Default true. */
  notifyOnEmptySuccess: z.boolean().default(true),
  /** Watch patterns: substrings, `{ substring }` or `{ regex, flags }`. */
  watch: watchPatternsSchema.default([]),
  /** Send the output since the last heartbeat every this many ms (skipped when there is none). */
  heartbeatMs: z.number().int().min(100).max(86_400_000).optional(),
  /** Wait for a human approval before starting. */
  requireApproval: z.boolean().default(false),
  /** A human-readable reason shown on the approval card. */
  description: z.string().max(10_000).optional(),
  /** Keep running after the session closes (still killed by `vigil.close()`). */
  keepOnSessionClose: z.boolean().default(false),
  /**
   * A process of the same session this run replaces: its undelivered completion and matches are
   * withdrawn, and it is killed if it still runs.
   */
  replaces: z.string().min(1).max(64).optional(),
  /** Names the task: a spawn with the same `key` in the session replaces every earlier run with it, as `replaces` does. */
  key: z.string().min(1).max(200).optional(),
  /** Run in a pseudo-terminal (stdout and stderr are the terminal; stdin its keyboard). Default false. */
  pty: z.boolean().default(false),
  /** The terminal's width in columns (with `pty`). Default 80. */
  cols: terminalDimension.optional(),
  /** The terminal's height in rows (with `pty`). Default 24. */
  rows: terminalDimension.optional(),
});

export type SpawnInput = z.input<typeof spawnInputSchema>;

/** A validated spawn request. */
export interface SpawnSpec {
  readonly sessionId: string;
  readonly command: string | readonly string[];
  /** The command as one line, for people: argv elements are shell-quoted. */
  readonly display: string;
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>> | undefined;
  readonly notifyOnComplete: CompletionPolicy;
  /** Absent in records of older versions: true. */
  readonly notifyOnEmptySuccess?: boolean;
  readonly patterns: readonly WatchPattern[];
  readonly heartbeatMs: number;
  readonly requireApproval: boolean;
  readonly description: string | undefined;
  readonly keepOnSessionClose: boolean;
  /** Absent in records of older versions, as are `key`'s. */
  readonly replaces?: string | undefined;
  readonly key?: string | undefined;
  /** Its terminal's size at spawn when it runs in a pseudo-terminal; null (or absent in records of older versions) otherwise. */
  readonly pty?: TerminalSize | null;
}

/**
 * Validates spawn input once: `ERR_INVALID_PATTERN` for a bad watch pattern, `ERR_INVALID_INPUT`
 * for anything else; both name the field.
 */
export function parseSpawn(input: unknown, what = 'spawn input'): SpawnSpec {
  const spec = parse(spawnInputSchema, input, { what, code: spawnErrorCode });
  for (const field of ['cols', 'rows'] as const) {
    if (spec[field] !== undefined && !spec.pty) {
      throw invalidInput(field, `Invalid ${what}: ${field}: is only for a terminal (pty: true)`);
    }
  }
  return {
    sessionId: spec.sessionId,
    command: spec.command,
    display: typeof spec.command === 'string' ? spec.command : spec.command.map(quote).join(' '),
    cwd: spec.cwd,
    env: spec.env,
    notifyOnComplete: spec.notifyOnComplete,
    notifyOnEmptySuccess: spec.notifyOnEmptySuccess,
    patterns: spec.watch.map(normalizePatternInput),
    heartbeatMs: spec.heartbeatMs ?? 0,
    requireApproval: spec.requireApproval,
    description: spec.description,
    keepOnSessionClose: spec.keepOnSessionClose,
    replaces: spec.replaces,
    key: spec.key,
    pty: spec.pty
      ? { cols: spec.cols ?? DEFAULT_TERMINAL_SIZE.cols, rows: spec.rows ?? DEFAULT_TERMINAL_SIZE.rows }
      : null,
  };
}

/** A problem with a field under `watch` is a pattern error. */
export function spawnErrorCode(field: string): 'ERR_INVALID_PATTERN' | 'ERR_INVALID_INPUT' {
  return field === 'watch' || field.startsWith('watch[') ? 'ERR_INVALID_PATTERN' : 'ERR_INVALID_INPUT';
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A spec as a previous version journaled it, in today's shape (`notifyOnComplete` was a boolean). */
export function upgradeSpec(spec: SpawnSpec): SpawnSpec {
  const policy = completionPolicyOf(spec.notifyOnComplete as CompletionPolicy | boolean);
  return policy === spec.notifyOnComplete ? spec : { ...spec, notifyOnComplete: policy };
}
