import assert from 'node:assert/strict';
import type { EventEmitter } from 'eventemitter3';
import type { VigilConfig } from '../config.js';
import type { VigilEvents } from '../events.js';
import type { Deliver, Notification, NotificationType } from './notification.js';
import { Outbox } from './outbox.js';
import { Tape } from './tape.js';
import type {
  TapeEventData,
  TapeEventOf,
  TapeEventType,
  TapePage,
  TapeReadOptions,
  TapeSubscribeOptions,
} from './tape-events.js';

/** The events that become notifications, and as what. */
const NOTIFIES: Readonly<Partial<Record<TapeEventType, NotificationType>>> = {
  'process.exited': 'completion',
  'watch.match': 'watch_match',
  'watch.disabled': 'watch_disabled',
  heartbeat: 'heartbeat',
};

/** Admits or refuses a watch match across all sessions (the global breaker of G8). */
export interface MatchGate {
  admit(sessionId: string): boolean;
  /** The session closed: what it was refused is never reported. */
  forget(sessionId: string): void;
}

export interface JournalOptions {
  readonly sessionId: string;
  readonly config: Pick<VigilConfig, 'tape' | 'delivery'>;
  readonly deliver: Deliver | undefined;
  readonly gate: MatchGate;
  /** Where delivery failures are reported (`delivery:failed`). */
  readonly events: EventEmitter<VigilEvents>;
  readonly now: () => number;
}

/** Options of `Journal.record` for an event about a process. */
export interface RecordOptions {
  readonly processId?: string;
  /** The process's command, as notifications show it. */
  readonly command?: string;
  /** For `process.exited`: whether the process wants its completion delivered. Default true. */
  readonly notify?: boolean;
}

/**
 * The one place where a session's events are recorded: its tape (gapless seqs, G11, G12) and the
 * outbox that delivers the events that are notifications, once each and in tape order (G9). It
 * decides which events become notifications: a match of a process whose completion was consumed is
 * dropped (G10), a match the global breaker refuses is dropped (G8), and nothing becomes a
 * notification once the session is closing (G2).
 */
export class Journal {
  readonly sessionId: string;
  readonly #tape: Tape<TapeEventData>;
  readonly #outbox: Outbox;
  readonly #gate: MatchGate;
  /** Processes whose completion was acknowledged or read through `wait` (G10). */
  readonly #consumed = new Set<string>();
  #notifying = true;

  constructor(options: JournalOptions) {
    const { sessionId, config, events } = options;
    this.sessionId = sessionId;
    this.#gate = options.gate;
    this.#tape = new Tape(sessionId, { ...config.tape, now: options.now });
    this.#outbox = new Outbox({
      deliver: options.deliver,
      ...config.delivery.retry,
      timeoutMs: config.delivery.timeoutMs,
      withdrawn: (notification) => this.#consumed.has(notification.processId),
      onDelivered: (notification, attempts) => {
        if (notification.type === 'completion') this.#consumed.add(notification.processId);
        this.#tape.append('notification.delivered', {
          notificationId: notification.id,
          seqOf: notification.seq,
          processId: notification.processId,
          attempts,
        });
      },
      onWithdrawn: (notification) => {
        this.#tape.append('notification.withdrawn', {
          notificationId: notification.id,
          seqOf: notification.seq,
          processId: notification.processId,
        });
      },
      onFailure: (notification, error, attempt) => {
        events.emit('delivery:failed', { notification, error, attempt });
      },
    });
  }

  get lastSeq(): number {
    return this.#tape.lastSeq;
  }

  /** Notifications waiting for `deliver` to acknowledge them (the one in flight included). */
  get depth(): number {
    return this.#outbox.depth;
  }

  /**
   * Records one event, and queues it for delivery if it is a notification. Returns the event, or
   * undefined when the journal dropped it (a match nobody must hear of: see the class comment).
   * Synchronous, so a caller changes its state and records the event in one step (G7).
   */
  record<T extends TapeEventType>(
    type: T,
    data: TapeEventData[T],
    options: RecordOptions = {},
  ): TapeEventOf<TapeEventData, T> | undefined {
    const { processId } = options;
    const kind = NOTIFIES[type];
    if (kind !== undefined && kind !== 'completion') {
      if (!this.#notifying) return undefined;
      if (kind === 'watch_match') {
        if (processId !== undefined && this.#consumed.has(processId)) return undefined;
        if (!this.#gate.admit(this.sessionId)) return undefined;
      }
    }
    const event = this.#tape.append(type, data, processId === undefined ? {} : { processId });
    if (kind === undefined || processId === undefined || !this.#notifying) return event;
    if (kind === 'completion' && (options.notify === false || this.#consumed.has(processId))) return event;
    const id = kind === 'completion' ? `${processId}:completion` : notificationIdOf(event.data);
    // The event's data is the notification's data: `kind` is the notification type of `type`.
    this.#outbox.enqueue({
      id,
      sessionId: this.sessionId,
      type: kind,
      seq: event.seq,
      at: event.at,
      processId,
      command: options.command ?? '',
      data: event.data,
    } as Notification);
    return event;
  }

  /** The process's completion counts as consumed (G10): its later matches and undelivered completion are dropped. */
  consume(processId: string): void {
    this.#consumed.add(processId);
  }

  consumed(processId: string): boolean {
    return this.#consumed.has(processId);
  }

  /** Forgets a process that vigil forgot (its finished TTL passed). */
  forget(processId: string): void {
    this.#consumed.delete(processId);
  }

  /** From now on events are still recorded, but none becomes a notification (the session is closing). */
  stopNotifying(): void {
    this.#notifying = false;
  }

  read(options?: TapeReadOptions): Promise<TapePage> {
    return this.#tape.read(options);
  }

  subscribe(options?: TapeSubscribeOptions) {
    return this.#tape.subscribe(options);
  }

  /**
   * Stops delivering: no `deliver` call starts after this, and the one in flight is aborted and gets
   * `graceMs` to settle. The tape stays open for the session's last events.
   */
  closeDelivery(graceMs: number): Promise<void> {
    this.#notifying = false;
    return this.#outbox.close(graceMs);
  }
}

/** The id a watch or heartbeat event carries for its notification. */
function notificationIdOf(data: object): string {
  const id: unknown = (data as { readonly notificationId?: unknown }).notificationId;
  assert(typeof id === 'string', 'a watch or heartbeat event carries its notificationId');
  return id;
}
