import { VigilError } from '../errors.js';
import { assertSessionId } from '../ids.js';
import { ApprovalGrants } from './approval-grants.js';
import {
  checkBacklog,
  checkTimeout,
  checkVersion,
  invalid,
  MAX_TIMEOUT_MS,
  newView,
  show,
} from './approval-input.js';
import { ApprovalSubscriber } from './approval-subscriber.js';

/**
 * What a human can answer to a pending approval: `approve` (this one), `approve_session` (this one,
 * and every later request of the session with the same command or pattern key, at once), `deny`.
 */
export const APPROVAL_DECISIONS = ['approve', 'approve_session', 'deny'] as const;

export type ApprovalDecision = (typeof APPROVAL_DECISIONS)[number];

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
  /**
   * What kind of command this is (say `rm -rf`): an `approve_session` answer also approves later
   * requests with the same key. Default: none (only the same command is approved).
   */
  readonly patternKey?: string;
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
  readonly patternKey?: string;
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
  /** The human's answer, when one resolved it. */
  readonly decision?: ApprovalDecision;
  /** Approved at once, without a pending entry, by the `approve_session` answer to this approval. */
  readonly grantedBy?: string;
  readonly snapshot: ApprovalSnapshot;
}

/** What `respondHead` resolved, and the queue right after. */
export interface ApprovalAnswer {
  readonly approvalId: string;
  readonly outcome: ApprovalOutcome;
  readonly snapshot: ApprovalSnapshot;
}

/** What `respondAll` resolved (oldest first; none when nothing was pending), and the queue right after. */
export interface ApprovalAnswers {
  readonly resolved: readonly { readonly approvalId: string; readonly outcome: ApprovalOutcome }[];
  readonly snapshot: ApprovalSnapshot;
}

/** A precondition of `respondHead` and `respondAll`. */
export interface RespondOptions {
  /**
   * The version of the snapshot the human answered. `respondHead` refuses (`ERR_STALE_VERSION`)
   * when the head has changed since; `respondAll` resolves only the entries requested up to it.
   */
  readonly version?: number;
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
  /**
   * Snapshots that may wait for one slow subscriber; past it the oldest waiting ones are skipped,
   * never the newest. Default: 16.
   */
  readonly subscriberBacklog?: number;
}

interface Entry {
  readonly view: ApprovalView;
  readonly resolve: (outcome: ApprovalOutcome) => void;
  readonly timer: NodeJS.Timeout | undefined;
  /** The queue's version right after the request. */
  readonly version: number;
}

/**
 * The FIFO of approvals pending in one session. Mutations are synchronous; each one adds one to
 * `version` and publishes one snapshot of the post-mutation state. Every subscriber receives the
 * snapshots in version order through its own bounded queue, so a slow one delays nobody else.
 */
export class ApprovalQueue {
  readonly sessionId: string;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #onChange: ((change: ApprovalChange) => void) | undefined;
  readonly #onError: (error: unknown) => void;
  readonly #backlog: number;
  /** Insertion order is FIFO order: the first entry is the head. */
  readonly #entries = new Map<string, Entry>();
  readonly #subscribers = new Set<ApprovalSubscriber<ApprovalSnapshot>>();
  readonly #grants = new ApprovalGrants();
  #snapshot: ApprovalSnapshot;
  /** The version since which the current head (or the empty queue) has been shown. */
  #headSince = 0;
  #closed = false;

  constructor(sessionId: string, options: ApprovalQueueOptions = {}) {
    assertSessionId(sessionId);
    this.sessionId = sessionId;
    this.#timeoutMs = checkTimeout(options.timeoutMs ?? 0);
    this.#now = options.now ?? Date.now;
    this.#onChange = options.onChange;
    this.#onError = options.onError ?? (() => {});
    this.#backlog = checkBacklog(options.subscriberBacklog ?? 16);
    this.#snapshot = Object.freeze({ sessionId, head: null, count: 0, version: 0 });
  }

  /**
   * Appends an approval; `decision` resolves with its outcome. A request an `approve_session`
   * answer covers is approved at once instead (`granted`: one mutation, nothing pending).
   * Throws `ERR_SESSION_CLOSED` after `close`.
   */
  request(
    req: ApprovalRequest,
    options: { readonly timeoutMs?: number } = {},
  ): { approvalId: string; decision: Promise<ApprovalOutcome>; granted: boolean } {
    if (this.#closed) {
      throw new VigilError('ERR_SESSION_CLOSED', `session ${this.sessionId} is closed`);
    }
    const view = newView(this.sessionId, req);
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.#timeoutMs);
    const requestedAt = this.#now();
    const approvalId = view.approvalId;
    const grantedBy = this.#grants.match(view);
    if (grantedBy !== undefined) {
      const approval = Object.freeze({ ...view, requestedAt });
      this.#publish([
        { kind: 'requested', approval },
        { kind: 'resolved', approval, outcome: 'approved', grantedBy },
      ]);
      return { approvalId, decision: Promise.resolve('approved'), granted: true };
    }
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
    const version = this.#snapshot.version + 1;
    const entry: Entry = {
      view: Object.freeze({ ...view, requestedAt, ...expiry }),
      resolve,
      timer,
      version,
    };
    this.#entries.set(approvalId, entry);
    this.#publish([{ kind: 'requested', approval: entry.view }]);
    return { approvalId, decision, granted: false };
  }

  /**
   * Puts back the approvals a previous run left pending (a restarted vigil), oldest first, with
   * their ids and expiry, the queue's version and the approvals answered `approve_session` (their
   * grants hold again); publishes nothing. Returns each pending one's decision.
   */
  restore(
    views: readonly ApprovalView[],
    version: number,
    grants: readonly ApprovalView[] = [],
  ): Map<string, Promise<ApprovalOutcome>> {
    for (const grant of grants) this.#grants.add(grant);
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
      this.#entries.set(view.approvalId, { view: Object.freeze({ ...view }), resolve, timer, version });
    }
    const head = this.#entries.values().next().value?.view ?? null;
    this.#snapshot = Object.freeze({ sessionId: this.sessionId, head, count: this.#entries.size, version });
    this.#headSince = version;
    return decisions;
  }

  /**
   * Resolves one pending approval with a human decision and returns its outcome. An unknown or
   * already-resolved id throws `ERR_UNKNOWN_APPROVAL` and changes nothing.
   */
  respond(approvalId: string, decision: ApprovalDecision): ApprovalOutcome {
    checkDecision(decision);
    if (typeof approvalId !== 'string' || !this.#entries.has(approvalId)) {
      throw new VigilError(
        'ERR_UNKNOWN_APPROVAL',
        `no pending approval ${show(approvalId)} in session ${this.sessionId}`,
        { details: { field: 'approvalId', approvalId } },
      );
    }
    return this.#answer([approvalId], decision);
  }

  /**
   * Resolves the head (the oldest pending approval) without naming it. `ERR_NO_PENDING_APPROVAL`
   * on an empty queue; with `version`, `ERR_STALE_VERSION` when the head is no longer the one that
   * snapshot showed. Either way nothing changes.
   */
  respondHead(decision: ApprovalDecision, options: RespondOptions = {}): ApprovalAnswer {
    checkDecision(decision);
    const { version } = options;
    if (version !== undefined) {
      checkVersion(version, this.#snapshot.version);
      if (version < this.#headSince) {
        throw new VigilError(
          'ERR_STALE_VERSION',
          `the head of session ${this.sessionId}'s approvals changed at version ${this.#headSince}, after the version ${version} answered; look at the current snapshot (version ${this.#snapshot.version}) and answer again`,
          { details: { field: 'version', version, current: this.#snapshot.version } },
        );
      }
    }
    const head = this.#snapshot.head;
    if (head === null) {
      throw new VigilError('ERR_NO_PENDING_APPROVAL', `session ${this.sessionId} has no pending approval`, {
        details: { sessionId: this.sessionId },
      });
    }
    const outcome = this.#answer([head.approvalId], decision);
    return { approvalId: head.approvalId, outcome, snapshot: this.#snapshot };
  }

  /**
   * Resolves every pending approval (with `version`: every one requested up to that version) in
   * one mutation, oldest first. Resolves nothing, and publishes nothing, when none is pending.
   */
  respondAll(decision: ApprovalDecision, options: RespondOptions = {}): ApprovalAnswers {
    checkDecision(decision);
    const { version } = options;
    if (version !== undefined) checkVersion(version, this.#snapshot.version);
    const ids = [...this.#entries]
      .filter(([, entry]) => version === undefined || entry.version <= version)
      .map(([approvalId]) => approvalId);
    if (ids.length === 0) return { resolved: [], snapshot: this.#snapshot };
    const outcome = this.#answer(ids, decision);
    return { resolved: ids.map((approvalId) => ({ approvalId, outcome })), snapshot: this.#snapshot };
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
    const subscriber = new ApprovalSubscriber(listener, {
      backlog: this.#backlog,
      report: (error) => this.#report(error),
    });
    subscriber.enqueue(this.#snapshot);
    this.#subscribers.add(subscriber);
    subscriber.drain();
    return () => {
      subscriber.close();
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

  /** A human's answer to pending `ids`, as one mutation; `approve_session` grants each one's command and key. */
  #answer(ids: readonly string[], decision: ApprovalDecision): ApprovalOutcome {
    const outcome = decision === 'deny' ? 'denied' : 'approved';
    if (decision === 'approve_session') {
      for (const id of ids) this.#grants.add(this.#entries.get(id)!.view);
    }
    this.#resolve(ids, outcome, decision);
    return outcome;
  }

  #resolve(ids: readonly string[], outcome: ApprovalOutcome, decision?: ApprovalDecision): void {
    const resolved: Entry[] = [];
    for (const id of ids) {
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      this.#entries.delete(id);
      clearTimeout(entry.timer);
      resolved.push(entry);
    }
    if (resolved.length === 0) return;
    const answered = decision === undefined ? {} : { decision };
    this.#publish(
      resolved.map((entry) => ({ kind: 'resolved', approval: entry.view, outcome, ...answered })),
    );
    for (const entry of resolved) entry.resolve(outcome);
  }

  /** Ends every mutation: one version, one snapshot, queued for every subscriber before anyone runs. */
  #publish(changes: readonly Omit<ApprovalChange, 'snapshot'>[]): void {
    const head = this.#entries.values().next().value?.view ?? null;
    const version = this.#snapshot.version + 1;
    const snapshot = Object.freeze({ sessionId: this.sessionId, head, count: this.#entries.size, version });
    if (head?.approvalId !== this.#snapshot.head?.approvalId) this.#headSince = version;
    this.#snapshot = snapshot;
    // Enqueue before calling anyone, so a listener or onChange that mutates re-entrantly
    // queues its later snapshot behind this one for every subscriber.
    const subscribers = [...this.#subscribers];
    for (const subscriber of subscribers) subscriber.enqueue(snapshot);
    for (const change of changes) {
      try {
        this.#onChange?.({ ...change, snapshot });
      } catch (error) {
        this.#report(error);
      }
    }
    for (const subscriber of subscribers) subscriber.drain();
  }
}

function checkDecision(decision: unknown): asserts decision is ApprovalDecision {
  if (!APPROVAL_DECISIONS.includes(decision as ApprovalDecision)) {
    throw invalid(
      'decision',
      `decision must be one of ${APPROVAL_DECISIONS.map((d) => `"${d}"`).join(', ')}, got ${show(decision)}`,
    );
  }
}
