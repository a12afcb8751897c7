import type { FollowResume } from '../poller/follow-table.js';
import type { AdoptionRecord } from './adopted-child.js';
import type { ExitRecord, ProcessState } from './process-info.js';
import type { SpawnSpec } from './spawn-spec.js';

/**
 * What the journal keeps of a process so that a restarted vigil can account for it: its spec, its
 * child's identity, how far its output was matched, and how it ended. Plain JSON.
 */
export interface ProcessRecord {
  readonly processId: string;
  readonly sessionId: string;
  readonly spec: SpawnSpec;
  readonly state: ProcessState;
  /** The child's pid (also its process group id), once it runs. */
  readonly pid: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  /**
   * When its `timeoutMs` runs out (epoch ms), set when it starts; a restarted vigil that adopts it
   * still kills it then (at once if that passed). Null without a timeout.
   */
  readonly deadline: number | null;
  readonly endedAt: number | null;
  /** How it ended (the data of its `process.exited`), once terminal. */
  readonly exit: ExitRecord | null;
  readonly spoolPath: string;
  readonly approvalId: string | null;
  readonly watching: boolean;
  /** Watching was disabled, so its completion is delivered instead. */
  readonly fallbackNotify: boolean;
  /**
   * Its completion was consumed (read through `wait`, or killed by an agent that asked to consume
   * it): it never becomes a notification. Absent in records of older versions.
   */
  readonly completionConsumed?: boolean;
  /** The process that replaced it (absent in records of older versions). */
  readonly supersededBy?: string | null;
  /** Its session closed while it ran (`keepOnSessionClose`). */
  readonly detached: boolean;
  /** Output before this byte offset was matched (the poller's committed cursor), when followed. */
  readonly cursor: number | null;
  /**
   * The rest of the poller's committed state, when followed: its heartbeat clock and rate limiter
   * (a watch disabled for strikes stays disabled). Absent in records of a vigil that did not keep it.
   */
  readonly follow?: FollowResume | null;
  /** Patterns disabled for making the poller stuck (`pattern_timeout`), by index. Absent: none. */
  readonly disabledPatterns?: readonly number[];
  /** What a restarted vigil needs to take the command back (`ManagedProcess.adoptionRecord`), once it runs. */
  readonly adoption: AdoptionRecord | null;
}
