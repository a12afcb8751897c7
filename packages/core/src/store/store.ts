import type { ApprovalDecision, ApprovalOutcome, ApprovalView } from '../approvals/approval-queue.js';
import type { VigilError } from '../errors.js';
import type { Notification } from '../journal/notification.js';
import type { TapeEvent } from '../journal/tape-events.js';
import type { ProcessRecord } from '../process/process-record.js';

/** A session as the store keeps it. Closed sessions are not restored. */
export interface SessionRecord {
  readonly sessionId: string;
  readonly state: 'open' | 'closing' | 'closed';
  readonly openedAt: number;
  readonly closedAt: number | null;
  readonly closeReason: string | null;
  /** The version of the session's approval queue after its last mutation. */
  readonly approvalVersion: number;
}

/** Where a notification stands: waiting for `deliver`, acknowledged by it, or withdrawn unsent (G10). */
export type NotificationState = 'pending' | 'delivered' | 'withdrawn';

/** What a restart finds of one session that was not closed. */
export interface RestoredSession {
  readonly record: SessionRecord;
  /** The retained tape, in seq order (gapless). */
  readonly events: readonly TapeEvent[];
  /** The seq of the newest event: the tape continues after it. */
  readonly lastSeq: number;
  /** Notifications not acknowledged nor withdrawn, in tape order. */
  readonly pending: readonly Notification[];
  /** Ids of acknowledged notifications: never delivered again. */
  readonly delivered: readonly string[];
  /** Approvals still pending, oldest first. */
  readonly approvals: readonly ApprovalView[];
  /** Approvals answered `approve_session`: their grants hold for the rest of the session. */
  readonly grants: readonly ApprovalView[];
  readonly processes: readonly ProcessRecord[];
  /**
   * Of a store shared by several instances: the processes another instance started (processId →
   * its instance id). That instance is gone (its session's lease was free), and so is any way to
   * follow them: they end `lost`.
   */
  readonly foreign?: ReadonlyMap<string, string>;
}

/**
 * What vigil's journal makes durable (G16), one implementation per file: `MemoryStore` (nothing
 * survives the process: vigil without `stateDir`) and `SqliteStore` (`<stateDir>/journal.db`).
 *
 * Writes are queued and committed together: `afterCommit` runs its callback once everything queued
 * before it is durable, which is when the journal lets anyone see it (durable before visible).
 * `commitNow` commits the queue synchronously, for rare writes that must be durable at once.
 */
export interface JournalStore {
  /** Whether anything survives this process (false for the memory store). */
  readonly durable: boolean;
  /** Every session a previous run left open, with what it needs to continue. Call once, first. */
  restore(): RestoredSession[];
  putSession(record: SessionRecord): void;
  /** `json`: the event's JSON, when the caller has it (else the store computes it). */
  appendEvent(sessionId: string, event: TapeEvent, json?: string): void;
  /**
   * The tape's retention evicted every event before `firstSeq`: they go, and so do the settled
   * notifications of those events (a completion stays while its process is kept: its record says
   * the completion was consumed).
   */
  trimEvents(sessionId: string, firstSeq: number): void;
  /** `json`: the notification's JSON, when the caller has it. */
  putNotification(notification: Notification, json?: string): void;
  setNotificationState(notification: Notification, state: NotificationState): void;
  putApproval(sessionId: string, approval: ApprovalView): void;
  /** `decision`: the human's answer, when one resolved it. */
  resolveApproval(
    sessionId: string,
    approvalId: string,
    outcome: ApprovalOutcome,
    decision?: ApprovalDecision,
  ): void;
  putProcess(record: ProcessRecord): void;
  /** Forgets a process's record (a completion of it still pending stays pending). */
  deleteProcess(sessionId: string, processId: string): void;
  /** Drops everything of a session (it closed and was forgotten). */
  deleteSession(sessionId: string): void;
  /**
   * Runs `callback` once every write queued before this call is committed (at once for memory).
   * `sessionId`: the session whose writes it makes visible. A shared store never runs it if that
   * session's writes were refused (another instance owns it): the session is dropped (`onFenced`).
   */
  afterCommit(callback: () => void, sessionId?: string): void;
  /**
   * Commits every queued write now. Throws the store's error (`ERR_JOURNAL`, `ERR_JOURNAL_FULL`).
   * `sessionId`: the caller's session; a shared store throws `ERR_SESSION_OWNED` (or `ERR_JOURNAL`
   * when Redis refused them) if that session's writes were refused, now or before: it was dropped.
   */
  commitNow(sessionId?: string): void;
  /**
   * Commits what is queued, then drops every later write: the journal stays as it is now for the
   * next vigil (a restart-safe stop, whose sessions must not be journaled as closed). Idempotent.
   */
  freeze(): void;
  /** Commits what is queued and releases the store (and its lock). Idempotent. */
  close(): void;
  /**
   * A store shared by several instances (Redis): takes the session's lease before it opens, or
   * fails with `ERR_SESSION_OWNED` while another instance holds it. A session a gone instance left
   * open comes back with what it needs to continue here. Absent: every session is this instance's.
   */
  claim?(sessionId: string): RestoredSession | undefined;
  /** Resolves once `close` released everything (a thread of the store's has ended). Absent: at once. */
  readonly released?: Promise<unknown>;
  /**
   * A shared store: `listener` hears of each session it dropped (another instance took it, or its
   * writes were refused), and why.
   */
  onFenced?(listener: (sessionId: string, why: VigilError) => void): void;
  /** A shared store: `listener` receives each session of a gone instance this one took over. */
  onTaken?(listener: (session: RestoredSession) => void): void;
}
