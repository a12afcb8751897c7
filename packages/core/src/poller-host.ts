import type { VigilError } from './errors.js';
import type { PollerLink } from './poller-link.js';

export type PollerExitReason = 'stopped' | 'terminated' | 'crashed';

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
 * Runs sessions' pollers. A host serves exactly one vigil instance. `@vigil/core` ships an
 * in-thread host; `@vigil/worker` runs pollers in pooled worker threads.
 */
export interface PollerHost {
  readonly kind: string;
  attach(observer: PollerObserver): void;
  /** Starts the session's poller and resolves once it runs. Crashed runs are restarted by the host. */
  start(link: PollerLink): Promise<void>;
  /** Resolves once no code of the session's poller runs: cooperatively within `timeoutMs`, else forced. */
  stop(sessionId: string, options: { readonly timeoutMs: number }): Promise<PollerStopResult>;
  /** Ends the current run by force (it is stuck) and starts a new one. */
  restart(sessionId: string, reason: string): Promise<void>;
  stats(): PollerHostStats;
  /** Stops every poller and releases threads. Idempotent. */
  close(): Promise<void>;
}
