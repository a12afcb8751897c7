/**
 * What a session's poller and the registry say to each other. The registry exposes a
 * `RegistryPort` per poller run (over Comlink in the worker host, directly in the in-thread host);
 * everything here is plain data so it survives a structured clone.
 */

/** A test-only misbehaviour a poller can be told to perform (worker host with `allowFaultInjection`). */
export type PollerFault = 'spin' | 'throw' | 'exit' | 'oom';

export interface PollerHello {
  readonly runId: number;
  readonly threadId: number;
}

export interface PollerStart {
  readonly sessionId: string;
  readonly runId: number;
}

export interface PullRequest {
  /** Resolve with empty work after this long if nothing arrives (heartbeats). Omit to wait for work. */
  readonly waitMs?: number;
}

export interface PollerWork {
  /** The poller must return: its session is closing. */
  readonly stop: boolean;
  /** Liveness probes to echo back in the next commit. */
  readonly probes: readonly number[];
  readonly faults: readonly PollerFault[];
}

export interface PollerReport {
  readonly probes: readonly number[];
}

/** The registry as one poller run sees it. Every call of a superseded run fails. */
export interface RegistryPort {
  hello(info: PollerHello): Promise<PollerStart>;
  pull(request: PullRequest): Promise<PollerWork>;
  commit(report: PollerReport): Promise<void>;
}

export const STOP_WORK: PollerWork = Object.freeze({ stop: true, probes: [], faults: [] });
