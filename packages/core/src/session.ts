import { ApprovalQueue } from './approvals.js';
import type { VigilConfig } from './options.js';
import { type Deliver, type Notification, Outbox } from './outbox.js';
import { PollerLink } from './poller-link.js';
import { Tape } from './tape.js';

export type SessionState = 'opening' | 'open' | 'closing' | 'closed';

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

export interface SessionParts {
  readonly deliver: Deliver | undefined;
  /** Whether a queued notification has been superseded (its process's completion was consumed). */
  readonly withdrawn: (notification: Notification) => boolean;
  readonly onDeliveryFailure: (notification: Notification, error: Error, attempt: number) => void;
  readonly onDelivered: (notification: Notification) => void;
  readonly now: () => number;
}

/** One agent session's state: its poller link, tape, outbox, approvals and processes. */
export class Session {
  readonly id: string;
  readonly link: PollerLink;
  readonly tape: Tape;
  readonly outbox: Outbox;
  readonly approvals: ApprovalQueue;
  readonly openedAt: number;
  /** Ids of the session's processes that have not reached a terminal state. */
  readonly active = new Set<string>();
  /** Ids of every process the session spawned: their groups are killed when it closes (G2). */
  readonly spawned = new Set<string>();
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

  constructor(id: string, config: VigilConfig, parts: SessionParts) {
    this.id = id;
    this.openedAt = parts.now();
    this.lastActivityAt = this.openedAt;
    this.link = new PollerLink(id, {
      limits: {
        cooldownMs: config.watch.cooldownMs,
        strikeLimit: config.watch.strikeLimit,
        lifetimeMaxHits: config.watch.lifetimeMaxHits,
        maxLineLength: config.output.maxLineLength,
        maxLinesPerMatch: config.watch.maxLinesPerMatch,
        maxCharsPerMatch: config.watch.maxCharsPerMatch,
      },
      matchTimeoutMs: config.watch.matchTimeoutMs,
      slots: config.processes.maxPerSession,
      // Small enough that a paused child resumes before its unmatched output could be evicted.
      batchBytes: Math.max(4096, Math.min(1 << 20, Math.floor(config.output.bufferBytes / 4))),
    });
    this.tape = new Tape(id, { ...config.tape, now: parts.now });
    const tape = this.tape;
    this.outbox = new Outbox({
      deliver: parts.deliver,
      ...config.delivery.retry,
      timeoutMs: config.delivery.timeoutMs,
      withdrawn: parts.withdrawn,
      onDelivered: (notification, attempts) => {
        parts.onDelivered(notification);
        tape.append('notification.delivered', {
          notificationId: notification.id,
          seqOf: notification.seq,
          processId: notification.processId,
          attempts,
        });
      },
      onWithdrawn: (notification) => {
        tape.append('notification.withdrawn', {
          notificationId: notification.id,
          seqOf: notification.seq,
          processId: notification.processId,
        });
      },
      onFailure: parts.onDeliveryFailure,
    });
    this.approvals = new ApprovalQueue(id, {
      timeoutMs: config.approvals.timeoutMs,
      now: parts.now,
      onChange: (change) => {
        const { approval, snapshot } = change;
        const data = {
          approvalId: approval.approvalId,
          command: approval.command,
          description: approval.description,
          processId: approval.processId,
          count: snapshot.count,
          version: snapshot.version,
        };
        if (change.kind === 'requested') tape.append('approval.requested', data);
        else tape.append('approval.resolved', { ...data, outcome: change.outcome });
      },
    });
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
      activeProcesses: this.active.size,
      outboxDepth: this.outbox.depth,
      lastSeq: this.tape.lastSeq,
    };
  }
}
