import type { VigilError } from './errors.js';
import type { Notification } from './journal/notification.js';
import type { PollerExitedInfo, PollerStartedInfo } from './poller/host.js';
import type { ProcessInfo } from './process/process-info.js';
import type { SessionInfo } from './session/session-info.js';

/** The typed events of a vigil instance (`vigil.on(name, listener)` returns an unregister function). */
export interface VigilEvents {
  'session:opened': [SessionInfo];
  'session:closed': [SessionInfo];
  'poller:started': [PollerStartedInfo];
  'poller:exited': [PollerExitedInfo];
  'process:exited': [ProcessInfo];
  /** Output of a process as it is read (for live views; decoded as UTF-8). Emitted only while someone listens. */
  'process:output': [{ readonly sessionId: string; readonly processId: string; readonly text: string }];
  /** A `deliver` call threw, rejected or timed out; the notification is retried with backoff. */
  'delivery:failed': [
    { readonly notification: Notification; readonly error: VigilError; readonly attempt: number },
  ];
  /**
   * With a store shared by several instances (Redis): another instance took this session's lease
   * (or Redis refused its writes: its tape there is not where this instance left it), so this one
   * dropped it (its deliveries and poller stopped, its processes here killed, nothing it recorded
   * since its last confirmed commit readable or delivered).
   */
  'session:fenced': [{ readonly sessionId: string }];
  /**
   * With a store shared by several instances (Redis): this instance took over a session whose
   * instance is gone. It is dormant, as after a restart, until `sessions.open` gives it a deliver.
   */
  'session:restored': [{ readonly sessionId: string }];
  /** Background failures that have no caller to reject (a pool error, a deliver that keeps failing). */
  error: [VigilError];
}

export type VigilEventName = keyof VigilEvents;
