import assert from 'node:assert/strict';
import type { EventEmitter } from 'eventemitter3';
import type { ApprovalChange } from '../approvals/approval-queue.js';
import type { VigilConfig } from '../config.js';
import { toVigilError, type VigilError } from '../errors.js';
import type { VigilEvents } from '../events.js';
import type { ProcessRecord } from '../process/process-record.js';
import type { JournalStore, RestoredSession, SessionRecord } from '../store/store.js';
import type { Delivery, Notification, NotificationType } from './notification.js';
import { Outbox, type OutboxDelivery } from './outbox.js';
import { Tape } from './tape.js';
import type {
  TapeEvent,
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
  'watch.paused': 'watch_paused',
  'watch.resumed': 'watch_resumed',
};

/** Notifications about the session's watches rather than one process. */
const SESSION_KINDS: ReadonlySet<NotificationType> = new Set(['watch_paused', 'watch_resumed']);

/**
 * Events committed as soon as they are recorded rather than with the turn's batch: rare ones, whose
 * durability a caller relies on at once (a process's state is visible as soon as it changes, G7).
 */
const COMMITTED_AT_ONCE: ReadonlySet<TapeEventType> = new Set([
  'process.started',
  'process.exited',
  'approval.requested',
  'approval.resolved',
  'session.opened',
  'session.closed',
]);

/** The store forgets evicted events in steps of this many (one delete per step, not per event). */
const TRIM_EVERY = 256;

/** Admits or refuses a watch match across all sessions (the global breaker of G8). */
export interface MatchGate {
  admit(sessionId: string): boolean;
  /** The session closed: what it was refused is never reported. */
  forget(sessionId: string): void;
}

export interface JournalOptions {
  readonly sessionId: string;
  readonly config: Pick<VigilConfig, 'tape' | 'delivery'>;
  readonly delivery: Delivery | undefined;
  readonly gate: MatchGate;
  /** Where delivery failures are reported (`delivery:failed`). */
  readonly events: EventEmitter<VigilEvents>;
  readonly now: () => number;
  /** Where the journal is made durable (G16). */
  readonly store: JournalStore;
  /** What a previous run left of this session. */
  readonly restored?: RestoredSession | undefined;
}

/** A session's delivery as its outbox calls it. */
function outboxDelivery(delivery: Delivery): OutboxDelivery<Notification> {
  if ('deliver' in delivery) return delivery.deliver;
  const { deliverBatch } = delivery;
  return { batch: (notifications, context) => deliverBatch({ notifications }, context) };
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
  readonly #store: JournalStore;
  readonly #events: EventEmitter<VigilEvents>;
  /** Ids of notifications journaled but not queued yet (their commit is pending). */
  readonly #staged = new Set<string>();
  /** The length of each queued notification's JSON (what `delivery.maxBatchChars` bounds), computed once. */
  readonly #sizes = new WeakMap<Notification, number>();
  /** Processes whose completion was acknowledged or read through `wait` (G10). */
  readonly #consumed = new Set<string>();
  #notifying = true;
  /** The store was told to forget the events before this seq. */
  #trimmed = 1;
  /**
   * Acknowledgements the next deliver waits for until they are durable, released by
   * `closeDelivery` (no next deliver comes; and a session a shared store dropped never commits them).
   */
  readonly #unsettled = new Set<() => void>();

  constructor(options: JournalOptions) {
    const { sessionId, config, events, store, restored } = options;
    this.sessionId = sessionId;
    this.#gate = options.gate;
    this.#store = store;
    this.#events = events;
    this.#tape = new Tape(sessionId, { ...config.tape, now: options.now });
    const delivered = restored?.delivered ?? [];
    for (const id of delivered) {
      if (id.endsWith(':completion')) this.#consumed.add(id.slice(0, -':completion'.length));
    }
    this.#outbox = new Outbox({
      deliver: options.delivery === undefined ? undefined : outboxDelivery(options.delivery),
      maxBatch: config.delivery.maxBatch,
      maxBatchChars: config.delivery.maxBatchChars,
      ...config.delivery.retry,
      acknowledged: delivered,
      timeoutMs: config.delivery.timeoutMs,
      sizeOf: (notification) => this.#sizes.get(notification) ?? JSON.stringify(notification).length,
      withdrawn: (notification) =>
        notification.processId !== null && this.#consumed.has(notification.processId),
      onDelivered: (notification, attempts) => {
        if (notification.type === 'completion') this.#consumed.add(notification.processId);
        store.setNotificationState(notification, 'delivered');
        this.record('notification.delivered', {
          notificationId: notification.id,
          seqOf: notification.seq,
          ...(notification.processId === null ? {} : { processId: notification.processId }),
          attempts,
        });
        // The next deliver waits for this acknowledgement to be durable: a crash repeats one at most.
        return store.durable ? this.#durable() : undefined;
      },
      onWithdrawn: (notification) => {
        store.setNotificationState(notification, 'withdrawn');
        this.record('notification.withdrawn', {
          notificationId: notification.id,
          seqOf: notification.seq,
          ...(notification.processId === null ? {} : { processId: notification.processId }),
        });
      },
      onFailure: (notification, error, attempt) => {
        events.emit('delivery:failed', { notification, error, attempt });
      },
    });
    if (restored !== undefined) {
      this.#tape.load(restored.events, restored.lastSeq);
      this.#trimmed = this.#tape.firstSeq;
      for (const notification of restored.pending) this.#outbox.enqueue(notification);
    }
  }

  /** Whether a `deliver` is installed (a restored session has none until it is opened again). */
  get attached(): boolean {
    return this.#outbox.attached;
  }

  /** Installs the delivery of a restored session and delivers what waits, in tape order. */
  attach(delivery: Delivery): void {
    this.#outbox.attach(outboxDelivery(delivery));
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
    const staged = this.#tape.stageEncoded(type, data, processId === undefined ? {} : { processId });
    const { event, json } = staged;
    const notification = this.#notificationOf(event, kind, options);
    const store = this.#store;
    store.appendEvent(this.sessionId, event as TapeEvent, json);
    if (notification !== undefined) {
      const encoded = notificationJson(notification, json);
      this.#sizes.set(notification, encoded.length);
      this.#staged.add(notification.id);
      store.putNotification(notification, encoded);
    }
    // Durable before visible: readers and `deliver` see the event once it is committed.
    store.afterCommit(() => {
      this.#tape.publish(event.seq);
      if (notification !== undefined) {
        this.#staged.delete(notification.id);
        this.#outbox.enqueue(notification);
      }
      if (this.#tape.firstSeq - this.#trimmed >= TRIM_EVERY) {
        this.#trimmed = this.#tape.firstSeq;
        store.trimEvents(this.sessionId, this.#trimmed);
      }
    }, this.sessionId);
    if (COMMITTED_AT_ONCE.has(type)) this.#commitReporting();
    return event;
  }

  /** Records a change of the session's approval queue: its tape event and the approval's state. */
  approvalChanged(change: ApprovalChange): void {
    const { kind, approval, outcome, decision, grantedBy, snapshot } = change;
    const data = {
      approvalId: approval.approvalId,
      command: approval.command,
      description: approval.description,
      ...(approval.processId === undefined ? {} : { processId: approval.processId }),
      count: snapshot.count,
      version: snapshot.version,
    };
    if (kind === 'requested') this.#store.putApproval(this.sessionId, approval);
    else if (outcome !== undefined) {
      this.#store.resolveApproval(this.sessionId, approval.approvalId, outcome, decision);
    }
    if (kind === 'requested') this.record('approval.requested', data);
    else if (outcome !== undefined) {
      this.record('approval.resolved', {
        ...data,
        outcome,
        ...(decision === undefined ? {} : { decision }),
        ...(grantedBy === undefined ? {} : { grantedBy }),
      });
    }
  }

  /**
   * Commits what is queued now: an operation that must not succeed unless its effects are
   * durable calls this last. Throws `ERR_JOURNAL_FULL` / `ERR_JOURNAL`; with a shared store
   * `ERR_SESSION_OWNED` once another instance owns the session (its writes here were refused).
   */
  commit(): void {
    this.#store.commitNow(this.sessionId);
  }

  /**
   * Runs `callback` once everything recorded so far is committed (at once without a journal); never
   * if the session is dropped first (a shared store: another instance owns it now).
   */
  afterCommit(callback: () => void): void {
    this.#store.afterCommit(callback, this.sessionId);
  }

  /** Resolves once what was recorded so far is committed, or once delivery closes. */
  #durable(): Promise<void> {
    return new Promise<void>((resolve) => {
      const settle = () => {
        this.#unsettled.delete(settle);
        resolve();
      };
      this.#unsettled.add(settle);
      this.#store.afterCommit(settle, this.sessionId);
    });
  }

  /**
   * The notification an event is, or undefined when it is none (or nobody must hear of it). A
   * session-wide kind (`watch_paused`, `watch_resumed`) is of no process.
   */
  #notificationOf(
    event: TapeEventOf<TapeEventData, TapeEventType>,
    kind: NotificationType | undefined,
    options: RecordOptions,
  ): Notification | undefined {
    if (kind === undefined || !this.#notifying) return undefined;
    const processId = SESSION_KINDS.has(kind) ? null : options.processId;
    if (processId === undefined) return undefined;
    const consumed = processId !== null && this.#consumed.has(processId);
    if (kind === 'completion' && (options.notify === false || consumed)) return undefined;
    const id = kind === 'completion' ? `${processId}:completion` : notificationIdOf(event.data);
    // An id journaled before is not journaled again: the outbox would never deliver the copy, whose
    // row would stay pending and come back after a restart.
    if (this.#staged.has(id) || this.#outbox.knows(id)) return undefined;
    // The event's data is the notification's data: `kind` is the notification type of `type`.
    return {
      id,
      sessionId: this.sessionId,
      type: kind,
      seq: event.seq,
      at: event.at,
      processId,
      command: processId === null ? '' : (options.command ?? ''),
      data: event.data,
    } as Notification;
  }

  /** Commits at once; a failure is reported, and the batch stays queued for the store's next attempt. */
  #commitReporting(): void {
    try {
      // Not as the session's: a session dropped by a shared store is reported once, by the store.
      this.#store.commitNow();
    } catch (error) {
      this.#events.emit('error', toVigilError(error, 'ERR_JOURNAL'));
    }
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
    this.#store.deleteProcess(this.sessionId, processId);
  }

  /** Journals the session's own record. */
  saveSession(record: SessionRecord): void {
    this.#store.putSession(record);
  }

  /** Journals a process's record (committed with the turn's batch, or with the next event committed at once). */
  saveProcess(record: ProcessRecord): void {
    this.#store.putProcess(record);
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
   * A shared store dropped the session (another instance owns it): what it records from now on is
   * never committed, so never readable; readers waiting for more end with `why`.
   */
  drop(why: VigilError): void {
    this.#tape.drop(why);
  }

  /**
   * Stops delivering: no `deliver` call starts after this, and the one in flight is aborted and gets
   * `graceMs` to settle. The tape stays open for the session's last events.
   */
  closeDelivery(graceMs: number): Promise<void> {
    this.#notifying = false;
    const closed = this.#outbox.close(graceMs);
    for (const settle of this.#unsettled) settle();
    return closed;
  }
}

/**
 * A notification's JSON, `JSON.stringify(notification)`, reusing its event's: the notification's
 * data is the event's, which is the last member of the event's JSON (and no member before it can
 * hold an unescaped `,"data":`).
 */
export function notificationJson(notification: Notification, eventJson: string): string {
  const { id, sessionId, type, seq, at, processId, command } = notification;
  const data = eventJson.slice(eventJson.indexOf(',"data":') + ',"data":'.length, -1);
  return `{"id":${JSON.stringify(id)},"sessionId":${JSON.stringify(sessionId)},"type":"${type}","seq":${seq},"at":${at},"processId":${JSON.stringify(processId)},"command":${JSON.stringify(command)},"data":${data}}`;
}

/** The id a watch or heartbeat event carries for its notification. */
function notificationIdOf(data: object): string {
  const id: unknown = (data as { readonly notificationId?: unknown }).notificationId;
  assert(typeof id === 'string', 'a watch or heartbeat event carries its notificationId');
  return id;
}
