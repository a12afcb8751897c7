import { z } from 'zod';
import { parseWith } from './options.js';
import { watchPatternSchema } from './watch-pattern-schema.js';
import { compilePatterns, type WatchPattern } from './watch-patterns.js';

/** The input of `processes.spawn` (and of the HTTP route and the agent tool). */
export const spawnInputSchema = z.strictObject({
  sessionId: z.string(),
  /** A shell command (run with `/bin/sh -c`) or an argv array (no shell). */
  command: z.union([z.string().min(1).max(100_000), z.array(z.string().max(100_000)).min(1).max(1000)]),
  cwd: z.string().min(1).max(4096).optional(),
  env: z.record(z.string(), z.string()).optional(),
  /** Deliver a `completion` notification when the process ends. Default true. */
  notifyOnComplete: z.boolean().default(true),
  /** Watch patterns: substrings, `{ substring }` or `{ regex, flags }`. */
  watch: z.array(watchPatternSchema).max(50).default([]),
  /** Send the output since the last heartbeat every this many ms (skipped when there is none). */
  heartbeatMs: z.number().int().min(100).max(86_400_000).optional(),
  /** Wait for a human approval before starting. */
  requireApproval: z.boolean().default(false),
  /** A human-readable reason shown on the approval card. */
  description: z.string().max(10_000).optional(),
  /** Keep running after the session closes (still killed by `vigil.close()`). */
  keepOnSessionClose: z.boolean().default(false),
});

export type SpawnInput = z.input<typeof spawnInputSchema>;

export interface SpawnSpec {
  readonly sessionId: string;
  readonly command: string | readonly string[];
  readonly display: string;
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>> | undefined;
  readonly notifyOnComplete: boolean;
  readonly patterns: readonly WatchPattern[];
  readonly heartbeatMs: number;
  readonly requireApproval: boolean;
  readonly description: string | undefined;
  readonly keepOnSessionClose: boolean;
}

/** Validates spawn input: `ERR_INVALID_INPUT` naming the field, `ERR_INVALID_PATTERN` naming the pattern. */
export function parseSpawn(input: unknown): SpawnSpec {
  // Patterns first, so a bad pattern is `ERR_INVALID_PATTERN` naming it rather than a shape error.
  const watch = (input as { watch?: unknown } | null)?.watch;
  if (watch !== undefined) compilePatterns(watch as never, { path: 'watch' });
  const spec = parseWith(spawnInputSchema, input, 'spawn input', 'ERR_INVALID_INPUT');
  const compiled = compilePatterns(spec.watch, { path: 'watch' });
  const display = typeof spec.command === 'string' ? spec.command : spec.command.map(quote).join(' ');
  return {
    sessionId: spec.sessionId,
    command: spec.command,
    display,
    cwd: spec.cwd,
    env: spec.env,
    notifyOnComplete: spec.notifyOnComplete,
    patterns: compiled.patterns.filter((pattern): pattern is WatchPattern => pattern !== null),
    heartbeatMs: spec.heartbeatMs ?? 0,
    requireApproval: spec.requireApproval,
    description: spec.description,
    keepOnSessionClose: spec.keepOnSessionClose,
  };
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
