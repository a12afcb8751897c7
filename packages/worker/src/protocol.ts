import type { MessagePort } from 'node:worker_threads';

/**
 * The one message the host sends a pooled thread: run this session's poller. Everything after
 * that travels over `port`, where the registry is exposed with Comlink (`RegistryPort`).
 */
export interface PollerTask {
  readonly kind: 'poller';
  readonly sessionId: string;
  readonly runId: number;
  readonly port: MessagePort;
  /** `pollersPerThread: 1`: the thread exits with its poller and is never reused. */
  readonly exclusive: boolean;
}

/** The thread module's export that piscina runs (by name: the package has no default exports). */
export const POLLER_TASK_EXPORT = 'runPollerTask';
