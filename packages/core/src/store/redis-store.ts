import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { ApprovalDecision, ApprovalOutcome, ApprovalView } from '../approvals/approval-queue.js';
import { VigilError } from '../errors.js';
import type { Notification } from '../journal/notification.js';
import type { TapeEvent } from '../journal/tape-events.js';
import type { ProcessRecord } from '../process/process-record.js';
import { displayUrl } from './redis-keys.js';
import type {
  CommitGroup,
  RedisMessage,
  RedisReply,
  RedisRequest,
  RedisWorkerData,
  WireError,
} from './redis-protocol.js';
import { lockStateDir, type StateLock } from './state-lock.js';
import type { JournalStore, NotificationState, RestoredSession, SessionRecord } from './store.js';

export interface RedisStoreOptions {
  readonly url: string;
  readonly prefix: string;
  readonly leaseMs: number;
  /** A synchronous call (`commitNow`, a claim, the connection at start) fails past this. */
  readonly timeoutMs: number;
  readonly instanceId: string;
  /**
   * The instance's stateDir, held with a lock while the store is open (a second vigil on it fails
   * with `ERR_STATE_LOCKED`); the leases of the process that ran on it before are taken back at once.
   */
  readonly stateDir?: string;
  /** A batch that failed to commit (Redis away): it is kept and committed again later. */
  readonly onError: (error: VigilError) => void;
}

/** A failed batch is committed again after this long (doubling up to `RETRY_MAX_MS`). */
const RETRY_MS = 100;
const RETRY_MAX_MS = 2_000;
/** The restore reads every session this instance takes: it may take this many times `timeoutMs`. */
const RESTORE_TIMEOUTS = 10;

/**
 * A callback of `afterCommit`, and the session whose writes it waits for: it never runs once that
 * session is dropped here (fenced, or refused), since what it would make visible was not written.
 */
interface Waiter {
  readonly run: () => void;
  readonly sessionId: string | undefined;
  dropped: boolean;
}

/** One commit: its id (a resend after a lost reply is recognised), its writes, and who waits for them. */
interface Batch {
  readonly batchId: string;
  readonly groups: readonly CommitGroup[];
  readonly waiters: readonly Waiter[];
}

/**
 * The journal in one Redis server shared by several vigil instances (`store.kind: 'redis'`; keys
 * in `redis-keys.ts`, scripts in `redis-scripts.ts`). Each session is written by the instance
 * holding its lease only: a session's writes are sent with its fencing token, and a commit whose
 * token is not the lease's current one is refused (the session is fenced: `onFenced`).
 *
 * The connection lives in a worker thread (`redis-worker.ts`), so that the synchronous calls of
 * `JournalStore` (`commitNow`, `restore`) can block on it: the main thread posts its request and
 * waits on a shared counter with `Atomics.wait`, bounded by `timeoutMs`, then takes the reply with
 * `receiveMessageOnPort`. Writes are grouped by session and committed in one script call per
 * event-loop turn, one batch in flight at a time; a batch that fails stays and is sent again, with
 * the same id, until Redis confirms it (nothing acknowledged is lost, nothing is applied twice).
 */
export class RedisStore implements JournalStore {
  readonly durable = true;
  readonly instanceId: string;
  /** The URL, without password (as every message shows it). */
  readonly url: string;
  readonly #timeoutMs: number;
  readonly #onError: (error: VigilError) => void;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #signal: Int32Array;
  readonly #waiting = new Map<number, (reply: RedisReply) => void>();
  /** Sessions whose lease this instance holds: only their writes are sent. */
  readonly #held = new Set<string>();
  /** Writes queued since the last batch, by session, in order. */
  #queued = new Map<string, string[]>();
  #waiters: Waiter[] = [];
  /** Sessions this instance dropped (another instance owns them, or Redis refused their writes), and why. */
  readonly #lost = new Map<string, VigilError>();
  #inFlight: Batch | undefined;
  /** A batch that failed: sent again, alone and with the same id, before anything newer. */
  #failed: Batch | undefined;
  /** Why `#failed` failed. */
  #lastError: VigilError | undefined;
  #fenced: (sessionId: string, why: VigilError) => void = () => undefined;
  #taken: (session: RestoredSession) => void = () => undefined;
  #scanned: () => void = () => undefined;
  readonly #lock: StateLock | undefined;
  /** Set once the worker thread ended while the store was open: every call fails with it. */
  #gone: VigilError | undefined;
  /** Sessions the failover scan took, until `#taken` hears of them. */
  readonly #takenOver = new Map<string, RestoredSession>();
  /** This instance's entry in `P instances`. */
  #instance: Readonly<Record<string, unknown>>;
  #nextId = 0;
  #batches = 0;
  #scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  #retryMs = RETRY_MS;
  #closed = false;
  #frozen = false;
  #released: Promise<unknown> = Promise.resolve();
  /** Batch ids are unique across this instance's restarts: a resent batch is recognised, no other. */
  readonly #started = Date.now();

  constructor(options: RedisStoreOptions) {
    this.instanceId = options.instanceId;
    this.url = displayUrl(options.url);
    this.#timeoutMs = options.timeoutMs;
    this.#onError = options.onError;
    const signal = new SharedArrayBuffer(4);
    this.#signal = new Int32Array(signal);
    const nonce = randomBytes(6).toString('hex');
    this.#lock =
      options.stateDir === undefined
        ? undefined
        : lockStateDir(options.stateDir, `${this.instanceId}/${nonce}`);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#instance = { pid: process.pid, hostname: hostname(), startedAt: Date.now() };
    const workerData: RedisWorkerData = {
      port: port2,
      signal,
      url: options.url,
      prefix: options.prefix,
      leaseMs: options.leaseMs,
      timeoutMs: options.timeoutMs,
      instanceId: options.instanceId,
      nonce,
      previous: this.#lock?.previous ?? '',
      instance: this.#instance,
    };
    // Not the main thread's flags: under `node -e` they would make the thread run that script instead.
    this.#worker = new Worker(workerUrl(), { workerData, transferList: [port2], execArgv: [] });
    this.#worker.unref();
    this.#worker.on('error', (error) =>
      this.#onError(
        new VigilError('ERR_INTERNAL', `the Redis store's thread failed: ${error.message}`, { cause: error }),
      ),
    );
    this.#worker.on('exit', () => this.#workerGone());
    port1.on('message', (message: RedisMessage) => this.#dispatch(message));
    port1.unref();
    try {
      this.#call({ id: this.#nextId++, op: 'connect' });
    } catch (error) {
      this.#end();
      throw error;
    }
  }

  /** Resolves once `close` ended the worker thread. */
  get released(): Promise<unknown> {
    return this.#released;
  }

  /**
   * `listener` hears of each session this instance dropped, and why: another instance took it (its
   * lease was lost: `ERR_SESSION_OWNED`), or Redis refused its writes (`ERR_JOURNAL`).
   */
  onFenced(listener: (sessionId: string, why: VigilError) => void): void {
    this.#fenced = listener;
  }

  /**
   * `listener` receives each session of a gone instance that this one took over (its lease had
   * expired): it continues here. Looked for every `leaseMs / 2`, once `restore` ran.
   */
  onTaken(listener: (session: RestoredSession) => void): void {
    this.#taken = listener;
  }

  /** `listener` runs after each failover scan (once `restore` ran, every `leaseMs / 2`, not within leaseMs of a reconnection). */
  onScanned(listener: () => void): void {
    this.#scanned = listener;
  }

  /** Sets what other instances read of this one (`vigil serve` sets its HTTP API's url). */
  advertise(info: { readonly url?: string }): void {
    this.#instance = { ...this.#instance, ...info };
    this.#call({ id: this.#nextId++, op: 'advertise', instance: this.#instance });
  }

  restore(): RestoredSession[] {
    const reply = this.#call({ id: this.#nextId++, op: 'restore' }, this.#timeoutMs * RESTORE_TIMEOUTS);
    const { restored } = reply as unknown as { restored: RestoredSession[] };
    for (const session of restored) this.#hold(session.record.sessionId);
    return restored;
  }

  /**
   * Takes the session's lease before it opens: `ERR_SESSION_OWNED` while another instance holds
   * it. A session a gone instance left open comes back with what it needs to continue here.
   */
  claim(sessionId: string): RestoredSession | undefined {
    // A delete of an earlier session of this id goes first: the claim must not find its remains.
    this.commitNow();
    const heldBefore = this.#held.has(sessionId);
    let reply: RedisReply;
    try {
      reply = this.#call({ id: this.#nextId++, op: 'claim', sessionId });
    } catch (error) {
      // Its answer did not come in time: the lease the worker may have taken goes back (or the
      // session is served here with no one knowing), after the claim in the worker's order.
      if (!heldBefore && (error as VigilError).code !== 'ERR_SESSION_OWNED') this.#release(sessionId);
      throw error;
    }
    this.#hold(sessionId);
    // The failover scan took it just before: it is this claim's (its notice is not handed out).
    const taken = this.#takenOver.get(sessionId);
    this.#takenOver.delete(sessionId);
    return (reply as unknown as { claimed: RestoredSession | null }).claimed ?? taken;
  }

  putSession(record: SessionRecord): void {
    const { sessionId, state, openedAt, approvalVersion, closedAt, closeReason } = record;
    this.#queue(
      sessionId,
      'S',
      state,
      String(openedAt),
      String(approvalVersion),
      nullable(closedAt === null ? null : String(closedAt)),
      nullable(closeReason),
    );
  }

  appendEvent(sessionId: string, event: TapeEvent, json = JSON.stringify(event)): void {
    this.#queue(sessionId, 'E', String(event.seq), json);
  }

  trimEvents(sessionId: string, firstSeq: number): void {
    this.#queue(sessionId, 'T', String(firstSeq));
  }

  putNotification(notification: Notification, json = JSON.stringify(notification)): void {
    this.#queue(notification.sessionId, 'N', notification.id, json);
  }

  setNotificationState(notification: Notification, state: NotificationState): void {
    const { sessionId, id, seq } = notification;
    if (state === 'delivered') this.#queue(sessionId, 'D', id, String(seq));
    else if (state === 'withdrawn') this.#queue(sessionId, 'W', id);
  }

  putApproval(sessionId: string, approval: ApprovalView): void {
    this.#queue(sessionId, 'A', approval.approvalId, JSON.stringify(approval));
  }

  resolveApproval(
    sessionId: string,
    approvalId: string,
    outcome: ApprovalOutcome,
    decision?: ApprovalDecision,
  ): void {
    this.#queue(sessionId, 'R', approvalId, outcome, decision ?? '');
  }

  putProcess(record: ProcessRecord): void {
    this.#queue(record.sessionId, 'P', record.processId, JSON.stringify(record));
  }

  deleteProcess(sessionId: string, processId: string): void {
    this.#queue(sessionId, 'X', processId);
  }

  deleteSession(sessionId: string): void {
    this.#queue(sessionId, 'Z');
    // Its lease goes with it: writes of this id wait for the next claim.
    this.#held.delete(sessionId);
    this.#lost.delete(sessionId);
  }

  /**
   * `sessionId`: the session whose writes `callback` makes visible. It never runs if that session
   * was dropped here (fenced or refused) before its writes were committed, nor for a session this
   * instance does not hold (its writes are not sent).
   */
  afterCommit(callback: () => void, sessionId?: string): void {
    // The thread ended: nothing is committed any more, so nothing waiting for a commit runs.
    if (this.#gone !== undefined) return;
    if (sessionId !== undefined && !this.#held.has(sessionId)) return;
    const idle =
      this.#queued.size === 0 &&
      this.#waiters.length === 0 &&
      this.#inFlight === undefined &&
      this.#failed === undefined;
    if (idle) callback();
    else {
      this.#waiters.push({ run: callback, sessionId, dropped: false });
      this.#schedule();
    }
  }

  /**
   * `sessionId`: the caller's session. Throws `ERR_SESSION_OWNED` if another instance owns it (its
   * writes were fenced, now or before), `ERR_JOURNAL` if Redis refused them: it was dropped here.
   */
  commitNow(sessionId?: string): void {
    if (this.#gone !== undefined) throw this.#gone;
    this.#cancelScheduled();
    if (this.#inFlight !== undefined) this.#pump(() => this.#inFlight === undefined, this.#timeoutMs);
    // A batch that failed goes first, alone; then what was queued behind it.
    const resend = this.#failed !== undefined;
    for (const next of resend ? [() => this.#failed, () => this.#take()] : [() => this.#take()]) {
      const batch = next();
      if (batch === undefined) continue;
      this.#send(batch, false);
      this.#pump(() => this.#inFlight !== batch, this.#timeoutMs);
      if (this.#failed === batch) throw this.#lastError!;
    }
    const lost = sessionId === undefined ? undefined : this.#lost.get(sessionId);
    if (lost !== undefined) throw lost;
  }

  freeze(): void {
    if (this.#closed || this.#frozen) return;
    try {
      this.commitNow();
    } catch (error) {
      this.#onError(error as VigilError);
    }
    this.#frozen = true;
    // What could not be committed by now is dropped, as SqliteStore drops it.
    this.#queued.clear();
    this.#failed = undefined;
    this.#cancelScheduled();
  }

  close(): void {
    if (this.#closed) return;
    try {
      // After the thread ended there is nothing to commit with (that was reported).
      if (this.#gone === undefined) this.commitNow();
    } catch (error) {
      this.#onError(error as VigilError);
    }
    this.#closed = true;
    this.#cancelScheduled();
    this.#waiters = [];
    try {
      // A restart-safe stop keeps its leases: the same instance takes them back when it restarts.
      if (!this.#frozen) this.#call({ id: this.#nextId++, op: 'close' });
    } catch (error) {
      this.#onError(error as VigilError);
    }
    this.#end();
  }

  #end(): void {
    this.#closed = true;
    this.#port.close();
    this.#released = this.#worker.terminate();
    this.#lock?.release();
  }

  #release(sessionId: string): void {
    if (this.#gone !== undefined) return;
    const id = this.#nextId++;
    this.#waiting.set(id, () => undefined);
    this.#post({ id, op: 'release', sessionId });
  }

  /**
   * The worker thread ended while the store was open (it crashed): nothing can be written any
   * more. Whoever waits fails with `ERR_STORE_UNAVAILABLE`, every held session is fenced (its
   * lease lapses: another instance takes it over), and every later call fails at once.
   */
  #workerGone(): void {
    if (this.#closed || this.#gone !== undefined) return;
    this.#gone = new VigilError(
      'ERR_STORE_UNAVAILABLE',
      `the connection to Redis at ${this.url} is gone: the Redis store's thread ended`,
      { details: { url: this.url } },
    );
    const error: WireError = {
      code: 'ERR_STORE_UNAVAILABLE',
      message: this.#gone.message,
      details: { url: this.url },
    };
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const [id, settle] of waiting) settle({ id, error });
    this.#cancelScheduled();
    this.#failed = undefined;
    this.#queued.clear();
    this.#waiters = [];
    for (const sessionId of [...this.#held]) this.#lose(sessionId, this.#gone);
    this.#onError(this.#gone);
  }

  #queue(sessionId: string, ...ops: string[]): void {
    if (this.#closed || this.#frozen || !this.#held.has(sessionId)) return;
    let group = this.#queued.get(sessionId);
    if (group === undefined) {
      group = [];
      this.#queued.set(sessionId, group);
    }
    for (const op of ops) group.push(op);
    this.#schedule();
  }

  /** The queued writes and callbacks as a batch, or undefined when nothing waits. */
  #take(): Batch | undefined {
    if (this.#queued.size === 0 && this.#waiters.length === 0) return undefined;
    const groups = [...this.#queued].map(([sessionId, ops]) => ({ sessionId, ops }));
    const batch = {
      batchId: `${this.instanceId}:${this.#started}:${++this.#batches}`,
      groups,
      waiters: this.#waiters,
    };
    this.#queued = new Map();
    this.#waiters = [];
    return batch;
  }

  #send(batch: Batch, report: boolean): void {
    this.#inFlight = batch;
    if (batch.groups.length === 0) {
      this.#settle(batch, { id: -1, refused: [] }, report);
      return;
    }
    const id = this.#nextId++;
    this.#waiting.set(id, (reply) => this.#settle(batch, reply, report));
    this.#post({ id, op: 'commit', batchId: batch.batchId, groups: batch.groups });
  }

  #settle(batch: Batch, reply: RedisReply, report: boolean): void {
    this.#inFlight = undefined;
    if ('error' in reply) {
      this.#lastError = wireError(reply.error);
      if (report) this.#onError(this.#lastError);
      // Frozen or closed meanwhile (its commit gave up waiting for it): nothing more is written.
      if (this.#closed || this.#frozen) return;
      // Nothing of it is visible; it is sent again, as it is, once Redis answers.
      this.#failed = batch;
      this.#cancelScheduled();
      this.#scheduled = setTimeout(() => this.#flush(), this.#retryMs);
      this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
      return;
    }
    this.#failed = undefined;
    this.#retryMs = RETRY_MS;
    const refused = new Set<string>();
    for (const { sessionId, status } of 'refused' in reply ? reply.refused : []) {
      refused.add(sessionId);
      this.#lose(sessionId, this.#refusal(sessionId, status));
    }
    // Callbacks may queue writes of their own: those go with the next batch.
    for (const waiter of batch.waiters) {
      if (waiter.dropped || (waiter.sessionId !== undefined && refused.has(waiter.sessionId))) continue;
      waiter.run();
    }
    if (this.#queued.size > 0 || this.#waiters.length > 0) this.#schedule();
  }

  /** Why a session's writes were refused: another instance owns it (`fenced[:<owner>]`), or its tape is not ours (`gap:…`). */
  #refusal(sessionId: string, status: string): VigilError {
    if (status === 'fenced' || status.startsWith('fenced:')) {
      return ownedError(sessionId, status.slice('fenced:'.length) || undefined);
    }
    return new VigilError(
      'ERR_JOURNAL',
      `the journal in Redis ${this.url} refused the writes of session ${sessionId}: its tape is not where this instance left it (${status}); the session is dropped here`,
      { details: { sessionId, status } },
    );
  }

  /**
   * The session is no longer this instance's (another instance owns it, or Redis refused its
   * writes: what it journaled is not what Redis holds): nothing more of it is written here, and no
   * callback waiting for its writes runs.
   */
  #lose(sessionId: string, why: VigilError): void {
    if (!this.#held.delete(sessionId)) return;
    this.#lost.set(sessionId, why);
    this.#queued.delete(sessionId);
    for (const waiters of [this.#waiters, this.#inFlight?.waiters, this.#failed?.waiters]) {
      for (const waiter of waiters ?? []) if (waiter.sessionId === sessionId) waiter.dropped = true;
    }
    // A lost lease is the session's news (`session:fenced`); a refusal is a fault of the journal.
    if (why.code !== 'ERR_SESSION_OWNED') this.#onError(why);
    // Never inside a synchronous call (a commit in progress): once the caller's code is done.
    queueMicrotask(() => this.#fenced(sessionId, why));
  }

  /** The session's lease is this instance's (again): its writes are sent. */
  #hold(sessionId: string): void {
    this.#held.add(sessionId);
    this.#lost.delete(sessionId);
  }

  #schedule(): void {
    if (this.#closed || this.#frozen || this.#gone !== undefined) return;
    this.#scheduled ??= setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = undefined;
    if (this.#inFlight !== undefined || this.#closed || this.#frozen) return;
    const batch = this.#failed ?? this.#take();
    if (batch !== undefined) this.#send(batch, true);
  }

  #cancelScheduled(): void {
    if (this.#scheduled === undefined) return;
    clearImmediate(this.#scheduled as NodeJS.Immediate);
    clearTimeout(this.#scheduled as NodeJS.Timeout);
    this.#scheduled = undefined;
  }

  #post(request: RedisRequest): void {
    if (this.#gone !== undefined) throw this.#gone;
    this.#port.postMessage(request);
  }

  #dispatch(message: RedisMessage): void {
    if ('lost' in message) {
      for (const sessionId of message.lost) this.#lose(sessionId, ownedError(sessionId, undefined));
      return;
    }
    if ('scanned' in message) {
      this.#scanned();
      return;
    }
    if ('taken' in message) {
      const { sessionId } = message.taken.record;
      this.#hold(sessionId);
      this.#takenOver.set(sessionId, message.taken);
      // Never inside a synchronous call (a commit in progress): once the caller's code is done.
      queueMicrotask(() => {
        const taken = this.#takenOver.get(sessionId);
        if (taken === undefined) return;
        this.#takenOver.delete(sessionId);
        this.#taken(taken);
      });
      return;
    }
    const waiting = this.#waiting.get(message.id);
    this.#waiting.delete(message.id);
    waiting?.(message);
  }

  /** A synchronous request: its reply, or its error thrown. */
  #call(request: RedisRequest, timeoutMs = this.#timeoutMs): RedisReply {
    let reply: RedisReply | undefined;
    this.#waiting.set(request.id, (message) => {
      reply = message;
    });
    this.#post(request);
    try {
      this.#pump(() => reply !== undefined, timeoutMs);
    } catch (error) {
      // Its late reply is dropped.
      this.#waiting.set(request.id, () => undefined);
      throw error;
    }
    if ('error' in reply!) throw wireError(reply.error);
    return reply!;
  }

  /** Takes the worker's messages synchronously until `done`; `ERR_STORE_UNAVAILABLE` past `timeoutMs`. */
  #pump(done: () => boolean, timeoutMs: number): void {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const seen = Atomics.load(this.#signal, 0);
      for (
        let next = receiveMessageOnPort(this.#port);
        next !== undefined;
        next = receiveMessageOnPort(this.#port)
      ) {
        this.#dispatch(next.message as RedisMessage);
      }
      if (done()) return;
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new VigilError(
          'ERR_STORE_UNAVAILABLE',
          `Redis at ${this.url} did not answer within ${timeoutMs} ms (store.timeoutMs)`,
          { details: { url: this.url, timeoutMs } },
        );
      }
      Atomics.wait(this.#signal, 0, seen, left);
    }
  }
}

/** A nullable field of a commit op: '' for null, else the value after a '=' (see `COMMIT`). */
function nullable(value: string | null): string {
  return value === null ? '' : `=${value}`;
}

/** The session is served by another instance now (`owner`, when the commit saw who). */
function ownedError(sessionId: string, owner: string | undefined): VigilError {
  return new VigilError(
    'ERR_SESSION_OWNED',
    `session ${sessionId} is served by ${owner === undefined ? 'another instance' : `instance ${owner}`} now: this instance lost its lease and dropped it`,
    { details: { sessionId, ...(owner === undefined ? {} : { owner }) } },
  );
}

function wireError(error: WireError): VigilError {
  return new VigilError(
    error.code,
    error.message,
    error.details === undefined ? {} : { details: error.details },
  );
}

/** The worker's built file (tests that run the sources still start the built worker). */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('../../dist/store/redis-worker.js', import.meta.url)
    : new URL('./redis-worker.js', import.meta.url);
}
