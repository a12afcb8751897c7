import type { EventEmitter } from 'eventemitter3';
import { z } from 'zod';
import type { VigilConfig } from './config.js';
import { invalidInput, VigilError } from './errors.js';
import type { VigilEvents } from './events.js';
import { assertSessionId, newId } from './ids.js';
import type { Deliver, DeliverBatch, Delivery } from './journal/notification.js';
import type { PollerHost } from './poller/host.js';
import type { ManagedProcess } from './process/managed-process.js';
import { type ProcessInfo, TERMINAL_STATES } from './process/process-info.js';
import { parseRun, parseSpawn, type SpawnSpec } from './process/spawn-spec.js';
import { Spawner } from './process/spawner.js';
import { SpoolDir } from './process/spool-dir.js';
import { lastChars } from './secrets/redactor.js';
import { type InstanceSecrets, instanceSecrets } from './secrets/secrets-config.js';
import { Session, type SessionContext } from './session/session.js';
import type { SessionCloseResult, SessionInfo } from './session/session-info.js';
import { idsAfter, type SessionPage } from './session/session-page.js';
import type { JournalStore, RestoredSession } from './store/store.js';
import { deadline } from './timeout.js';
import { parse } from './validation.js';
import { BreakerGate } from './watch/breaker-gate.js';

export interface OpenSessionOptions {
  /** Called with each notification for the session; resolving acknowledges it. */
  readonly deliver?: Deliver;
  /**
   * Instead of `deliver`: called with every notification ready when a delivery starts (bounded by
   * `delivery.maxBatch` and `delivery.maxBatchChars`), in tape order; resolving acknowledges them all.
   */
  readonly deliverBatch?: DeliverBatch;
}

export interface CloseSessionOptions {
  readonly reason?: string;
}

const openOptionsSchema = z.object({
  deliver: z.custom<Deliver>((value) => typeof value === 'function', 'must be a function').optional(),
  deliverBatch: z
    .custom<DeliverBatch>((value) => typeof value === 'function', 'must be a function')
    .optional(),
});

/** The session's delivery: `deliver`, `deliverBatch`, or none (notifications are read from the tape). */
function deliveryOf(options: OpenSessionOptions): Delivery | undefined {
  const { deliver, deliverBatch } = parse(openOptionsSchema, options, { what: 'session options' });
  if (deliver !== undefined && deliverBatch !== undefined) {
    throw invalidInput('deliverBatch', 'session options: give deliver or deliverBatch, not both');
  }
  if (deliverBatch !== undefined) return { deliverBatch };
  return deliver === undefined ? undefined : { deliver };
}

/** A process and the session that owns it. */
export interface Owned {
  readonly session: Session;
  readonly process: ManagedProcess;
}

/** Live output is offered to `process:output` listeners at most this often, per process. */
const OUTPUT_EVERY_MS = 250;
/** Characters of new output a `process:output` event carries at most. */
const OUTPUT_CHARS = 4096;

/**
 * What is truly global in a vigil instance: the sessions by id, every tracked process by id (kept
 * past its session's close while it runs), the caps, the spool directory, the watch breaker, the
 * idle reaper, one periodic tick (stuck pollers, spool caps, live output) and the poller host.
 * Everything else belongs to a session.
 */
export class SessionRegistry {
  readonly #config: VigilConfig;
  readonly #events: EventEmitter<VigilEvents>;
  readonly #now: () => number;
  readonly #gate: BreakerGate;
  readonly #spools: SpoolDir;
  readonly #spawner: Spawner | undefined;
  readonly #store: JournalStore;
  readonly #secrets: InstanceSecrets;
  /** What every session shares. */
  readonly #context: SessionContext;
  readonly #sessions = new Map<string, Session>();
  readonly #owners = new Map<string, Session>();
  /** Finished processes, oldest first: the finished caps forget from the front. */
  readonly #finished = new Set<string>();
  /** Spool size last offered to `process:output`, per running process. */
  readonly #offered = new Map<string, number>();
  #offeredAt = 0;
  /** Finished processes are forgotten `processes.finishedTtlMs` after they ended. */
  readonly #forgetProcess = new Map<string, NodeJS.Timeout>();
  /**
   * Closed sessions, oldest close first, each with the timer that forgets it
   * `tape.closedRetentionMs` after it closed; beyond `tape.maxClosedSessions` the oldest go first.
   */
  readonly #retained = new Map<Session, NodeJS.Timeout>();
  readonly #reaper: NodeJS.Timeout | undefined;
  readonly #ticker: NodeJS.Timeout;
  #active = 0;
  #closed = false;

  constructor(
    config: VigilConfig,
    host: PollerHost,
    options: {
      readonly events: EventEmitter<VigilEvents>;
      readonly now: () => number;
      readonly store: JournalStore;
    },
  ) {
    const { events, now, store } = options;
    this.#config = config;
    this.#events = events;
    this.#now = now;
    this.#spools = new SpoolDir({ stateDir: config.stateDir, maxBytes: config.output.maxBytes });
    this.#gate = new BreakerGate(config.watch.breaker, now, {
      paused: (sessionId, pause) => this.#sessions.get(sessionId)?.breakerPaused(pause),
      released: (release) => {
        for (const [sessionId, suppressed] of release.suppressedBySession) {
          this.#sessions.get(sessionId)?.breakerReleased(suppressed, release);
        }
      },
    });
    host.attach({
      started: (info) => {
        this.#sessions.get(info.sessionId)?.pollerStarted(info);
        events.emit('poller:started', info);
      },
      exited: (info) => {
        this.#sessions.get(info.sessionId)?.pollerExited(info);
        events.emit('poller:exited', info);
      },
      error: (error) => events.emit('error', error),
    });
    // Registered first, so every other listener sees the counts after the exit.
    events.on('process:exited', ({ processId }) => this.#ended(processId));
    this.#store = store;
    this.#secrets = instanceSecrets(config.secrets);
    const { scrub } = this.#secrets;
    this.#spawner =
      config.processes.spawner === 'helper'
        ? new Spawner((error) => events.emit('error', error), { scrub })
        : undefined;
    this.#context = {
      config,
      host,
      gate: this.#gate,
      spools: this.#spools,
      spawner: this.#spawner,
      secrets: this.#secrets,
      events,
      now,
      store,
    };
    store.onFenced?.((sessionId, why) => this.#fenced(sessionId, why));
    store.onTaken?.((saved) => this.#takenOver(saved));
    this.#restore(store.restore());
    this.#reaper = this.#startReaper();
    this.#ticker = setInterval(
      () => this.#tick(),
      Math.min(OUTPUT_EVERY_MS, Math.max(10, config.watch.matchTimeoutMs / 4)),
    );
    this.#ticker.unref();
  }

  get openCount(): number {
    let count = 0;
    for (const session of this.#sessions.values()) if (session.live) count++;
    return count;
  }

  /** Processes that have not ended, across every session. */
  get activeCount(): number {
    return this.#active;
  }

  get outboxDepth(): number {
    let depth = 0;
    for (const session of this.#sessions.values()) depth += session.journal.depth;
    return depth;
  }

  /** Opens a session and resolves once its poller runs. */
  async open(sessionId: string, options: OpenSessionOptions = {}): Promise<SessionInfo> {
    assertSessionId(sessionId);
    const delivery = deliveryOf(options);
    if (this.#closed) throw new VigilError('ERR_CLOSED', 'this vigil instance is closed');
    const existing = this.#sessions.get(sessionId);
    if (existing?.live && existing.dormant) return existing.attach(delivery);
    if (existing?.live) throw new VigilError('ERR_SESSION_EXISTS', `session ${sessionId} is already open`);
    if (existing?.state === 'closing') {
      throw new VigilError('ERR_SESSION_CLOSED', `session ${sessionId} is still closing`);
    }
    if (existing !== undefined) this.#forgetClosed(existing);
    // A shared store: this instance serves the session only with its lease (ERR_SESSION_OWNED).
    const left = this.#store.claim?.(sessionId);
    // Taken over by this instance's failover scan meanwhile: it is here, dormant.
    const taken = this.#sessions.get(sessionId);
    if (taken?.live && taken.dormant) return taken.attach(delivery);
    if (left !== undefined) {
      // Another instance left it open and is gone: it continues here, pending notifications first.
      this.#restore([left]);
      return this.require(sessionId).attach(delivery);
    }
    const session = new Session(sessionId, this.#context, delivery);
    this.#sessions.set(sessionId, session);
    void session.closed.then(() => this.#retain(session));
    try {
      return await session.open();
    } catch (error) {
      // Only a session whose poller never started is dropped; one that opened stays closable.
      if (session.state === 'closed' && this.#sessions.get(sessionId) === session) {
        this.#sessions.delete(sessionId);
        this.#store.deleteSession(sessionId);
      }
      throw error;
    }
  }

  /** Closes a session (G1, G2). Concurrent and repeated calls share one result. */
  close(sessionId: string, options: CloseSessionOptions = {}): Promise<SessionCloseResult> {
    try {
      return this.require(sessionId).close(options.reason ?? 'closed');
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The session, open or closed; `ERR_UNKNOWN_SESSION` if never opened (or forgotten). */
  require(sessionId: string): Session {
    assertSessionId(sessionId);
    const session = this.#sessions.get(sessionId);
    if (session === undefined) throw new VigilError('ERR_UNKNOWN_SESSION', `unknown session ${sessionId}`);
    return session;
  }

  /** The session if it is open; `ERR_SESSION_CLOSED` once closing started. Counts as activity. */
  requireLive(sessionId: string): Session {
    const session = this.require(sessionId);
    if (!session.live) throw new VigilError('ERR_SESSION_CLOSED', `session ${sessionId} is ${session.state}`);
    session.touch();
    return session;
  }

  list(): SessionInfo[] {
    return [...this.#sessions.values()].map((session) => session.info());
  }

  /** A page of sessions in id order; only the page's sessions are described. */
  page(after: string | undefined, limit: number): SessionPage {
    const { ids, hasMore } = idsAfter(this.#sessions.keys(), after, limit);
    const sessions = ids.map((id) => this.require(id).info());
    return { sessions, next: hasMore ? (ids.at(-1) ?? null) : null, total: this.#sessions.size };
  }

  /** Validates spawn input, checks the caps, and starts the process in its session. */
  spawn(input: unknown): Owned {
    return this.#spawn(parseSpawn(input, this.#config.processes));
  }

  /** Validates the input of `processes.run`, and starts its process as `spawn` does. */
  run(input: unknown): Owned & { readonly yieldMs: number } {
    const { spec, yieldMs } = parseRun(input, this.#config.processes);
    return { ...this.#spawn(spec), yieldMs };
  }

  #spawn(spec: SpawnSpec): Owned {
    if (spec.pty !== null && this.#spawner === undefined) {
      throw invalidInput(
        'pty',
        "Invalid spawn input: pty: a terminal is held by vigil's spawner process, and processes.spawner is 'direct'; set it to 'helper' (the default)",
      );
    }
    const session = this.requireLive(spec.sessionId);
    const { maxPerSession, maxTotal } = this.#config.processes;
    if (session.processes.activeCount >= maxPerSession) {
      throw new VigilError(
        'ERR_LIMIT_EXCEEDED',
        `session ${spec.sessionId} already runs ${session.processes.activeCount} processes (processes.maxPerSession)`,
      );
    }
    if (this.#active >= maxTotal) {
      throw new VigilError(
        'ERR_LIMIT_EXCEEDED',
        `${this.#active} processes are running (processes.maxTotal)`,
      );
    }
    const processId = newId('proc_');
    this.#active++;
    this.#owners.set(processId, session);
    try {
      return { session, process: session.spawn(processId, spec) };
    } catch (error) {
      this.#active--;
      this.#owners.delete(processId);
      throw error;
    }
  }

  /** A tracked process and its session; `ERR_UNKNOWN_PROCESS` otherwise. */
  process(processId: string): Owned {
    const session = typeof processId === 'string' ? this.#owners.get(processId) : undefined;
    const process = session?.processes.get(processId);
    if (session === undefined || process === undefined) {
      throw new VigilError('ERR_UNKNOWN_PROCESS', `unknown process ${String(processId)}`, {
        details: { field: 'processId' },
      });
    }
    return { session, process };
  }

  /** Forgets a process that ended, now; `ERR_PROCESS_RUNNING` while it has not. */
  remove(processId: string): ProcessInfo {
    const { session, process } = this.process(processId);
    const info = session.processes.info(process);
    if (!process.terminal) {
      throw new VigilError(
        'ERR_PROCESS_RUNNING',
        `process ${processId} is ${process.state}; only a process that ended can be removed (kill it first)`,
        { details: { field: 'processId', state: process.state } },
      );
    }
    this.#forget(processId);
    // Durable before it succeeds: a restarted vigil must not list it again.
    session.journal.commit();
    return info;
  }

  /** Every tracked process, in spawn order. */
  *processes(): IterableIterator<Owned> {
    for (const [processId, session] of this.#owners) {
      const process = session.processes.get(processId);
      if (process !== undefined) yield { session, process };
    }
  }

  /** Refuses new sessions and closes every session in parallel. */
  async closeAll(reason: string): Promise<void> {
    this.#closed = true;
    clearInterval(this.#reaper);
    clearInterval(this.#ticker);
    const closing = [...this.#sessions.values()]
      .filter((session) => session.state !== 'closed')
      .map((session) => session.close(reason));
    await Promise.allSettled(closing);
  }

  /**
   * A restart-safe stop's first step: every running command, detached ones included, runs on
   * without this instance, for a later one to adopt (see `ProcessTable.releaseAll`).
   */
  /**
   * A restart-safe stop's first step: waits (up to `stopTimeoutMs`) until the spawner reported the
   * pid of every command it started, so that each one's record can be adopted by the next vigil.
   */
  async awaitPids(hurry: AbortSignal): Promise<void> {
    const known = [...new Set(this.#owners.values())].map((session) => session.processes.pidsKnown());
    await deadline(Promise.all(known), this.#config.stopTimeoutMs, hurry).catch(() => {
      // Hurried: what is not known by now ends as lost after the restart, with its reason.
    });
  }

  releaseAll(): void {
    for (const session of new Set(this.#owners.values())) session.processes.releaseAll();
  }

  /**
   * A restart-safe stop's second step: every session stops delivering (the `deliver` in flight
   * settles, within `stopTimeoutMs`, and its acknowledgement is committed), then the journal is
   * frozen as it is, so that the close that follows leaves every session open in it for the next
   * vigil: its tape, pending notifications and approvals, and the records of the released commands.
   */
  async suspendAll(hurry: AbortSignal): Promise<void> {
    const { stopTimeoutMs } = this.#config;
    const settled = [...this.#sessions.values()].map((session) =>
      session.journal.closeDelivery(stopTimeoutMs),
    );
    try {
      await deadline(Promise.all(settled), stopTimeoutMs, hurry);
    } catch {
      // Hurried: an acknowledgement not journaled yet is delivered again after the restart (same id).
    } finally {
      this.#store.freeze();
    }
  }

  /**
   * Kills every process still running, detached ones included, with SIGKILL, and deletes every spool
   * (`vigil.close()`). With `keepProcesses`, released processes and their spools stay.
   */
  async destroy(options: { readonly keepProcesses?: boolean } = {}): Promise<void> {
    await Promise.all([...new Set(this.#owners.values())].map((session) => session.processes.destroy()));
    for (const timer of this.#forgetProcess.values()) clearTimeout(timer);
    this.#forgetProcess.clear();
    this.#owners.clear();
    this.#finished.clear();
    this.#offered.clear();
    this.#spools.close({ keepDirectory: options.keepProcesses === true });
    await this.#spawner?.close(options);
  }

  /** Drops every retained session and its timers (after `closeAll` and `destroy`), and releases the journal. */
  forgetAll(): void {
    this.#gate.close();
    for (const timer of this.#retained.values()) clearTimeout(timer);
    this.#retained.clear();
    for (const session of this.#sessions.values()) {
      session.dispose();
      this.#store.deleteSession(session.id);
    }
    this.#sessions.clear();
    this.#store.close();
  }

  /**
   * Takes back every session a previous run left open (G16): dormant until the gateway opens it
   * again, reaped after `sessionIdleTtlMs` otherwise. One that was closing is closed now.
   */
  #restore(restored: readonly RestoredSession[]): void {
    for (const saved of restored) {
      const sessionId = saved.record.sessionId;
      const session = new Session(sessionId, this.#context, undefined, saved);
      // Counted before the session takes them back: a process it ends at once is counted out.
      for (const record of saved.processes) {
        this.#owners.set(record.processId, session);
        if (!TERMINAL_STATES.has(record.state)) this.#active++;
      }
      this.#sessions.set(sessionId, session);
      session.restoreProcesses(saved.processes, saved.foreign);
      void session.closed.then(() => this.#retain(session));
      if (saved.record.state === 'closing')
        session.close(saved.record.closeReason ?? 'closed').catch(() => undefined);
    }
  }

  /**
   * Another instance took the session's lease (this one was paused, or cut off from the store):
   * it owns the session now. This instance drops it at once: no more deliveries, its poller
   * stopped, its processes here killed (the new owner marked them lost), and nothing of it written.
   */
  #fenced(sessionId: string, why: VigilError): void {
    const session = this.#sessions.get(sessionId);
    if (session === undefined || session.state === 'closed') return;
    this.#sessions.delete(sessionId);
    // Nothing more of its tape becomes readable here: its readers hear why, rather than wait.
    session.journal.drop(why);
    this.#events.emit('session:fenced', { sessionId });
    void session.close('fenced: another instance owns the session').then(() => {
      for (const [processId, owner] of this.#owners) if (owner === session) this.#forget(processId);
    });
  }

  /**
   * Failover: this instance took over a session whose instance is gone (its lease expired). It is
   * restored dormant, as after a restart; `session:restored` tells the gateway to open it again,
   * which delivers what was pending.
   */
  #takenOver(saved: RestoredSession): void {
    const sessionId = saved.record.sessionId;
    const existing = this.#sessions.get(sessionId);
    // A closing vigil takes nothing on (its close gives the lease back).
    if (this.#closed || (existing !== undefined && existing.state !== 'closed')) return;
    if (existing !== undefined) {
      // A closed session of the same id kept for reading: the store's session is the new one.
      clearTimeout(this.#retained.get(existing));
      this.#retained.delete(existing);
      this.#sessions.delete(sessionId);
    }
    this.#restore([saved]);
    this.#events.emit('session:restored', { sessionId });
  }

  #ended(processId: string): void {
    this.#active--;
    this.#offered.delete(processId);
    this.#finished.add(processId);
    const timer = setTimeout(() => this.#forget(processId), this.#config.processes.finishedTtlMs);
    timer.unref();
    this.#forgetProcess.set(processId, timer);
    this.#capFinished(this.#owners.get(processId));
  }

  /** Forgets the oldest finished processes beyond `processes.maxFinishedPerSession` and `maxFinished`. */
  #capFinished(session: Session | undefined): void {
    const { maxFinished, maxFinishedPerSession } = this.#config.processes;
    if (session !== undefined) {
      const own = [...this.#finished].filter((id) => this.#owners.get(id) === session);
      for (const id of own.slice(0, Math.max(0, own.length - maxFinishedPerSession))) this.#forget(id);
    }
    for (const id of this.#finished) {
      if (this.#finished.size <= maxFinished) break;
      this.#forget(id);
    }
  }

  /** Drops a finished process: its record, its spool, its timer. */
  #forget(processId: string): void {
    clearTimeout(this.#forgetProcess.get(processId));
    this.#forgetProcess.delete(processId);
    this.#finished.delete(processId);
    this.#owners.get(processId)?.processes.forget(processId);
    this.#owners.delete(processId);
  }

  /**
   * The periodic work that must not wait for an event: poller watchdogs, the spool caps of running
   * processes, and their new output for `process:output` listeners (coalesced, read from the spools,
   * so the main thread's work does not grow with the output's size).
   */
  #tick(): void {
    const now = this.#now();
    for (const session of this.#sessions.values()) session.inspect(now);
    const streaming =
      this.#events.listenerCount('process:output') > 0 && now - this.#offeredAt >= OUTPUT_EVERY_MS;
    if (streaming) this.#offeredAt = now;
    const onError = (error: VigilError) => this.#events.emit('error', error);
    for (const [processId, session] of this.#owners) {
      const process = session.processes.get(processId);
      if (process === undefined || process.terminal || !process.started) continue;
      process.spool.enforce(onError);
      if (!streaming || !session.live) continue;
      const offered = this.#offered.get(processId) ?? 0;
      // Whole lines: a secret is never split between two events, where neither half is redacted.
      const fresh = process.spool.linesAfter(offered, OUTPUT_CHARS * 4);
      if (fresh === undefined) continue;
      this.#offered.set(processId, fresh.end);
      if (fresh.text === '') continue;
      this.#events.emit('process:output', {
        sessionId: session.id,
        processId,
        text: lastChars(this.#secrets.redactor.visible(fresh.text), OUTPUT_CHARS),
      });
    }
  }

  /**
   * Keeps a closed session readable for `tape.closedRetentionMs`, and at most
   * `tape.maxClosedSessions` of them: the one closed longest ago is forgotten first.
   */
  #retain(session: Session): void {
    const { closedRetentionMs, maxClosedSessions } = this.#config.tape;
    if (closedRetentionMs === 0 || this.#closed) {
      this.#forgetClosed(session);
      return;
    }
    const timer = setTimeout(() => this.#forgetClosed(session), closedRetentionMs);
    timer.unref();
    this.#retained.set(session, timer);
    for (const oldest of this.#retained.keys()) {
      if (this.#retained.size <= maxClosedSessions) break;
      this.#forgetClosed(oldest);
    }
  }

  /** Drops a closed session: afterwards its id answers `ERR_UNKNOWN_SESSION` (or names a new session). */
  #forgetClosed(session: Session): void {
    clearTimeout(this.#retained.get(session));
    this.#retained.delete(session);
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    this.#store.deleteSession(session.id);
  }

  /** Closes sessions nobody touched for `sessionIdleTtlMs` (G3). */
  #startReaper(): NodeJS.Timeout | undefined {
    const ttl = this.#config.sessionIdleTtlMs;
    if (ttl === 0) return undefined;
    const timer = setInterval(
      () => {
        const now = this.#now();
        for (const session of this.#sessions.values()) {
          if (session.idle(now, ttl)) session.close('idle').catch(() => undefined);
        }
      },
      Math.min(60_000, Math.max(10, Math.floor(ttl / 4))),
    );
    timer.unref();
    return timer;
  }
}
