import type { CompletionPolicy } from './completion-policy.js';
import type { TerminalSize } from './spawn-spec.js';

export type ProcessState =
  | 'pending_approval'
  | 'running'
  | 'exited'
  | 'killed'
  | 'failed_start'
  | 'denied'
  /** Its fate cannot be known (a restart could not take it back, or its adoption failed); `reason` says why. */
  | 'lost';

export const TERMINAL_STATES: ReadonlySet<ProcessState> = new Set([
  'exited',
  'killed',
  'failed_start',
  'denied',
  'lost',
]);

/** A process as callers see it (`processes.get`, `list`, the HTTP API). */
export interface ProcessInfo {
  readonly processId: string;
  readonly sessionId: string;
  readonly command: string;
  /** A short name derived from the command: its verb and first target (`npm test`, `tail app.log`). */
  readonly name: string;
  readonly cwd: string | null;
  readonly state: ProcessState;
  readonly pid: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** Why the process ended, in words (`exited with code 1`, `killed by SIGTERM`, `denied`, ...). */
  readonly reason: string | null;
  /** It was killed because it ran longer than its `timeoutMs`. */
  readonly timedOut: boolean;
  /** When its `timeoutMs` runs out (epoch ms), once it runs; null without one. */
  readonly deadline: number | null;
  /** When its end is a notification: `'always'`, `'onFailure'` or `'never'`. */
  readonly notifyOnComplete: CompletionPolicy;
  /** Whether a successful run that printed nothing is notified too. */
  readonly notifyOnEmptySuccess: boolean;
  /** The `key` it was spawned with: reruns of one task share it. */
  readonly key: string | null;
  /** The process that replaced it (`replaces`, or a rerun with its `key`): its completion and matches are withdrawn. */
  readonly supersededBy: string | null;
  /** Whether watch matches are still reported (false once the rate limits disabled watching). */
  readonly watching: boolean;
  readonly watch: readonly string[];
  /** The completion was acknowledged or read through `wait` (G10). */
  readonly completionConsumed: boolean;
  readonly approvalId: string | null;
  /** Bytes the process has written. */
  readonly outputBytes: number;
  /** Bytes dropped from the middle of its spool to keep it under `output.maxBytes`. */
  readonly outputDropped: number;
  /** The spool file its output is written to (deleted when the process is forgotten). */
  readonly outputPath: string;
  /** Its terminal's size (as last resized) when it runs in one (`pty: true`); else null. */
  readonly terminal: TerminalSize | null;
}

/** How a process ended: the data of its final tape event (`process.exited`). */
export interface ExitRecord {
  readonly state: ProcessState;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly reason: string | null;
  /** It was killed because it ran longer than its `timeoutMs` (`reason` then starts with `timed out`). */
  readonly timedOut: boolean;
  /** The last `completion.outputChars` characters of output. */
  readonly outputTail: string;
  readonly outputBytes: number;
  /** Bytes dropped from the middle of its spool (`output.maxBytes`). */
  readonly outputDropped: number;
  readonly durationMs: number;
}
