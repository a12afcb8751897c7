/**
 * What a session's poller and the registry say to each other: the three calls of `RegistryPort`,
 * made by the poller (over Comlink in the worker host, directly in the in-thread host). Everything
 * here is plain data so it survives a structured clone; the registry validates what a poller sends
 * (`protocol-schema.ts`).
 *
 * - `hello(PollerHello) → PollerStart`: a new run announces itself and gets what to follow.
 * - `pull(PullRequest) → PollerWork`: a long-poll for the next batch (or `stop`).
 * - `commit(PollerReport)`: the batch's results with the cursors they reach, applied atomically.
 */
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
}

/** A process as its session's poller follows it. Positions are absolute output byte offsets. */
export interface WatchedProcess {
  readonly processId: string;
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
}

export interface PollerHello {
  readonly runId: number;
  readonly threadId: number;
}

export interface PollerStart {
  readonly sessionId: string;
  readonly runId: number;
  readonly limits: PollerLimits;
  readonly processes: readonly WatchedProcess[];
  /**
   * Cell `slot` holds 1 + the index of the regex the poller is running for that process (0: none).
   * The registry reads it when a poller is stuck to name the pattern at fault.
   */
  readonly progress: SharedArrayBuffer;
}

export interface PullRequest {
  /** Resolve with empty work after this long if nothing arrives (heartbeats). Omit to wait for work. */
  readonly waitMs?: number;
}

export interface OutputSlice {
  readonly processId: string;
  /** Absolute offset of `bytes[0]`; beyond the poller's position when the ring buffer evicted bytes. */
  readonly offset: number;
  readonly bytes: Uint8Array;
  /** The process has exited and this slice reaches the end of its output. */
  readonly end: boolean;
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
  readonly output: readonly OutputSlice[];
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
  /** A heartbeat is due, covering output up to `upTo`. */
  readonly heartbeat?: { readonly upTo: number };
  /** All output of an exited process has been matched. */
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
  output: [],
});
