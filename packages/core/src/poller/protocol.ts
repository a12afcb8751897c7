/**
 * What a session's poller and the registry say to each other: the three calls of `RegistryPort`,
 * made by the poller (over Comlink in the worker host, directly in the in-thread host). Everything
 * here is plain data so it survives a structured clone; a host whose poller runs in another thread
 * checks every call (`protocol-schema.ts`). Output never travels here: the poller reads each
 * process's spool file itself, from its committed cursor.
 *
 * - `hello(PollerHello) → PollerStart`: a new run announces itself and gets what to follow.
 * - `pull(PullRequest) → PollerWork`: a long-poll for the registry's next instructions (or `stop`).
 * - `commit(PollerReport)`: what the run found, with the cursors it reached, applied atomically.
 */
import type { RedactionRules } from '../secrets/redactor.js';
import type { WatchLimiterState } from '../watch/limiter.js';
import type { WatchPattern } from '../watch/patterns.js';

/** Limits a poller applies; taken from the vigil config. */
export interface PollerLimits {
  readonly cooldownMs: number;
  readonly strikeLimit: number;
  readonly lifetimeMaxHits: number;
  readonly maxLineLength: number;
  readonly maxLinesPerMatch: number;
  readonly maxCharsPerMatch: number;
  /** Characters of output a heartbeat carries. */
  readonly heartbeatChars: number;
}

/** A process as its session's poller follows it. Positions are absolute byte offsets in its spool. */
export interface WatchedProcess {
  readonly processId: string;
  /** The spool file the process's output is written to. */
  readonly spool: string;
  /**
   * Shared with the registry: two 64-bit cells, `[dropFrom, dropTo)`, the stretch of the spool that
   * was dropped to hold its cap (both 0 until then). Written before the bytes are punched out.
   */
  readonly drops: SharedArrayBuffer;
  /** Index of this process's cell in the progress buffer. */
  readonly slot: number;
  /** `null` marks a pattern disabled by the registry (indices stay stable). */
  readonly patterns: readonly (WatchPattern | null)[];
  /** Committed: output before this offset has been matched (always a line start). */
  readonly cursor: number;
  readonly limiter: WatchLimiterState | undefined;
  /** 0: no heartbeats. */
  readonly heartbeatMs: number;
  /** Committed: output before this offset was reported by a heartbeat. */
  readonly heartbeatCursor: number;
  /** When the last heartbeat was made: the next is due `heartbeatMs` after it (absent: after the poller takes it up). */
  readonly heartbeatAt?: number;
  /** The process has ended: its output ends at this offset (absent while it runs). */
  readonly end?: number;
}

export interface PollerHello {
  readonly runId: number;
  readonly threadId: number;
}

export interface PollerStart {
  readonly sessionId: string;
  readonly runId: number;
  readonly limits: PollerLimits;
  /** What the poller redacts from the match lines and heartbeats it reports. */
  readonly redaction: RedactionRules;
  readonly processes: readonly WatchedProcess[];
  /**
   * Cell `slot` holds 1 + the index of the regex the poller is running for that process (0: none);
   * cell `slots` counts the batches the run started, and cell `slots + 1` is 1 while a batch runs.
   * The registry's watchdog reads them to notice a stuck run and name the pattern at fault.
   */
  readonly progress: SharedArrayBuffer;
}

export interface PullRequest {
  /** Resolve with empty work after this long if nothing arrives. Omit to wait for work. */
  readonly waitMs?: number;
}

/** A process ended: its output ends at `at`. */
export interface ProcessEnd {
  readonly processId: string;
  readonly at: number;
}

export interface PollerWork {
  /** The poller must return: its session is closing. */
  readonly stop: boolean;
  /** Liveness probes to echo back in the next commit. */
  readonly probes: readonly number[];
  /** Processes to follow from now on. */
  readonly added: readonly WatchedProcess[];
  /** Processes to forget (finished and drained, or no longer watched). */
  readonly removed: readonly string[];
  /** Followed processes that ended: drain each to its end and report `drained`. */
  readonly ended: readonly ProcessEnd[];
}

export interface MatchReport {
  /** Byte offset of the first matching line: with the process id, the notification's stable id. */
  readonly offset: number;
  readonly lines: readonly string[];
  /** Index of the pattern that matched the first line. */
  readonly pattern: number;
  /** Matches dropped by the cooldown since the previous delivered one. */
  readonly suppressed: number;
  /** 1-based count of delivered matches for this process. */
  readonly hit: number;
  readonly truncated: boolean;
}

export interface ProcessReport {
  readonly processId: string;
  readonly cursor: number;
  readonly limiter?: WatchLimiterState | undefined;
  readonly heartbeatCursor: number;
  readonly matches: readonly MatchReport[];
  /** Watching was disabled by the rate limits; the process falls back to notify-on-exit. */
  readonly disabled?: { readonly reason: 'strikes' | 'lifetime'; readonly suppressed: number };
  /** A heartbeat made at `at`: the output in `[from, upTo)` (its last `heartbeatChars` characters). */
  readonly heartbeat?: {
    readonly from: number;
    readonly upTo: number;
    readonly text: string;
    readonly at: number;
  };
  /** All output of an ended process has been matched. */
  readonly drained: boolean;
}

export interface PollerReport {
  readonly probes: readonly number[];
  readonly processes: readonly ProcessReport[];
}

/** The registry as one poller run sees it. Every call of a superseded run fails. */
export interface RegistryPort {
  hello(info: PollerHello): Promise<PollerStart>;
  pull(request: PullRequest): Promise<PollerWork>;
  commit(report: PollerReport): Promise<void>;
}

export const STOP_WORK: PollerWork = Object.freeze({
  stop: true,
  probes: [],
  added: [],
  removed: [],
  ended: [],
});
