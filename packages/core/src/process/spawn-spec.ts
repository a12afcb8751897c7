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
/** The longest `timeoutMs` (and `processes.timeoutMs`): 7 days. */
/**
 * The shortest heartbeat period: each heartbeat can cost the agent a turn, so sub-second periods are
 * refused. 1 s, not Hermes' 60 s: a heartbeat is also how a caller (and the tests) sees what the
 * poller has read so far, and that must stay usable at human speed.
 */
export const HEARTBEAT_FLOOR_MS = 1_000;

export const MAX_TIMEOUT_MS = 604_800_000;
/** The longest `yieldMs`: 2 minutes (a caller blocks that long at most). */
export const MAX_YIELD_MS = 120_000;
/** `yieldMs` of `processes.run` when none is given (OpenClaw's `exec` waits as long). */
export const DEFAULT_YIELD_MS = 10_000;

/** A whole number of milliseconds from 0 to `max`, with messages that say the bound. */
const milliseconds = (max: number) =>
  z
    .number({ error: 'must be a number of milliseconds' })
    .int({ error: 'must be a whole number of milliseconds' })
    .min(0, { error: 'must not be negative' })
    .max(max, { error: `must be at most ${max} ms` });

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
  /** Send the output since the last heartbeat every this many ms, at least `HEARTBEAT_FLOOR_MS` (skipped when there is none). */
  heartbeatMs: z.number().int().min(HEARTBEAT_FLOOR_MS).max(86_400_000).optional(),
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
  /**
   * Kill the process group (SIGTERM, SIGKILL after `processes.killGraceMs`) once the command has run
   * this long; its completion then says it timed out. 0: never. Default `processes.timeoutMs`.
   */
  timeoutMs: milliseconds(MAX_TIMEOUT_MS).optional(),
});

export type SpawnInput = z.input<typeof spawnInputSchema>;

/**
 * `yieldMs`: wait up to this long; a command that ends sooner is returned with its exit and output,
 * and its completion is never notified; one still running goes on in the background.
 */
export const yieldMsSchema = milliseconds(MAX_YIELD_MS);

/** The input of `processes.run`: a spawn, and how long to wait for its end (default 10 s). */
export const runInputSchema = spawnInputSchema.extend({ yieldMs: yieldMsSchema.default(DEFAULT_YIELD_MS) });

export type RunInput = z.input<typeof runInputSchema>;

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
  /** Kill it after it ran this long; 0: never. */
  readonly timeoutMs: number;
}

/** What fills in the fields a spawn input left out. */
export interface SpawnDefaults {
  /** `processes.timeoutMs`. */
  readonly timeoutMs: number;
}

/**
 * Validates spawn input once: `ERR_INVALID_PATTERN` for a bad watch pattern, `ERR_INVALID_INPUT`
 * for anything else; both name the field.
 */
export function parseSpawn(
  input: unknown,
  defaults: SpawnDefaults = { timeoutMs: 0 },
  what = 'spawn input',
): SpawnSpec {
  return specOf(parse(spawnInputSchema, input, { what, code: spawnErrorCode }), defaults, what);
}

/** Validates the input of `processes.run`: its spawn, and its `yieldMs`. */
export function parseRun(
  input: unknown,
  defaults: SpawnDefaults,
): { readonly spec: SpawnSpec; readonly yieldMs: number } {
  const what = 'run input';
  const { yieldMs, ...spawn } = parse(runInputSchema, input, { what, code: spawnErrorCode });
  return { spec: specOf(spawn, defaults, what), yieldMs };
}

function specOf(spec: z.output<typeof spawnInputSchema>, defaults: SpawnDefaults, what: string): SpawnSpec {
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
    timeoutMs: spec.timeoutMs ?? defaults.timeoutMs,
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
