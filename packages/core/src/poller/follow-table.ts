import type { OutputBuffer } from '../process/output-buffer.js';
import type { WatchLimiterState } from '../watch/limiter.js';
import type { WatchPattern } from '../watch/patterns.js';
import type { OutputSlice, ProcessReport, WatchedProcess } from './protocol.js';

/** A process the poller follows. */
export interface FollowSource {
  readonly processId: string;
  readonly patterns: readonly (WatchPattern | null)[];
  readonly heartbeatMs: number;
  readonly buffer: OutputBuffer;
}

interface Entry {
  readonly source: FollowSource;
  readonly slot: number;
  patterns: readonly (WatchPattern | null)[];
  /** Committed: output before this offset has been matched. */
  cursor: number;
  heartbeatCursor: number;
  limiter: WatchLimiterState | undefined;
  /** Bytes handed to the current run (reset to `cursor` for a new run). */
  sent: number;
  announced: boolean;
  ended: boolean;
  endSent: boolean;
}

/** One batch of work for the poller. */
export interface FollowBatch {
  readonly added: readonly WatchedProcess[];
  readonly removed: readonly string[];
  readonly output: readonly OutputSlice[];
}

/**
 * The processes a session's poller follows, with the committed state a restarted run resumes from
 * (cursor, heartbeat cursor, limiter) and what the current run has been sent. Each process has a
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

  follow(source: FollowSource): boolean {
    if (this.#entries.has(source.processId)) return false;
    const used = new Set([...this.#entries.values()].map((entry) => entry.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    const start = source.buffer.start;
    this.#entries.set(source.processId, {
      source,
      slot,
      patterns: source.patterns,
      cursor: start,
      heartbeatCursor: start,
      limiter: undefined,
      sent: start,
      announced: false,
      ended: false,
      endSent: false,
    });
    return true;
  }

  unfollow(processId: string): boolean {
    if (!this.#entries.delete(processId)) return false;
    this.#removed.push(processId);
    return true;
  }

  /** The process exited: its last slice carries `end`. */
  ended(processId: string): boolean {
    const entry = this.#entries.get(processId);
    if (entry === undefined) return false;
    entry.ended = true;
    return true;
  }

  /** Disables one pattern (indices stay stable); the next run compiles without it. */
  disablePattern(processId: string, pattern: number): void {
    const entry = this.#entries.get(processId);
    if (entry === undefined) return;
    entry.patterns = entry.patterns.map((p, index) => (index === pattern ? null : p));
  }

  /** A new run starts from the committed state: everything uncommitted is sent again. */
  rewind(): void {
    this.#removed = [];
    for (const entry of this.#entries.values()) {
      entry.sent = entry.cursor;
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
    for (const entry of this.#entries.values()) if (!entry.announced || pending(entry)) return true;
    return false;
  }

  /** The next batch: new and forgotten processes, and up to `budget` bytes of output. */
  take(budget: number): FollowBatch {
    const removed = this.#removed;
    this.#removed = [];
    const added: WatchedProcess[] = [];
    const output: OutputSlice[] = [];
    let left = budget;
    for (const entry of this.#entries.values()) {
      if (!entry.announced) added.push(announce(entry));
      if (left <= 0 || !pending(entry)) continue;
      const { buffer } = entry.source;
      const read = buffer.read(entry.sent, left);
      const next = read.offset + read.bytes.length;
      const end = entry.ended && next === buffer.end;
      entry.sent = next;
      entry.endSent ||= end;
      left -= read.bytes.length;
      output.push({ processId: entry.source.processId, offset: read.offset, bytes: read.bytes, end });
    }
    return { added, removed, output };
  }

  /** Applies a committed report's positions; false for a process no longer followed. */
  commit(report: ProcessReport): boolean {
    const entry = this.#entries.get(report.processId);
    if (entry === undefined) return false;
    entry.cursor = Math.max(entry.cursor, report.cursor);
    entry.heartbeatCursor = Math.max(entry.heartbeatCursor, report.heartbeatCursor);
    entry.limiter = report.limiter;
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
  return {
    processId: entry.source.processId,
    slot: entry.slot,
    patterns: entry.patterns,
    cursor: entry.cursor,
    limiter: entry.limiter,
    heartbeatMs: entry.source.heartbeatMs,
    heartbeatCursor: entry.heartbeatCursor,
  };
}

function pending(entry: Entry): boolean {
  return entry.sent < entry.source.buffer.end || (entry.ended && !entry.endSent);
}
