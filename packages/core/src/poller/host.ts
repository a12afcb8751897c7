import type { VigilError } from '../errors.js';
import type { RegistryPort } from './protocol.js';

/**
 * `moved`: the run ended for another session's fault (its shared thread was ended for a stuck
 * neighbour) or to move to other threads; it restarts at once, with no back-off.
 */
export type PollerExitReason = 'stopped' | 'terminated' | 'crashed' | 'moved';

export interface PollerStartedInfo {
  readonly sessionId: string;
  readonly runId: number;
  readonly threadId: number;
  /** True when this run replaces one that crashed or was terminated. */
  readonly restart: boolean;
}

export interface PollerExitedInfo {
  readonly sessionId: string;
  readonly runId: number;
  readonly threadId: number;
  readonly reason: PollerExitReason;
  readonly error?: VigilError;
  /** The host starts the next run after this back-off (absent: no next run, or none known). */
  readonly restartInMs?: number;
}

/** How a host reports its pollers' lives to the registry that owns it. */
export interface PollerObserver {
  started(info: PollerStartedInfo): void;
  exited(info: PollerExitedInfo): void;
  /** A background failure with no caller to reject. */
  error?(error: VigilError): void;
}

export interface PollerStopResult {
  /** True when the poller did not stop cooperatively and its thread was terminated. */
  readonly forced: boolean;
}

export interface PollerHostStats {
  readonly threads: number;
  readonly pollers: number;
}

/**
 * A session's poller as a host sees it: the registry's end of the poller, which outlives every run.
 * A host opens a port per run, tells when a run ended, and asks the current run to stop.
 */
export interface PollerTarget {
  readonly sessionId: string;
  /** The port for run `runId` (it supersedes every earlier run of the session). */
  openRun(runId: number): RegistryPort;
  /** Run `runId` is over: whatever it waited on is released. */
  runEnded(runId: number): void;
  /** The current run's pending (or next) pull answers `stop`. */
  requestStop(): void;
}

/**
 * Runs sessions' pollers. A host serves exactly one vigil instance. `@vigil/core` ships an
 * in-thread host; `@vigil/worker` runs pollers in pooled worker threads.
 */
export interface PollerHost {
  readonly kind: string;
  attach(observer: PollerObserver): void;
  /** Starts the session's poller and resolves once it runs. Crashed runs are restarted by the host. */
  start(target: PollerTarget): Promise<void>;
  /** Resolves once no code of the session's poller runs: cooperatively within `timeoutMs`, else forced. */
  stop(sessionId: string, options: { readonly timeoutMs: number }): Promise<PollerStopResult>;
  /**
   * Ends the current run by force (it is stuck) and starts a new one. A host with shared threads
   * quarantines the session: its poller runs on isolated threads from then on.
   */
  restart(sessionId: string, reason: string): Promise<void>;
  /**
   * Runs the session's poller on isolated threads from now on (its patterns may backtrack), before
   * it follows anything new. Hosts without shared threads ignore it.
   */
  isolate?(sessionId: string): void;
  stats(): PollerHostStats;
  /** Stops every poller and releases threads. Idempotent. */
  close(): Promise<void>;
}
