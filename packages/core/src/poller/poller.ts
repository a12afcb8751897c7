import { WatchLimiter } from '../watch/limiter.js';
import { LineSplitter, type SplitLine } from '../watch/line-splitter.js';
import { CompiledPatterns } from '../watch/patterns.js';
import type {
  MatchReport,
  OutputSlice,
  PollerLimits,
  ProcessReport,
  RegistryPort,
  WatchedProcess,
} from './protocol.js';

export interface PollerContext {
  readonly runId: number;
  readonly threadId: number;
  readonly now?: () => number;
}

interface MutableMatch {
  offset: number;
  lines: string[];
  pattern: number;
  suppressed: number;
  hit: number;
  truncated: boolean;
  chars: number;
}

interface MutableReport {
  processId: string;
  cursor: number;
  heartbeatCursor: number;
  matches: MutableMatch[];
  disabled?: { reason: 'strikes' | 'lifetime'; suppressed: number };
  heartbeat?: { upTo: number };
  drained: boolean;
}

/** One followed process: its line assembly, patterns, rate limiter and heartbeat clock. */
class Followed {
  readonly processId: string;
  readonly slot: number;
  readonly splitter: LineSplitter;
  readonly patterns: CompiledPatterns;
  readonly limiter: WatchLimiter | undefined;
  readonly heartbeatMs: number;
  heartbeatCursor: number;
  nextHeartbeatAt: number;
  received: number;
  watching: boolean;

  constructor(process: WatchedProcess, limits: PollerLimits, now: number) {
    this.processId = process.processId;
    this.slot = process.slot;
    this.splitter = new LineSplitter({ maxLineLength: limits.maxLineLength, startOffset: process.cursor });
    this.patterns = new CompiledPatterns(process.patterns);
    const watched = process.patterns.some((pattern) => pattern !== null);
    this.limiter = watched ? new WatchLimiter(limits, process.limiter) : undefined;
    this.watching = watched && this.limiter?.disabled === null;
    this.heartbeatMs = process.heartbeatMs;
    this.heartbeatCursor = process.heartbeatCursor;
    this.nextHeartbeatAt = process.heartbeatMs > 0 ? now + process.heartbeatMs : Number.POSITIVE_INFINITY;
    this.received = process.cursor;
  }

  report(): MutableReport {
    return {
      processId: this.processId,
      cursor: this.splitter.committedOffset,
      heartbeatCursor: this.heartbeatCursor,
      matches: [],
      drained: false,
    };
  }
}

/**
 * A session's poller: pulls output from the registry, assembles lines across chunk boundaries,
 * matches watch patterns under the per-process rate limits, produces heartbeats, and commits the
 * result with its new cursors in one call, so a restarted run resumes exactly. The same code runs
 * in a worker thread and in-thread.
 */
export async function runPoller(port: RegistryPort, context: PollerContext): Promise<void> {
  const now = context.now ?? Date.now;
  const start = await port.hello({ runId: context.runId, threadId: context.threadId });
  const { limits } = start;
  const progress = new Int32Array(start.progress);
  const followed = new Map<string, Followed>();
  for (const process of start.processes)
    followed.set(process.processId, new Followed(process, limits, now()));
  for (;;) {
    const work = await port.pull({ waitMs: untilNextHeartbeat(followed, now()) });
    if (work.stop) return;
    for (const process of work.added) followed.set(process.processId, new Followed(process, limits, now()));
    for (const processId of work.removed) followed.delete(processId);

    const reports = new Map<string, MutableReport>();
    const reportOf = (entry: Followed): MutableReport => {
      let report = reports.get(entry.processId);
      if (report === undefined) {
        report = entry.report();
        reports.set(entry.processId, report);
      }
      return report;
    };
    for (const slice of work.output) {
      const entry = followed.get(slice.processId);
      if (entry !== undefined) consume(entry, slice, reportOf(entry), limits, progress, now());
    }
    const time = now();
    for (const entry of followed.values()) {
      if (time < entry.nextHeartbeatAt) continue;
      entry.nextHeartbeatAt = time + entry.heartbeatMs;
      // A heartbeat is skipped when there was no output since the last one.
      if (entry.received > entry.heartbeatCursor) {
        entry.heartbeatCursor = entry.received;
        const report = reportOf(entry);
        report.heartbeat = { upTo: entry.received };
        report.heartbeatCursor = entry.received;
      }
    }
    const processes = [...reports.values()].map(
      ({ matches, ...report }): ProcessReport => ({
        ...report,
        limiter: followed.get(report.processId)?.limiter?.state,
        matches: matches.map(({ chars: _chars, ...match }): MatchReport => match),
      }),
    );
    await port.commit({ probes: work.probes, processes });
  }
}

function consume(
  entry: Followed,
  slice: OutputSlice,
  report: MutableReport,
  limits: PollerLimits,
  progress: Int32Array,
  now: number,
): void {
  const lines = entry.splitter.push(slice.bytes, slice.offset);
  if (slice.end) lines.push(...entry.splitter.flush());
  entry.received = Math.max(entry.received, slice.offset + slice.bytes.length);
  if (entry.watching) match(entry, lines, report, limits, progress, now);
  if (entry.slot < progress.length) Atomics.store(progress, entry.slot, 0);
  report.cursor = slice.end ? entry.received : entry.splitter.committedOffset;
  report.drained = slice.end;
}

function match(
  entry: Followed,
  lines: readonly SplitLine[],
  report: MutableReport,
  limits: PollerLimits,
  progress: Int32Array,
  now: number,
): void {
  let open: MutableMatch | undefined;
  for (const line of lines) {
    const pattern = entry.patterns.match(line.text, progress, entry.slot);
    if (pattern < 0) continue;
    // Matching lines of the same batch ride along with a delivered match, up to the caps.
    if (open !== undefined && open.lines.length < limits.maxLinesPerMatch) {
      const room = limits.maxCharsPerMatch - open.chars;
      if (line.text.length <= room) {
        open.lines.push(line.text);
        open.chars += line.text.length;
        open.truncated ||= line.truncated;
        continue;
      }
    }
    const verdict = entry.limiter!.offer(now);
    if (verdict.action === 'drop') {
      open = undefined;
      continue;
    }
    if (verdict.action === 'deliver') {
      const text = line.text.slice(0, limits.maxCharsPerMatch);
      open = {
        offset: line.offset,
        lines: [text],
        pattern,
        suppressed: verdict.suppressed,
        hit: verdict.hit,
        truncated: line.truncated || text.length < line.text.length,
        chars: text.length,
      };
      report.matches.push(open);
      if (verdict.disable === undefined) continue;
      report.disabled = { reason: verdict.disable.reason, suppressed: 0 };
    } else if (verdict.action === 'disable') {
      report.disabled = { reason: verdict.reason, suppressed: verdict.suppressed };
    }
    entry.watching = false;
    return;
  }
}

function untilNextHeartbeat(followed: ReadonlyMap<string, Followed>, now: number): number | undefined {
  let next = Number.POSITIVE_INFINITY;
  for (const entry of followed.values()) next = Math.min(next, entry.nextHeartbeatAt);
  return next === Number.POSITIVE_INFINITY ? undefined : Math.max(0, next - now);
}
