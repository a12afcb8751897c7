import type { ApprovalDecision, ApprovalOutcome } from '../approvals/approval-queue.js';
import type { ExitRecord } from '../process/process-info.js';

/** Why watching a process stopped: the rate limits (G8), or a pattern that made its poller stuck. */
export type WatchDisabledReason = 'strikes' | 'lifetime' | 'pattern_timeout';

/** The data of every kind of tape event, by event type. */
export interface TapeEventData {
  readonly 'process.started': {
    readonly command: string;
    readonly cwd: string | null;
    readonly pid: number;
    /** The watch patterns, as `describePattern` shows them. */
    readonly watch: readonly string[];
  };
  /** Reserved for output carried on the tape; vigil streams live output as `process:output` instead. */
  readonly 'process.output': { readonly text: string };
  /** The process's last event; its terminal state is visible from the same instant (G7). */
  readonly 'process.exited': ExitRecord;
  /**
   * The event's process, just spawned, replaces `superseded` (named by `replaces`, or an earlier run
   * with its `key`): that one's undelivered completion and matches are withdrawn; `killed` when it
   * still ran and is being killed. Recorded on the new run: the old one may have exited already.
   */
  readonly 'process.supersedes': {
    readonly superseded: string;
    readonly key: string | null;
    readonly killed: boolean;
  };
  readonly 'watch.match': {
    readonly notificationId: string;
    readonly command: string;
    /** Up to `watch.maxLinesPerMatch` lines / `watch.maxCharsPerMatch` characters. */
    readonly lines: readonly string[];
    /** The pattern that matched the first line, as `describePattern` shows it. */
    readonly pattern: string | null;
    /** Byte offset of the first matching line. */
    readonly offset: number;
    /** Matches dropped by the cooldown since the previous delivered one. */
    readonly suppressed: number;
    /** 1-based count of delivered matches of the process. */
    readonly hit: number;
    readonly truncated: boolean;
  };
  readonly 'watch.disabled': {
    readonly notificationId: string;
    readonly command: string;
    readonly reason: WatchDisabledReason;
    readonly message: string;
    readonly suppressed: number;
    /** The pattern at fault (`pattern_timeout` only). */
    readonly pattern?: string;
  };
  /** The global breaker refused a first match of this session: watch matches are paused for `pausedMs`. */
  readonly 'watch.paused': {
    readonly notificationId: string;
    readonly pausedMs: number;
    readonly message: string;
  };
  /** The global breaker released; `suppressed` matches of this session were not delivered. */
  readonly 'watch.resumed': {
    readonly notificationId: string;
    readonly suppressed: number;
    readonly pausedMs: number;
    readonly message: string;
  };
  readonly heartbeat: {
    readonly notificationId: string;
    readonly command: string;
    /** Output since the last heartbeat (its last `completion.outputChars` characters). */
    readonly output: string;
    readonly fromOffset: number;
    readonly toOffset: number;
  };
  readonly 'notification.delivered': {
    readonly notificationId: string;
    /** The seq of the event the notification is. */
    readonly seqOf: number;
    /** Absent for a notification about the session's watches (`watch_paused`, `watch_resumed`). */
    readonly processId?: string;
    readonly attempts: number;
  };
  readonly 'notification.withdrawn': {
    readonly notificationId: string;
    readonly seqOf: number;
    /** Absent for a notification about the session's watches (`watch_paused`, `watch_resumed`). */
    readonly processId?: string;
  };
  readonly 'approval.requested': ApprovalEventData;
  readonly 'approval.resolved': ApprovalEventData & {
    readonly outcome: ApprovalOutcome;
    /** The human's answer, when one resolved it (`approve_session` also granted later requests). */
    readonly decision?: ApprovalDecision;
    /** Approved at once by the `approve_session` answer to this earlier approval. */
    readonly grantedBy?: string;
  };
  readonly 'session.opened': { readonly threadId: number };
  readonly 'session.closed': { readonly reason: string; readonly forced: boolean };
}

export interface ApprovalEventData {
  readonly approvalId: string;
  readonly command: string;
  readonly description: string;
  readonly processId?: string;
  /** The queue's size and version right after the change. */
  readonly count: number;
  readonly version: number;
}

/** Every kind of event a session's tape records. */
export type TapeEventType = keyof TapeEventData;

/** A map from every event type to its data: `TapeEventData`, or plain records for a bare `Tape`. */
export type EventDataMap = { readonly [T in TapeEventType]: object };

/** The untyped map of a `Tape` used on its own: any JSON object per event type. */
export type LooseEventData = { readonly [T in TapeEventType]: Readonly<Record<string, unknown>> };

/** One event of type `T`. Frozen (shallowly, `data` included) once appended. */
export interface TapeEventOf<M extends EventDataMap, T extends TapeEventType> {
  /** Gapless per session, starting at 1. */
  readonly seq: number;
  readonly type: T;
  /** Append time in ms since the epoch (`TapeOptions.now`, default `Date.now`). */
  readonly at: number;
  /** The process the event is about; required for `process.*` events. */
  readonly processId?: string;
  readonly data: Readonly<M[T]>;
}

/** Any event of a tape with data map `M`: a union discriminated by `type`. */
export type AnyTapeEvent<M extends EventDataMap> = { [T in TapeEventType]: TapeEventOf<M, T> }[TapeEventType];

/** One entry of a session's tape: a union discriminated by `type`, so `data` needs no cast. */
export type TapeEvent = AnyTapeEvent<TapeEventData>;

/** Options of `Tape.append`. */
export interface TapeAppendOptions {
  /** Ties the event to a process. No event for a process may follow its `process.exited`. */
  readonly processId?: string;
}

/** Options of `Tape.read`. */
export interface TapeReadOptions {
  /** Return events with `seq > after`. Default 0 (from the start). */
  readonly after?: number;
  /** Page size, 1..`maxLimit`. Default `defaultLimit`. */
  readonly limit?: number;
  /** Long-poll this long when caught up (`after === lastSeq`); capped at `maxWaitMs`. Default 0. */
  readonly waitMs?: number;
  /** Aborting rejects a waiting read with `ERR_ABORTED` (or the signal's VigilError reason). */
  readonly signal?: AbortSignal;
}

/** Options of `Tape.subscribe`. */
export interface TapeSubscribeOptions {
  /** Yield events with `seq > after`. Default 0. */
  readonly after?: number;
  /** Aborting ends the subscription: the pending or next `next()` rejects with `ERR_ABORTED`, later ones are done. */
  readonly signal?: AbortSignal;
}

/** One page of a tape read. */
export interface TapePageOf<E> {
  /** Events with `seq > after`, in order, at most `limit`. */
  readonly events: E[];
  /** The cursor to pass as the next `after`: the last returned seq, `after` when empty, `firstSeq - 1` on reset. */
  readonly next: number;
  /** True iff events with `seq > next` exist. */
  readonly hasMore: boolean;
  /** The seq of the newest event (0 when nothing was appended). */
  readonly lastSeq: number;
  /** The first retained seq, or `lastSeq + 1` when the tape is empty. */
  readonly firstSeq: number;
  /** The cursor was older than the retained window: events were lost; continue from `next`. */
  readonly reset: boolean;
  /** `session.closed` is on the tape: nothing more will be appended. */
  readonly closed: boolean;
}

/** One page of a session's tape. */
export type TapePage = TapePageOf<TapeEvent>;

/** Tape settings; the `tape` section of the vigil config. */
export interface TapeOptions {
  /** Events retained; the oldest are evicted beyond it (the newest never is). */
  readonly maxEvents: number;
  /** Approximate bytes retained (sum of each event's `JSON.stringify` length). */
  readonly maxBytes: number;
  /** Page size of a read without `limit`. */
  readonly defaultLimit: number;
  /** Largest accepted `limit`. */
  readonly maxLimit: number;
  /** Cap on a read's `waitMs`. */
  readonly maxWaitMs: number;
  /** Clock for `TapeEvent.at`. Default `Date.now`. */
  readonly now?: () => number;
}
