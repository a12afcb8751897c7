import type { TapeEventData } from './tape-events.js';

/** The data of every kind of notification: the data of the tape event it is. */
export interface NotificationData {
  /** The process ended (`process.exited`). */
  readonly completion: TapeEventData['process.exited'];
  readonly watch_match: TapeEventData['watch.match'];
  readonly watch_disabled: TapeEventData['watch.disabled'];
  readonly heartbeat: TapeEventData['heartbeat'];
}

export type NotificationType = keyof NotificationData;

interface NotificationShape<K extends NotificationType> {
  /** Stable across poller restarts and replays: derived from the process and output offset. */
  readonly id: string;
  readonly sessionId: string;
  readonly type: K;
  /** The tape event this notification is. */
  readonly seq: number;
  readonly at: number;
  readonly processId: string;
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
