/** Every kind of event a session's tape records. */
export type TapeEventType =
  | 'process.started'
  | 'process.output'
  | 'process.exited'
  | 'watch.match'
  | 'watch.disabled'
  | 'watch.resumed'
  | 'heartbeat'
  | 'notification.delivered'
  | 'notification.withdrawn'
  | 'approval.requested'
  | 'approval.resolved'
  | 'session.opened'
  | 'session.closed';

/** One entry of a tape. Events are frozen (shallowly, `data` included) once appended. */
export interface TapeEvent {
  /** Gapless per session, starting at 1. */
  readonly seq: number;
  readonly type: TapeEventType;
  /** Append time in ms since the epoch (`TapeOptions.now`, default `Date.now`). */
  readonly at: number;
  /** The process the event is about; required for `process.*` events. */
  readonly processId?: string;
  readonly data: Readonly<Record<string, unknown>>;
}

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
export interface TapePage {
  /** Events with `seq > after`, in order, at most `limit`. */
  readonly events: TapeEvent[];
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
