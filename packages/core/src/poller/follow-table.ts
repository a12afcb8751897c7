import type { WatchLimiterState } from '../watch/limiter.js';
import type { WatchPattern } from '../watch/patterns.js';
import type { ProcessEnd, ProcessReport, WatchedProcess } from './protocol.js';

/** A process the poller follows: its spool file and the cells that tell what was dropped from it. */
export interface FollowSource {
  readonly processId: string;
  readonly patterns: readonly (WatchPattern | null)[];
  readonly heartbeatMs: number;
  readonly spool: string;
  readonly drops: SharedArrayBuffer;
  /** Output before this offset was matched already (a process adopted after a restart). Default 0. */
  readonly cursor?: number;
  /** The rest of the committed state to resume from (a process adopted after a restart). */
  readonly resume?: FollowResume;
}

/**
 * What a follow resumes from besides its cursor: the heartbeat clock and the rate limiter. Plain
 * JSON: the journal keeps it with the cursor, so a restarted vigil neither resets a disabled or
 * rate-limited watch nor restarts the heartbeat schedule.
 */
export interface FollowResume {
  /** Output before this offset was reported by a heartbeat. */
  readonly heartbeatCursor: number;
  /** When the heartbeat schedule last fired (the poller's clock): the next is due `heartbeatMs` after it. */
  readonly heartbeatAt: number | null;
  readonly limiter: WatchLimiterState | null;
}

interface Entry {
  readonly source: FollowSource;
  readonly slot: number;
  patterns: readonly (WatchPattern | null)[];
  /** Committed: output before this offset has been matched. */
  cursor: number;
  heartbeatCursor: number;
  heartbeatAt: number | null;
  limiter: WatchLimiterState | null;
  /** The process ended: its output ends here. */
  end: number | undefined;
  announced: boolean;
  endSent: boolean;
}

/** What the poller must learn next about the processes it follows. */
export interface FollowBatch {
  readonly added: readonly WatchedProcess[];
  readonly removed: readonly string[];
  readonly ended: readonly ProcessEnd[];
}

/**
 * The processes a session's poller follows, with the committed state a restarted run resumes from
 * (cursor, heartbeat cursor and clock, limiter) and what the current run has been told. Each process has a
 * slot: its cell in the run's progress buffer.
 */
export class FollowTable {
  readonly #entries = new Map<string, Entry>();
  /** Processes unfollowed since the last batch: the poller forgets them. */
  #removed: string[] = [];

  has(processId: string): boolean {
    return this.#entries.has(processId);
  }

  /** Committed position of a followed process: output before it has been matched. */
  cursorOf(processId: string): number | undefined {
    return this.#entries.get(processId)?.cursor;
  }

  /** Committed heartbeat clock and limiter of a followed process. */
  resumeOf(processId: string): FollowResume | undefined {
    const entry = this.#entries.get(processId);
    if (entry === undefined) return undefined;
    const { heartbeatCursor, heartbeatAt, limiter } = entry;
    return { heartbeatCursor, heartbeatAt, limiter };
  }

  follow(source: FollowSource): boolean {
    if (this.#entries.has(source.processId)) return false;
    const used = new Set([...this.#entries.values()].map((entry) => entry.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    this.#entries.set(source.processId, {
      source,
      slot,
      patterns: source.patterns,
      cursor: source.cursor ?? 0,
      heartbeatCursor: source.resume?.heartbeatCursor ?? source.cursor ?? 0,
      heartbeatAt: source.resume?.heartbeatAt ?? null,
      limiter: source.resume?.limiter ?? null,
      end: undefined,
      announced: false,
      endSent: false,
    });
    return true;
  }

  unfollow(processId: string): boolean {
    if (!this.#entries.delete(processId)) return false;
    this.#removed.push(processId);
    return true;
  }

  /** The process ended: its output ends at `at`. */
  ended(processId: string, at: number): boolean {
    const entry = this.#entries.get(processId);
    if (entry === undefined) return false;
    entry.end = at;
    return true;
  }

  /** Disables one pattern (indices stay stable); the next run compiles without it. */
  disablePattern(processId: string, pattern: number): void {
    const entry = this.#entries.get(processId);
    if (entry === undefined) return;
    entry.patterns = entry.patterns.map((p, index) => (index === pattern ? null : p));
  }

  /** A new run starts from the committed state: it reads again what was not committed. */
  rewind(): void {
    this.#removed = [];
    for (const entry of this.#entries.values()) {
      entry.announced = false;
      entry.endSent = false;
    }
  }

  /** Every followed process, announced to a new run. */
  announceAll(): WatchedProcess[] {
    return [...this.#entries.values()].map((entry) => announce(entry));
  }

  hasWork(): boolean {
    if (this.#removed.length > 0) return true;
    for (const entry of this.#entries.values()) {
      if (!entry.announced || (entry.end !== undefined && !entry.endSent)) return true;
    }
    return false;
  }

  /** What the run must learn next: new, forgotten and ended processes. */
  take(): FollowBatch {
    const removed = this.#removed;
    this.#removed = [];
    const added: WatchedProcess[] = [];
    const ended: ProcessEnd[] = [];
    for (const entry of this.#entries.values()) {
      if (!entry.announced) added.push(announce(entry));
      else if (entry.end !== undefined && !entry.endSent) {
        entry.endSent = true;
        ended.push({ processId: entry.source.processId, at: entry.end });
      }
    }
    return { added, removed, ended };
  }

  /** Applies a committed report's positions; false for a process no longer followed. */
  commit(report: ProcessReport): boolean {
    const entry = this.#entries.get(report.processId);
    if (entry === undefined) return false;
    entry.cursor = Math.max(entry.cursor, report.cursor);
    entry.heartbeatCursor = Math.max(entry.heartbeatCursor, report.heartbeatCursor);
    entry.limiter = report.limiter ?? null;
    if (report.heartbeat !== undefined) entry.heartbeatAt = report.heartbeat.at;
    return true;
  }

  /** The process and pattern a stuck run is in, read from its progress cells. */
  culprit(cells: Int32Array): { readonly processId: string; readonly pattern: number } | undefined {
    for (const entry of this.#entries.values()) {
      const mark = entry.slot < cells.length ? Atomics.load(cells, entry.slot) : 0;
      if (mark > 0) return { processId: entry.source.processId, pattern: mark - 1 };
    }
    return undefined;
  }

  clear(): void {
    this.#entries.clear();
    this.#removed = [];
  }
}

function announce(entry: Entry): WatchedProcess {
  entry.announced = true;
  entry.endSent = entry.end !== undefined;
  return {
    processId: entry.source.processId,
    spool: entry.source.spool,
    drops: entry.source.drops,
    slot: entry.slot,
    patterns: entry.patterns,
    cursor: entry.cursor,
    limiter: entry.limiter ?? undefined,
    heartbeatMs: entry.source.heartbeatMs,
    heartbeatCursor: entry.heartbeatCursor,
    ...(entry.heartbeatAt === null ? {} : { heartbeatAt: entry.heartbeatAt }),
    ...(entry.end === undefined ? {} : { end: entry.end }),
  };
}
