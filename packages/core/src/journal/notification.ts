import type { TapeEventData } from './tape-events.js';

/** The data of every kind of notification: the data of the tape event it is. */
export interface NotificationData {
  /** The process ended (`process.exited`). */
  readonly completion: TapeEventData['process.exited'];
  readonly watch_match: TapeEventData['watch.match'];
  readonly watch_disabled: TapeEventData['watch.disabled'];
  readonly heartbeat: TapeEventData['heartbeat'];
  /** The global breaker paused watch matches of every session (`watch.paused`). */
  readonly watch_paused: TapeEventData['watch.paused'];
  /** The global breaker let them through again; `suppressed` of this session's were dropped (`watch.resumed`). */
  readonly watch_resumed: TapeEventData['watch.resumed'];
}

export type NotificationType = keyof NotificationData;

/** Notifications about the session's watches as a whole, of no one process (`processId` null). */
export type SessionNotificationType = 'watch_paused' | 'watch_resumed';

interface NotificationShape<K extends NotificationType> {
  /** Stable across poller restarts and replays: derived from the process and output offset. */
  readonly id: string;
  readonly sessionId: string;
  readonly type: K;
  /** The tape event this notification is. */
  readonly seq: number;
  readonly at: number;
  /** The process it is about; null for a notification about the whole session's watches. */
  readonly processId: K extends SessionNotificationType ? null : string;
  /** The process's command; empty for a session notification. */
  readonly command: string;
  readonly data: Readonly<NotificationData[K]>;
}

/**
 * A tape event that must reach the agent, delivered with acknowledgement: a union discriminated by
 * `type`, so `data` needs no cast.
 */
export type Notification = { [K in NotificationType]: NotificationShape<K> }[NotificationType];

/** A notification of type `K`. */
export type NotificationOf<K extends NotificationType> = Extract<Notification, { readonly type: K }>;

/** The gateway's way into a session. Resolving acknowledges; throwing or rejecting retries later. */
export type Deliver = (notification: Notification, context: { readonly signal: AbortSignal }) => unknown;

/** The notifications ready when a batch delivery started, in tape order. */
export interface NotificationBatch {
  readonly notifications: readonly Notification[];
}

/** Like `Deliver`, for every ready notification at once: resolving acknowledges the whole batch. */
export type DeliverBatch = (batch: NotificationBatch, context: { readonly signal: AbortSignal }) => unknown;

/** How a session's notifications reach the gateway: one per call, or every ready one per call. */
export type Delivery = { readonly deliver: Deliver } | { readonly deliverBatch: DeliverBatch };
