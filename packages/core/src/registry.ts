import type { EventEmitter } from 'eventemitter3';
import { z } from 'zod';
import type { VigilConfig } from './config.js';
import { VigilError } from './errors.js';
import type { VigilEvents } from './events.js';
import { assertSessionId, newId } from './ids.js';
import type { Deliver } from './journal/notification.js';
import type { PollerHost } from './poller/host.js';
import type { ManagedProcess } from './process/managed-process.js';
import { parseSpawn } from './process/spawn-spec.js';
import { Session } from './session/session.js';
import type { SessionCloseResult, SessionInfo } from './session/session-info.js';
import { parse } from './validation.js';
import { BreakerGate } from './watch/breaker-gate.js';

export interface OpenSessionOptions {
  /** Called with each notification for the session; resolving acknowledges it. */
  readonly deliver?: Deliver;
}

export interface CloseSessionOptions {
  readonly reason?: string;
}

const openOptionsSchema = z.object({
  deliver: z.custom<Deliver>((value) => typeof value === 'function', 'must be a function').optional(),
});

/** A process and the session that owns it. */
export interface Owned {
  readonly session: Session;
  readonly process: ManagedProcess;
}

/**
 * What is truly global in a vigil instance: the sessions by id, every tracked process by id (kept
 * past its session's close while it runs), the caps, the watch breaker, the idle reaper and the
 * poller host. Everything else belongs to a session.
 */
export class SessionRegistry {
  readonly #config: VigilConfig;
  readonly #host: PollerHost;
  readonly #events: EventEmitter<VigilEvents>;
  readonly #now: () => number;
  readonly #gate: BreakerGate;
  readonly #sessions = new Map<string, Session>();
  readonly #owners = new Map<string, Session>();
  /** Finished processes are forgotten `processes.finishedTtlMs` after they ended. */
  readonly #forgetProcess = new Map<string, NodeJS.Timeout>();
  /** Closed sessions are forgotten `tape.closedRetentionMs` after they closed. */
  readonly #forgetSession = new Map<Session, NodeJS.Timeout>();
  readonly #reaper: NodeJS.Timeout | undefined;
  #active = 0;
  #closed = false;

  constructor(config: VigilConfig, host: PollerHost, events: EventEmitter<VigilEvents>, now: () => number) {
    this.#config = config;
    this.#host = host;
    this.#events = events;
    this.#now = now;
    this.#gate = new BreakerGate(config.watch.breaker, now, (release) => {
      for (const [sessionId, suppressed] of release.suppressedBySession) {
        this.#sessions.get(sessionId)?.breakerReleased(suppressed, release.releasedAt - release.trippedAt);
      }
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
    this.#reaper = this.#startReaper();
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
    const { deliver } = parse(openOptionsSchema, options, { what: 'session options' });
    if (this.#closed) throw new VigilError('ERR_CLOSED', 'this vigil instance is closed');
    const existing = this.#sessions.get(sessionId);
    if (existing?.live) throw new VigilError('ERR_SESSION_EXISTS', `session ${sessionId} is already open`);
    if (existing?.state === 'closing') {
      throw new VigilError('ERR_SESSION_CLOSED', `session ${sessionId} is still closing`);
    }
    const context = {
      config: this.#config,
      host: this.#host,
      gate: this.#gate,
      events: this.#events,
      now: this.#now,
    };
    const session = new Session(sessionId, context, deliver);
    this.#sessions.set(sessionId, session);
    void session.closed.then(() => this.#retain(session));
    try {
      return await session.open();
    } catch (error) {
      // Only a session whose poller never started is dropped; one that opened stays closable.
      if (session.state === 'closed' && this.#sessions.get(sessionId) === session)
        this.#sessions.delete(sessionId);
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

  /** Validates spawn input, checks the caps, and starts the process in its session. */
  spawn(input: unknown): Owned {
    const spec = parseSpawn(input);
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
    return { session, process: session.spawn(processId, spec) };
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
    const closing = [...this.#sessions.values()]
      .filter((session) => session.state !== 'closed')
      .map((session) => session.close(reason));
    await Promise.allSettled(closing);
  }

  /** Kills every process still running, detached ones included, with SIGKILL (`vigil.close()`). */
  async destroy(): Promise<void> {
    await Promise.all([...new Set(this.#owners.values())].map((session) => session.processes.destroy()));
    for (const timer of this.#forgetProcess.values()) clearTimeout(timer);
    this.#forgetProcess.clear();
    this.#owners.clear();
  }

  /** Drops every retained session and its timers (after `closeAll` and `destroy`). */
  forgetAll(): void {
    this.#gate.close();
    for (const timer of this.#forgetSession.values()) clearTimeout(timer);
    this.#forgetSession.clear();
    for (const session of this.#sessions.values()) session.dispose();
    this.#sessions.clear();
  }

  #ended(processId: string): void {
    this.#active--;
    const timer = setTimeout(() => {
      this.#forgetProcess.delete(processId);
      this.#owners.get(processId)?.processes.forget(processId);
      this.#owners.delete(processId);
    }, this.#config.processes.finishedTtlMs);
    timer.unref();
    this.#forgetProcess.set(processId, timer);
  }

  /** Keeps a closed session readable for `tape.closedRetentionMs`. */
  #retain(session: Session): void {
    const forget = (): void => {
      this.#forgetSession.delete(session);
      if (this.#sessions.get(session.id) === session) this.#sessions.delete(session.id);
    };
    if (this.#config.tape.closedRetentionMs === 0 || this.#closed) {
      forget();
      return;
    }
    const timer = setTimeout(forget, this.#config.tape.closedRetentionMs);
    timer.unref();
    this.#forgetSession.set(session, timer);
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
