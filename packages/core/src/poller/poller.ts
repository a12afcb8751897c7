import { stripAnsi } from '../secrets/ansi.js';
import { REDACTION_MARGIN, Redactor } from '../secrets/redactor.js';
import { candidateLines } from '../watch/line-run.js';
import type { SplitLine } from '../watch/line-splitter.js';
import type {
  MatchReport,
  PollerLimits,
  PollerReport,
  PollerWork,
  ProcessReport,
  RegistryPort,
  WatchedProcess,
} from './protocol.js';
import { type ReadMode, SpoolFollower } from './spool-follower.js';

export interface PollerContext {
  readonly runId: number;
  readonly threadId: number;
  /** Bytes a batch reads at most, across processes, before it commits. Default 1 MiB. */
  readonly batchBytes?: number;
  /** `sync` in a thread of its own; `async` on a thread it shares (never block its loop). Default `sync`. */
  readonly reads?: ReadMode;
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
  heartbeat?: { from: number; upTo: number; text: string; at: number };
  drained: boolean;
  /** The rate limiter saw a match: its state changed, so the report must go now. */
  offered: boolean;
}

/** How long a poller that is behind may hold back a commit that only moves cursors. */
const CURSOR_COMMIT_MS = 50;

/** A one-shot signal the loop waits on: an append, the registry's work, or a timer. */
class Wake {
  #resolve: (() => void) | undefined;
  #set = false;

  set(): void {
    this.#set = true;
    this.#resolve?.();
  }

  /** Resolves once set (at once if it already was), or after `ms`. */
  async wait(ms: number | undefined): Promise<void> {
    if (!this.#set) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#resolve = resolve;
        if (ms !== undefined) timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      this.#resolve = undefined;
    }
    this.#set = false;
  }
}

/**
 * A session's poller: reads each followed process's spool file from its committed cursor, woken by
 * appends; assembles lines across reads; matches watch patterns under the per-process rate limits;
 * produces heartbeats; and commits the result with its new cursors in one call, so a restarted run
 * resumes exactly. Meanwhile it long-polls the registry for what to follow, what ended, and when to
 * stop. The same code runs in a worker thread (`sync` reads) and in-thread (`async` reads).
 */
export async function runPoller(port: RegistryPort, context: PollerContext): Promise<void> {
  const now = context.now ?? Date.now;
  const mode = context.reads ?? 'sync';
  const batchBytes = context.batchBytes ?? 1 << 20;
  const start = await port.hello({ runId: context.runId, threadId: context.threadId });
  const { limits } = start;
  const redactor = new Redactor(start.redaction);
  const progress = new Int32Array(start.progress);
  const batches = progress.length - 2;
  const wake = new Wake();
  const followed = new Map<string, SpoolFollower>();
  const follow = (process: WatchedProcess): void => {
    followed.get(process.processId)?.close();
    followed.set(process.processId, new SpoolFollower(process, limits, now(), () => wake.set()));
  };
  for (const process of start.processes) follow(process);

  let work: PollerWork | undefined;
  let failure: { error: unknown } | undefined;
  const pull = (): void => {
    port.pull({}).then(
      (next) => {
        work = next;
        wake.set();
      },
      (error: unknown) => {
        failure = { error };
        wake.set();
      },
    );
  };
  pull();
  const buffer = Buffer.allocUnsafe(batchBytes);
  let probes: number[] = [];
  /** The latest report of each process not yet committed. */
  const held = new Map<string, ProcessReport>();
  let committedAt = now();
  /** The commit in flight, if any: the next batch is read and matched meanwhile; commits stay in order. */
  let committing: Promise<void> | undefined;
  const commit = async (report: PollerReport): Promise<void> => {
    await committing;
    if (failure !== undefined) throw failure.error;
    committing = port.commit(report).then(
      () => {},
      (error: unknown) => {
        failure ??= { error };
        wake.set();
      },
    );
  };
  try {
    for (;;) {
      if (failure !== undefined) throw failure.error;
      if (work !== undefined) {
        const next: PollerWork = work;
        work = undefined;
        if (next.stop) return;
        probes.push(...next.probes);
        for (const process of next.added) follow(process);
        for (const processId of next.removed) {
          followed.get(processId)?.close();
          followed.delete(processId);
        }
        for (const { processId, at } of next.ended) followed.get(processId)?.endAt(at);
        pull();
      }
      Atomics.add(progress, batches, 1);
      Atomics.store(progress, batches + 1, 1);
      const { reports, more, urgent } = await batch(followed, buffer, {
        batchBytes,
        mode,
        limits,
        redactor,
        progress,
        now,
      });
      Atomics.store(progress, batches + 1, 0);
      for (const report of reports) held.set(report.processId, report);
      // Cursors alone wait while the poller catches up, up to CURSOR_COMMIT_MS: a restarted run
      // re-reads at most that much, and nothing that matched or was offered goes unsaid.
      if (
        probes.length > 0 ||
        (held.size > 0 && (urgent || !more || now() - committedAt >= CURSOR_COMMIT_MS))
      ) {
        await commit({ probes, processes: [...held.values()] });
        probes = [];
        held.clear();
        committedAt = now();
      }
      if (more) {
        // Another batch waits: let the thread's messages (a stop) in first.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (work === undefined && failure === undefined) await wake.wait(untilNextHeartbeat(followed, now()));
    }
  } finally {
    await committing;
    for (const entry of followed.values()) entry.close();
  }
}

/** What a batch works with, besides the followed processes and the read buffer. */
interface BatchContext {
  readonly batchBytes: number;
  readonly mode: ReadMode;
  readonly limits: PollerLimits;
  /** Match lines and heartbeats leave the poller through it. */
  readonly redactor: Redactor;
  readonly progress: Int32Array;
  readonly now: () => number;
}

/** Reads what is new in every dirty spool (up to `batchBytes`), matches it, and makes due heartbeats. */
async function batch(
  followed: ReadonlyMap<string, SpoolFollower>,
  buffer: Buffer,
  context: BatchContext,
): Promise<{ reports: ProcessReport[]; more: boolean; urgent: boolean }> {
  const { batchBytes, mode, limits, redactor, progress, now } = context;
  const reports = new Map<string, MutableReport>();
  const reportOf = (entry: SpoolFollower): MutableReport => {
    let report = reports.get(entry.processId);
    if (report === undefined) {
      report = {
        processId: entry.processId,
        cursor: entry.splitter.committedOffset,
        heartbeatCursor: entry.heartbeatCursor,
        matches: [],
        drained: false,
        offered: false,
      };
      reports.set(entry.processId, report);
    }
    return report;
  };
  let budget = batchBytes;
  let more = false;
  for (const entry of followed.values()) {
    if (!entry.dirty || entry.drainReported) continue;
    entry.dirty = false;
    const before = entry.received;
    for (;;) {
      if (budget <= 0) {
        entry.dirty = true;
        more = true;
        break;
      }
      const chunk = await entry.read(buffer, budget, mode);
      if (chunk === undefined) break;
      budget -= chunk.length;
      const { lines, run } = entry.splitter.pushChunk(buffer.subarray(0, chunk.length), chunk.offset);
      if (entry.watching) {
        // Of the run, only the lines a scan hit are decoded one by one and tested.
        const candidates =
          run === undefined
            ? lines
            : [...lines, ...candidateLines(run, entry.patterns, progress, entry.slot)];
        match(entry, candidates, reportOf(entry), context);
      }
      if (entry.slot < progress.length - 2) Atomics.store(progress, entry.slot, 0);
    }
    if (entry.drained) {
      const last = entry.splitter.flush();
      if (entry.watching) match(entry, last, reportOf(entry), context);
      reportOf(entry).drained = true;
      entry.drainReported = true;
    }
    if (entry.received !== before || entry.drained)
      reportOf(entry).cursor = entry.drained ? entry.received : entry.splitter.committedOffset;
  }
  const time = now();
  for (const entry of followed.values()) {
    if (time < entry.nextHeartbeatAt) continue;
    entry.nextHeartbeatAt = time + entry.heartbeatMs;
    // A heartbeat is skipped when there was no output since the last one.
    if (entry.received > entry.heartbeatCursor) {
      const report = reportOf(entry);
      report.heartbeat = {
        from: entry.heartbeatCursor,
        upTo: entry.received,
        text: redactor.tail(
          entry.text(entry.heartbeatCursor, entry.received, limits.heartbeatChars + REDACTION_MARGIN),
          limits.heartbeatChars,
        ),
        at: time,
      };
      entry.heartbeatCursor = entry.received;
      report.heartbeatCursor = entry.received;
    }
  }
  let urgent = false;
  const processes = [...reports.values()].map(({ matches, offered, ...report }): ProcessReport => {
    urgent ||= offered || report.drained || report.heartbeat !== undefined || report.disabled !== undefined;
    return {
      ...report,
      limiter: followed.get(report.processId)?.limiter?.state,
      matches: matches.map(({ chars: _chars, ...rest }): MatchReport => rest),
    };
  });
  return { reports: processes, more, urgent };
}

/**
 * Matches lines against the process's patterns under its rate limits. A pattern sees a line without
 * its terminal escape sequences; a match carries it redacted as well, cut to the caps after that.
 */
function match(
  entry: SpoolFollower,
  lines: readonly SplitLine[],
  report: MutableReport,
  context: BatchContext,
): void {
  const { limits, redactor, progress } = context;
  const now = context.now();
  let open: MutableMatch | undefined;
  for (const line of lines) {
    const visible = stripAnsi(line.text);
    const pattern = entry.patterns.match(visible, progress, entry.slot);
    if (pattern < 0) continue;
    let redacted: string | undefined;
    const shown = (): string => {
      redacted ??= redactor.redact(visible);
      return redacted;
    };
    // Matching lines of the same batch ride along with a delivered match, up to the caps.
    if (open !== undefined && open.lines.length < limits.maxLinesPerMatch) {
      const room = limits.maxCharsPerMatch - open.chars;
      if (shown().length <= room) {
        open.lines.push(shown());
        open.chars += shown().length;
        open.truncated ||= line.truncated;
        continue;
      }
    }
    // Past the caps, a line the window would drop is cut from the match instead: truncation is
    // not suppression, so it counts as no drop and no strike. Outside a window it opens a new match.
    if (open !== undefined && entry.limiter!.windowOpen(now)) {
      open.truncated = true;
      continue;
    }
    report.offered = true;
    const verdict = entry.limiter!.offer(now);
    if (verdict.action === 'drop') {
      open = undefined;
      continue;
    }
    if (verdict.action === 'deliver') {
      const text = shown().slice(0, limits.maxCharsPerMatch);
      open = {
        offset: line.offset,
        lines: [text],
        pattern,
        suppressed: verdict.suppressed,
        hit: verdict.hit,
        truncated: line.truncated || text.length < shown().length,
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

function untilNextHeartbeat(followed: ReadonlyMap<string, SpoolFollower>, now: number): number | undefined {
  let next = Number.POSITIVE_INFINITY;
  for (const entry of followed.values()) next = Math.min(next, entry.nextHeartbeatAt);
  return next === Number.POSITIVE_INFINITY ? undefined : Math.max(0, next - now);
}
