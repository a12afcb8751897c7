import { VigilError } from '../errors.js';
import type { RedactionRules } from '../secrets/redactor.js';
import { type FollowResume, type FollowSource, FollowTable } from './follow-table.js';
import type { PollerTarget } from './host.js';
import {
  type PollerLimits,
  type PollerReport,
  type PollerWork,
  type ProcessReport,
  type PullRequest,
  type RegistryPort,
  STOP_WORK,
} from './protocol.js';
import { Watchdog } from './watchdog.js';

export interface ProbeResult {
  readonly runId: number;
  readonly threadId: number;
}

/** The pattern a stuck poller run is in, if its progress cells tell. */
export type StuckCulprit = { readonly processId: string; readonly pattern: number } | undefined;

/** What the link's owner (the session) learns from the poller. */
export interface PollerLinkHandlers {
  /** A committed report for one process: apply it in one step, with the cursor it reached. */
  report(report: ProcessReport): void;
  /** The poller has not committed its batch within `matchTimeoutMs`. */
  stuck(culprit: StuckCulprit): void;
}

export interface PollerLinkOptions {
  readonly limits: PollerLimits;
  readonly redaction: RedactionRules;
  readonly matchTimeoutMs: number;
  /** Cells in the progress buffer: at most this many processes are followed at once. */
  readonly slots: number;
}

interface Probe {
  readonly resolve: (result: ProbeResult) => void;
  readonly reject: (error: VigilError) => void;
}

interface PendingPull {
  readonly resolve: (work: PollerWork) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * The registry's end of one session's poller. It owns everything the poller needs to resume (the
 * followed processes with their committed cursors and limiter state, probes), so a poller run is
 * disposable: a restarted run continues from here. Only the current run may call in; calls of a
 * superseded run fail with `ERR_POLLER`. A host whose poller runs in another thread checks each call
 * first (`checkedRegistry`).
 */
export class PollerLink implements PollerTarget {
  readonly sessionId: string;
  readonly #options: PollerLinkOptions;
  readonly #handlers: PollerLinkHandlers;
  readonly #follows = new FollowTable();
  readonly #watchdog: Watchdog;
  #runId = 0;
  #threadId = 0;
  #stopping = false;
  #pull: PendingPull | undefined;
  #probeSeq = 0;
  readonly #probes = new Map<number, Probe>();
  #queuedProbes: number[] = [];
  #inFlightProbes: number[] = [];

  constructor(sessionId: string, options: PollerLinkOptions, handlers: PollerLinkHandlers) {
    this.sessionId = sessionId;
    this.#options = options;
    this.#handlers = handlers;
    this.#watchdog = new Watchdog(options.matchTimeoutMs, (cells) =>
      this.#handlers.stuck(this.#follows.culprit(cells)),
    );
  }

  get runId(): number {
    return this.#runId;
  }

  get threadId(): number {
    return this.#threadId;
  }

  /** Opens the port for run `runId`, superseding any earlier run. Uncommitted work is re-sent. */
  openRun(runId: number): RegistryPort {
    this.#endPull(STOP_WORK);
    this.#runId = runId;
    this.#threadId = 0;
    this.#queuedProbes = [...this.#inFlightProbes, ...this.#queuedProbes];
    this.#inFlightProbes = [];
    this.#follows.rewind();
    const check = (): void => {
      if (this.#runId !== runId) {
        throw new VigilError('ERR_POLLER', `poller run ${runId} of session ${this.sessionId} was superseded`);
      }
    };
    return {
      hello: async (info) => {
        check();
        this.#threadId = info.threadId;
        return {
          sessionId: this.sessionId,
          runId,
          limits: this.#options.limits,
          redaction: this.#options.redaction,
          processes: this.#follows.announceAll(),
          progress: this.#watchdog.renew(this.#options.slots),
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
    if (this.#follows.follow(source)) this.#wake();
  }

  /** The process ended, its output at `at` bytes: the poller drains it and reports `drained`. */
  ended(processId: string, at: number): void {
    if (this.#follows.ended(processId, at)) this.#wake();
  }

  unfollow(processId: string): void {
    if (this.#follows.unfollow(processId)) this.#wake();
  }

  isFollowing(processId: string): boolean {
    return this.#follows.has(processId);
  }

  /** Committed position of a followed process: output before it has been matched. */
  cursorOf(processId: string): number | undefined {
    return this.#follows.cursorOf(processId);
  }

  /** Committed heartbeat clock and limiter of a followed process, journaled with its cursor. */
  resumeOf(processId: string): FollowResume | undefined {
    return this.#follows.resumeOf(processId);
  }

  /** Disables one pattern of a process (it made the poller stuck); takes effect in the next run. */
  disablePattern(processId: string, pattern: number): void {
    this.#follows.disablePattern(processId, pattern);
  }

  /** Run `runId` is over (its thread died or it returned): drop its pending pull. */
  runEnded(runId: number): void {
    if (runId !== this.#runId) return;
    this.#endPull(STOP_WORK);
  }

  /** Makes the current run's pending (or next) pull answer `stop`. */
  requestStop(): void {
    this.#stopping = true;
    this.#endPull(STOP_WORK);
  }

  /** Checks whether the current run is stuck on a batch (called periodically by the registry). */
  inspect(now: number): void {
    if (!this.#stopping && this.#threadId !== 0) this.#watchdog.inspect(now);
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

  /** Settles everything still waiting on this link. Called once the poller has stopped. */
  dispose(): void {
    this.#stopping = true;
    this.#endPull(STOP_WORK);
    if (this.#probes.size > 0) {
      const error = new VigilError('ERR_SESSION_CLOSED', `session ${this.sessionId} is closed`);
      for (const probe of this.#probes.values()) probe.reject(error);
      this.#probes.clear();
    }
    this.#queuedProbes = [];
    this.#inFlightProbes = [];
    this.#follows.clear();
  }

  #hasWork(): boolean {
    return this.#queuedProbes.length > 0 || this.#follows.hasWork();
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
    this.#inFlightProbes.push(...probes);
    this.#queuedProbes = [];
    return { stop: false, probes, ...this.#follows.take() };
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
    for (const processReport of report.processes) {
      if (this.#follows.commit(processReport) && !this.#stopping) this.#handlers.report(processReport);
    }
    for (const id of report.probes) {
      const probe = this.#probes.get(id);
      this.#probes.delete(id);
      this.#inFlightProbes = this.#inFlightProbes.filter((p) => p !== id);
      probe?.resolve({ runId: this.#runId, threadId: this.#threadId });
    }
  }
}
