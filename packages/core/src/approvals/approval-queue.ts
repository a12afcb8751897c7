import { VigilError } from '../errors.js';
import { assertSessionId, newId } from '../ids.js';

/** What a human answers to a pending approval. */
export type ApprovalDecision = 'approve' | 'deny';

/** How a pending approval ended: by a decision, by its timeout, or by cancel/clear/close. */
export type ApprovalOutcome = 'approved' | 'denied' | 'expired' | 'cancelled';

/** A command that waits for a human decision. */
export interface ApprovalRequest {
  /** The command to approve; a non-empty string. */
  readonly command: string;
  /** Shown to the human next to the command. Default: `''`. */
  readonly description?: string;
  /** The process that waits on this approval, if any. */
  readonly processId?: string;
  /** Free-form data carried unchanged into the view. */
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** A pending approval as subscribers and the tape see it. Frozen. */
export interface ApprovalView {
  readonly approvalId: string;
  readonly sessionId: string;
  readonly command: string;
  readonly description: string;
  readonly processId?: string;
  readonly meta?: Readonly<Record<string, unknown>>;
  /** `now()` when requested. */
  readonly requestedAt: number;
  /** When it expires; absent when it never does. */
  readonly expiresAt?: number;
}

/** The queue after one mutation: its head (the oldest pending entry), size and version. Frozen. */
export interface ApprovalSnapshot {
  readonly sessionId: string;
  readonly head: ApprovalView | null;
  readonly count: number;
  /** 0 for the empty new queue; every mutation adds exactly one. */
  readonly version: number;
}

/** One entry requested or resolved; `snapshot` is the state right after the mutation. */
export interface ApprovalChange {
  readonly kind: 'requested' | 'resolved';
  readonly approval: ApprovalView;
  /** Set when `kind` is `'resolved'`. */
  readonly outcome?: ApprovalOutcome;
  readonly snapshot: ApprovalSnapshot;
}

/** A subscriber; it receives its next snapshot only after the promise it returned settled. */
export type ApprovalListener = (snapshot: ApprovalSnapshot) => void | Promise<void>;

export interface ApprovalQueueOptions {
  /** Milliseconds until a pending approval expires; 0 means never. Default: 0. */
  readonly timeoutMs?: number;
  /** The clock for `requestedAt` and `expiresAt`. Default: `Date.now`. */
  readonly now?: () => number;
  /**
   * Called synchronously inside each mutation, after the state changed, once per requested or
   * resolved entry (a `clear` of n entries calls it n times with the same snapshot). For the tape.
   */
  readonly onChange?: (change: ApprovalChange) => void;
  /** Receives whatever `onChange` or a listener throws or rejects with. Default: ignore. */
  readonly onError?: (error: unknown) => void;
}

interface Entry {
  readonly view: ApprovalView;
  readonly resolve: (outcome: ApprovalOutcome) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

interface Subscriber {
  readonly listener: ApprovalListener;
  readonly pending: ApprovalSnapshot[];
  busy: boolean;
  active: boolean;
}

const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * The FIFO of approvals pending in one session. Mutations are synchronous; each one adds one to
 * `version` and publishes one snapshot of the post-mutation state. Every subscriber receives the
 * snapshots in version order through its own queue, so a slow one delays nobody else.
 */
export class ApprovalQueue {
  readonly sessionId: string;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #onChange: ((change: ApprovalChange) => void) | undefined;
  readonly #onError: (error: unknown) => void;
  /** Insertion order is FIFO order: the first entry is the head. */
  readonly #entries = new Map<string, Entry>();
  readonly #subscribers = new Set<Subscriber>();
  #snapshot: ApprovalSnapshot;
  #closed = false;

  constructor(sessionId: string, options: ApprovalQueueOptions = {}) {
    assertSessionId(sessionId);
    this.sessionId = sessionId;
    this.#timeoutMs = checkTimeout(options.timeoutMs ?? 0);
    this.#now = options.now ?? Date.now;
    this.#onChange = options.onChange;
    this.#onError = options.onError ?? (() => {});
    this.#snapshot = Object.freeze({ sessionId, head: null, count: 0, version: 0 });
  }

  /** Appends an approval; `decision` resolves with its outcome. Throws `ERR_SESSION_CLOSED` after `close`. */
  request(
    req: ApprovalRequest,
    options: { readonly timeoutMs?: number } = {},
  ): { approvalId: string; decision: Promise<ApprovalOutcome> } {
    if (this.#closed) {
      throw new VigilError('ERR_SESSION_CLOSED', `session ${this.sessionId} is closed`);
    }
    const view = this.#toView(req);
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.#timeoutMs);
    const requestedAt = this.#now();
    const approvalId = view.approvalId;
    let resolve!: (outcome: ApprovalOutcome) => void;
    const decision = new Promise<ApprovalOutcome>((r) => {
      resolve = r;
    });
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs > 0) {
      timer = setTimeout(() => this.#resolve([approvalId], 'expired'), timeoutMs);
      timer.unref();
    }
    const expiry = timeoutMs > 0 ? { expiresAt: requestedAt + timeoutMs } : {};
    const entry: Entry = { view: Object.freeze({ ...view, requestedAt, ...expiry }), resolve, timer };
    this.#entries.set(approvalId, entry);
    this.#publish([{ kind: 'requested', approval: entry.view }]);
    return { approvalId, decision };
  }

  /**
   * Puts back the approvals a previous run left pending (a restarted vigil), oldest first, with
   * their ids and expiry, and the queue's version; publishes nothing. Returns each one's decision.
   */
  restore(views: readonly ApprovalView[], version: number): Map<string, Promise<ApprovalOutcome>> {
    const decisions = new Map<string, Promise<ApprovalOutcome>>();
    for (const view of views) {
      let resolve!: (outcome: ApprovalOutcome) => void;
      decisions.set(
        view.approvalId,
        new Promise<ApprovalOutcome>((r) => {
          resolve = r;
        }),
      );
      let timer: NodeJS.Timeout | undefined;
      if (view.expiresAt !== undefined) {
        const left = Math.min(MAX_TIMEOUT_MS, Math.max(0, view.expiresAt - this.#now()));
        timer = setTimeout(() => this.#resolve([view.approvalId], 'expired'), left);
        timer.unref();
      }
      this.#entries.set(view.approvalId, { view: Object.freeze({ ...view }), resolve, timer });
    }
    const head = this.#entries.values().next().value?.view ?? null;
    this.#snapshot = Object.freeze({ sessionId: this.sessionId, head, count: this.#entries.size, version });
    return decisions;
  }

  /**
   * Resolves one pending approval with a human decision and returns its outcome. An unknown or
   * already-resolved id throws `ERR_UNKNOWN_APPROVAL` and changes nothing.
   */
  respond(approvalId: string, decision: ApprovalDecision): ApprovalOutcome {
    if (decision !== 'approve' && decision !== 'deny') {
      throw invalid('decision', `decision must be "approve" or "deny", got ${show(decision)}`);
    }
    if (typeof approvalId !== 'string' || !this.#entries.has(approvalId)) {
      throw new VigilError(
        'ERR_UNKNOWN_APPROVAL',
        `no pending approval ${show(approvalId)} in session ${this.sessionId}`,
        { details: { field: 'approvalId', approvalId } },
      );
    }
    const outcome = decision === 'approve' ? 'approved' : 'denied';
    this.#resolve([approvalId], outcome);
    return outcome;
  }

  /** Resolves one pending approval as `cancelled`. Returns false (and changes nothing) if it is not pending. */
  cancel(approvalId: string): boolean {
    if (!this.#entries.has(approvalId)) return false;
    this.#resolve([approvalId], 'cancelled');
    return true;
  }

  /** Resolves every pending approval as `cancelled` in one mutation. A no-op on an empty queue. */
  clear(outcome: 'cancelled' = 'cancelled'): void {
    if (this.#entries.size > 0) this.#resolve([...this.#entries.keys()], outcome);
  }

  /** The current snapshot. */
  snapshot(): ApprovalSnapshot {
    return this.#snapshot;
  }

  /**
   * Delivers the current snapshot (synchronously, if the listener does not return a promise) and
   * then every later one, in version order. Returns an idempotent unsubscribe function.
   */
  subscribe(listener: ApprovalListener): () => void {
    const subscriber: Subscriber = { listener, pending: [this.#snapshot], busy: false, active: true };
    this.#subscribers.add(subscriber);
    this.#drain(subscriber);
    return () => {
      subscriber.active = false;
      subscriber.pending.length = 0;
      this.#subscribers.delete(subscriber);
    };
  }

  /** Cancels every pending approval, stops its timers and refuses later requests. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.clear('cancelled');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #report(error: unknown): void {
    try {
      this.#onError(error);
    } catch {
      // A failing error reporter must not wedge a subscriber or a mutation.
    }
  }

  #toView(req: ApprovalRequest): Omit<ApprovalView, 'requestedAt'> {
    if (typeof req !== 'object' || req === null) throw invalid('request', 'request must be an object');
    const { command, description = '', processId, meta } = req;
    if (typeof command !== 'string' || command.trim() === '') {
      throw invalid('command', `command must be a non-empty string, got ${show(command)}`);
    }
    if (typeof description !== 'string') throw invalid('description', 'description must be a string');
    if (processId !== undefined && typeof processId !== 'string') {
      throw invalid('processId', 'processId must be a string');
    }
    if (meta !== undefined && (typeof meta !== 'object' || meta === null)) {
      throw invalid('meta', 'meta must be an object');
    }
    return {
      approvalId: newId('appr_'),
      sessionId: this.sessionId,
      command,
      description,
      ...(processId === undefined ? {} : { processId }),
      ...(meta === undefined ? {} : { meta: Object.freeze({ ...meta }) }),
    };
  }

  #resolve(ids: readonly string[], outcome: ApprovalOutcome): void {
    const resolved: Entry[] = [];
    for (const id of ids) {
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      this.#entries.delete(id);
      clearTimeout(entry.timer);
      resolved.push(entry);
    }
    if (resolved.length === 0) return;
    this.#publish(resolved.map((entry) => ({ kind: 'resolved', approval: entry.view, outcome })));
    for (const entry of resolved) entry.resolve(outcome);
  }

  /** Ends every mutation: one version, one snapshot, queued for every subscriber before anyone runs. */
  #publish(changes: readonly Omit<ApprovalChange, 'snapshot'>[]): void {
    const head = this.#entries.values().next().value?.view ?? null;
    const version = this.#snapshot.version + 1;
    const snapshot = Object.freeze({ sessionId: this.sessionId, head, count: this.#entries.size, version });
    this.#snapshot = snapshot;
    // Enqueue before calling anyone, so a listener or onChange that mutates re-entrantly
    // queues its later snapshot behind this one for every subscriber.
    const subscribers = [...this.#subscribers];
    for (const subscriber of subscribers) subscriber.pending.push(snapshot);
    for (const change of changes) {
      try {
        this.#onChange?.({ ...change, snapshot });
      } catch (error) {
        this.#report(error);
      }
    }
    for (const subscriber of subscribers) this.#drain(subscriber);
  }

  #drain(subscriber: Subscriber): void {
    while (subscriber.active && !subscriber.busy && subscriber.pending.length > 0) {
      const snapshot = subscriber.pending.shift()!;
      subscriber.busy = true;
      let result: unknown;
      try {
        result = subscriber.listener(snapshot);
      } catch (error) {
        this.#report(error);
      }
      if (isThenable(result)) {
        const next = (): void => {
          subscriber.busy = false;
          this.#drain(subscriber);
        };
        Promise.resolve(result).then(next, (error: unknown) => {
          this.#report(error);
          next();
        });
        return;
      }
      subscriber.busy = false;
    }
  }
}

function checkTimeout(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIMEOUT_MS) {
    throw invalid(
      'timeoutMs',
      `timeoutMs must be an integer from 0 to ${MAX_TIMEOUT_MS}, got ${show(value)}`,
    );
  }
  return value;
}

function invalid(field: string, message: string): VigilError {
  return new VigilError('ERR_INVALID_INPUT', message, { details: { field } });
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 140)) : String(value);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
