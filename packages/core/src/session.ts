import { PollerLink } from './poller-link.js';

export type SessionState = 'opening' | 'open' | 'closing' | 'closed';

/** What a gateway passes to `deliver`; refined by the processes and outbox. */
export interface Notification {
  readonly id: string;
  readonly sessionId: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

export type Deliver = (notification: Notification) => void | Promise<void>;

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
}

export interface SessionCloseResult {
  readonly sessionId: string;
  readonly reason: string;
  /** True when the poller had to be terminated rather than stopping on its own. */
  readonly forced: boolean;
}

/** One agent session's state in the registry. Owned by `SessionRegistry`; not exported from the package. */
export class Session {
  readonly id: string;
  readonly link: PollerLink;
  readonly deliver: Deliver | undefined;
  readonly openedAt: number;
  state: SessionState = 'opening';
  lastActivityAt: number;
  closedAt: number | null = null;
  closeReason: string | null = null;
  pollerRunning = false;
  pollerRestarts = 0;
  /** Settles when the poller has started (or failed to). */
  opened: Promise<void> = Promise.resolve();
  closing: Promise<SessionCloseResult> | undefined;
  forgetTimer: NodeJS.Timeout | undefined;

  constructor(id: string, deliver: Deliver | undefined, now: number) {
    this.id = id;
    this.deliver = deliver;
    this.link = new PollerLink(id);
    this.openedAt = now;
    this.lastActivityAt = now;
  }

  get live(): boolean {
    return this.state === 'opening' || this.state === 'open';
  }

  info(): SessionInfo {
    return {
      sessionId: this.id,
      state: this.state,
      openedAt: this.openedAt,
      closedAt: this.closedAt,
      closeReason: this.closeReason,
      lastActivityAt: this.lastActivityAt,
      poller: {
        runId: this.link.runId,
        threadId: this.link.threadId,
        restarts: this.pollerRestarts,
        running: this.pollerRunning,
      },
    };
  }
}
