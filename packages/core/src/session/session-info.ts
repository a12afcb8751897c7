export type SessionState = 'opening' | 'open' | 'closing' | 'closed';

/** What a session's parts may read of it: its state. Only the session changes it. */
export interface SessionView {
  readonly state: SessionState;
  /** Opening or open: it takes processes and produces notifications. */
  readonly live: boolean;
}

export interface SessionPollerInfo {
  readonly runId: number;
  readonly threadId: number;
  readonly restarts: number;
  readonly running: boolean;
}

export interface SessionInfo {
  readonly sessionId: string;
  readonly state: SessionState;
  readonly openedAt: number;
  readonly closedAt: number | null;
  readonly closeReason: string | null;
  readonly lastActivityAt: number;
  readonly poller: SessionPollerInfo;
  /** Processes of the session that have not ended yet. */
  readonly activeProcesses: number;
  /** Notifications waiting for `deliver` to acknowledge them. */
  readonly outboxDepth: number;
  readonly lastSeq: number;
}

export interface SessionCloseResult {
  readonly sessionId: string;
  readonly reason: string;
  /** True when the poller had to be terminated rather than stopping on its own. */
  readonly forced: boolean;
}
