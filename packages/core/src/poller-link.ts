import { VigilError } from './errors.js';
import type { OutputBuffer } from './output-buffer.js';
import {
  type OutputSlice,
  type PollerFault,
  type PollerLimits,
  type PollerReport,
  type PollerWork,
  type ProcessReport,
  type PullRequest,
  type RegistryPort,
  STOP_WORK,
  type WatchedProcess,
} from './poller-protocol.js';
import type { WatchLimiterState } from './watch-limiter.js';
import type { WatchPattern } from './watch-patterns.js';

export interface ProbeResult {
  readonly runId: number;
  readonly threadId: number;
}

/** What the registry learns from its session's poller. */
export interface PollerLinkHandlers {
  /** A committed report for one process: applied atomically, with the cursor it reached. */
  report(report: ProcessReport): void;
  /** The poller has not committed its batch within `matchTimeoutMs`. */
  stuck(culprit: { readonly processId: string; readonly pattern: number } | undefined): void;
}

export interface PollerLinkOptions {
  readonly limits: PollerLimits;
  readonly matchTimeoutMs: number;
  /** Cells in the progress buffer: at most this many processes are followed at once. */
  readonly slots: number;
  /** Bytes of output handed to the poller per pull. */
  readonly batchBytes?: number;
}

/** A process the link feeds to the poller. */
export interface FollowSource {
  readonly processId: string;
  readonly patterns: readonly (WatchPattern | null)[];
  readonly heartbeatMs: number;
  readonly buffer: OutputBuffer;
}

interface Followed {
  readonly source: FollowSource;
  readonly slot: number;
  patterns: readonly (WatchPattern | null)[];
  cursor: number;
  heartbeatCursor: number;
  limiter: WatchLimiterState | undefined;
  /** Bytes handed to the current run (reset to `cursor` for a new run). */
  sent: number;
  announced: boolean;
  ended: boolean;
  endSent: boolean;
}

interface Probe {
  readonly resolve: (result: ProbeResult) => void;
  readonly reject: (error: VigilError) => void;
}

interface PendingPull {
  readonly resolve: (work: PollerWork) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

const NO_HANDLERS: PollerLinkHandlers = { report: () => undefined, stuck: () => undefined };
const DEFAULT_LIMITS: PollerLinkOptions = {
  limits: {
    cooldownMs: 15_000,
    strikeLimit: 3,
    lifetimeMaxHits: 8,
    maxLineLength: 4096,
    maxLinesPerMatch: 20,
    maxCharsPerMatch: 2000,
  },
  matchTimeoutMs: 1000,
  slots: 64,
};

/**
 * The registry's end of one session's poller. It owns everything the poller needs to resume
 * (followed processes, committed cursors and limiter state, probes), so a poller run is
 * disposable: a restarted run continues from here. Only the current run may call in; calls of a
 * superseded run fail with `ERR_POLLER`.
 */
export class PollerLink {
  readonly sessionId: string;
  readonly #options: PollerLinkOptions;
  #handlers: PollerLinkHandlers = NO_HANDLERS;
  #runId = 0;
  #threadId = 0;
  #stopping = false;
  #pull: PendingPull | undefined;
  #progress = new SharedArrayBuffer(4);
  #watchdog: NodeJS.Timeout | undefined;
  #probeSeq = 0;
  readonly #probes = new Map<number, Probe>();
  #queuedProbes: number[] = [];
  #inFlightProbes: number[] = [];
  #faults: PollerFault[] = [];
  #faultsTaken: (() => void)[] = [];
  readonly #followed = new Map<string, Followed>();
  #removed: string[] = [];

  constructor(sessionId: string, options: PollerLinkOptions = DEFAULT_LIMITS) {
    this.sessionId = sessionId;
    this.#options = options;
  }

  set handlers(handlers: PollerLinkHandlers) {
    this.#handlers = handlers;
  }

  get runId(): number {
    return this.#runId;
  }

  get threadId(): number {
    return this.#threadId;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Opens the port for run `runId`, superseding any earlier run. Uncommitted work is re-sent. */
  openRun(runId: number): RegistryPort {
    this.#endPull(STOP_WORK);
    this.#clearWatchdog();
    this.#runId = runId;
    this.#threadId = 0;
    this.#queuedProbes = [...this.#inFlightProbes, ...this.#queuedProbes];
    this.#inFlightProbes = [];
    this.#removed = [];
    for (const entry of this.#followed.values()) {
      entry.sent = entry.cursor;
      entry.announced = false;
      entry.endSent = false;
    }
    const check = (): void => {
      if (this.#runId !== runId) {
        throw new VigilError('ERR_POLLER', `poller run ${runId} of session ${this.sessionId} was superseded`);
      }
    };
    return {
      hello: async (info) => {
        check();
        this.#threadId = info.threadId;
        this.#progress = new SharedArrayBuffer(4 * this.#options.slots);
        const processes = [...this.#followed.values()].map((entry) => this.#announce(entry));
        return {
          sessionId: this.sessionId,
          runId,
          limits: this.#options.limits,
          processes,
          progress: this.#progress,
        };
      },
      pull: async (request) => {
        check();
        return this.#takeWork(request);
      },
      commit: async (report) => {
        check();
        this.#commit(report);
      },
    };
  }

  /** Starts feeding a process's output to the poller. */
  follow(source: FollowSource): void {
    if (this.#followed.has(source.processId)) return;
    const used = new Set([...this.#followed.values()].map((entry) => entry.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    this.#followed.set(source.processId, {
      source,
      slot,
      patterns: source.patterns,
      cursor: source.buffer.start,
      heartbeatCursor: source.buffer.start,
      limiter: undefined,
      sent: source.buffer.start,
      announced: false,
      ended: false,
      endSent: false,
    });
    this.#wake();
  }

  /** New output is in the process's buffer. */
  outputAvailable(processId: string): void {
    if (this.#pull !== undefined && this.#followed.has(processId)) this.#wake();
  }

  /** The process exited: the poller drains its remaining output and reports `drained`. */
  ended(processId: string): void {
    const entry = this.#followed.get(processId);
    if (entry === undefined) return;
    entry.ended = true;
    this.#wake();
  }

  /** Stops following a process. */
  unfollow(processId: string): void {
    if (!this.#followed.delete(processId)) return;
    this.#removed.push(processId);
    this.#wake();
  }

  isFollowing(processId: string): boolean {
    return this.#followed.has(processId);
  }

  /** Committed position of a followed process: output before it has been matched. */
  cursorOf(processId: string): number | undefined {
    return this.#followed.get(processId)?.cursor;
  }

  /** Disables one pattern of a process (it made the poller stuck); takes effect in the next run. */
  disablePattern(processId: string, pattern: number): void {
    const entry = this.#followed.get(processId);
    if (entry === undefined) return;
    entry.patterns = entry.patterns.map((p, index) => (index === pattern ? null : p));
  }

  /** Run `runId` is over (its thread died or it returned): drop its pending pull and watchdog. */
  runEnded(runId: number): void {
    if (runId !== this.#runId) return;
    this.#clearWatchdog();
    this.#endPull(STOP_WORK);
  }

  /** Makes the current run's pending (or next) pull answer `stop`. */
  requestStop(): void {
    this.#stopping = true;
    this.#clearWatchdog();
    this.#endPull(STOP_WORK);
  }

  /** Resolves once the poller has processed a round trip: proof that it runs, and where. */
  probe(): Promise<ProbeResult> {
    if (this.#stopping) {
      return Promise.reject(new VigilError('ERR_SESSION_CLOSED', `session ${this.sessionId} is closing`));
    }
    const id = ++this.#probeSeq;
    return new Promise<ProbeResult>((resolve, reject) => {
      this.#probes.set(id, { resolve, reject });
      this.#queuedProbes.push(id);
      this.#wake();
    });
  }

  /** Queues a test-only fault; resolves once a pull has handed it to the poller. */
  injectFault(fault: PollerFault): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#faults.push(fault);
      this.#faultsTaken.push(resolve);
      this.#wake();
    });
  }

  /** Settles everything still waiting on this link. Called once the poller has stopped. */
  dispose(): void {
    this.#stopping = true;
    this.#clearWatchdog();
    this.#endPull(STOP_WORK);
    const error = new VigilError('ERR_SESSION_CLOSED', `session ${this.sessionId} is closed`);
    for (const probe of this.#probes.values()) probe.reject(error);
    this.#probes.clear();
    this.#queuedProbes = [];
    this.#inFlightProbes = [];
    for (const taken of this.#faultsTaken.splice(0)) taken();
    this.#faults = [];
    this.#followed.clear();
  }

  #announce(entry: Followed): WatchedProcess {
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

  #pendingOutput(entry: Followed): boolean {
    return entry.sent < entry.source.buffer.end || (entry.ended && !entry.endSent);
  }

  #hasWork(): boolean {
    if (this.#queuedProbes.length > 0 || this.#faults.length > 0 || this.#removed.length > 0) return true;
    for (const entry of this.#followed.values()) {
      if (!entry.announced || this.#pendingOutput(entry)) return true;
    }
    return false;
  }

  #takeWork(request: PullRequest): Promise<PollerWork> {
    if (this.#stopping) return Promise.resolve(STOP_WORK);
    if (this.#hasWork()) return Promise.resolve(this.#drain());
    this.#endPull(STOP_WORK);
    return new Promise<PollerWork>((resolve) => {
      const timer =
        request.waitMs === undefined
          ? undefined
          : setTimeout(() => this.#endPull(this.#drain()), Math.max(0, request.waitMs));
      this.#pull = { resolve, timer };
    });
  }

  #drain(): PollerWork {
    const probes = this.#queuedProbes;
    const faults = this.#faults;
    const removed = this.#removed;
    this.#inFlightProbes.push(...probes);
    this.#queuedProbes = [];
    this.#faults = [];
    this.#removed = [];
    for (const taken of this.#faultsTaken.splice(0)) taken();
    const added: WatchedProcess[] = [];
    const output: OutputSlice[] = [];
    let budget = this.#options.batchBytes ?? 1 << 20;
    for (const entry of this.#followed.values()) {
      if (!entry.announced) added.push(this.#announce(entry));
      if (budget <= 0 || !this.#pendingOutput(entry)) continue;
      const { buffer } = entry.source;
      const read = buffer.read(entry.sent, budget);
      const next = read.offset + read.bytes.length;
      const end = entry.ended && next === buffer.end;
      entry.sent = next;
      entry.endSent ||= end;
      budget -= read.bytes.length;
      output.push({ processId: entry.source.processId, offset: read.offset, bytes: read.bytes, end });
    }
    if (output.length > 0) this.#armWatchdog();
    return { stop: false, probes, faults, added, removed, output };
  }

  #armWatchdog(): void {
    this.#clearWatchdog();
    const runId = this.#runId;
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      if (this.#runId !== runId || this.#stopping) return;
      this.#handlers.stuck(this.#culprit());
    }, this.#options.matchTimeoutMs);
  }

  #clearWatchdog(): void {
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** Reads the progress buffer of a stuck run: which process's regex it is in. */
  #culprit(): { processId: string; pattern: number } | undefined {
    const cells = new Int32Array(this.#progress);
    for (const entry of this.#followed.values()) {
      const mark = entry.slot < cells.length ? Atomics.load(cells, entry.slot) : 0;
      if (mark > 0) return { processId: entry.source.processId, pattern: mark - 1 };
    }
    return undefined;
  }

  #wake(): void {
    if (this.#pull !== undefined && this.#hasWork()) this.#endPull(this.#drain());
  }

  #endPull(work: PollerWork): void {
    const pull = this.#pull;
    if (pull === undefined) return;
    this.#pull = undefined;
    if (pull.timer !== undefined) clearTimeout(pull.timer);
    pull.resolve(work);
  }

  #commit(report: PollerReport): void {
    this.#clearWatchdog();
    for (const processReport of report.processes) {
      const entry = this.#followed.get(processReport.processId);
      if (entry === undefined) continue;
      entry.cursor = Math.max(entry.cursor, processReport.cursor);
      entry.heartbeatCursor = Math.max(entry.heartbeatCursor, processReport.heartbeatCursor);
      entry.limiter = processReport.limiter;
      if (!this.#stopping) this.#handlers.report(processReport);
    }
    for (const id of report.probes) {
      const probe = this.#probes.get(id);
      this.#probes.delete(id);
      this.#inFlightProbes = this.#inFlightProbes.filter((p) => p !== id);
      probe?.resolve({ runId: this.#runId, threadId: this.#threadId });
    }
  }
}
