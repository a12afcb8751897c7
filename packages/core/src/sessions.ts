import type { EventEmitter } from 'eventemitter3';
import { VigilError } from './errors.js';
import type { VigilEvents } from './events.js';
import { assertSessionId } from './ids.js';
import type { VigilConfig } from './options.js';
import type { Deliver } from './outbox.js';
import type { PollerHost } from './poller-host.js';
import type { ProbeResult } from './poller-link.js';
import { Session, type SessionCloseResult, type SessionInfo, type SessionParts } from './session.js';

/** What the rest of the registry does when a session opens and closes. */
export interface SessionHooks {
  /** Parts a new session needs from its owner (delivery withdrawal rules, failure reporting). */
  parts(deliver: Deliver | undefined): SessionParts;
  /** Wires a new session (poller link handlers). */
  opened(session: Session): void;
  /** Runs while the poller stops: ends the session's processes and approvals. */
  closing(session: Session): Promise<void>;
}

export interface OpenSessionOptions {
  /** Called with each notification for the session; resolving acknowledges it. */
  readonly deliver?: Deliver;
}

export interface CloseSessionOptions {
  readonly reason?: string;
}

/**
 * The registry of sessions: opening starts the session's poller; closing resolves only after
 * that poller has stopped (G1, G2). Closed sessions stay readable for `tape.closedRetentionMs`.
 */
export class SessionRegistry {
  readonly #config: VigilConfig;
  readonly #host: PollerHost;
  readonly #events: EventEmitter<VigilEvents>;
  readonly #sessions = new Map<string, Session>();
  readonly #now: () => number;
  readonly #hooks: SessionHooks;
  #closed = false;

  constructor(
    config: VigilConfig,
    host: PollerHost,
    events: EventEmitter<VigilEvents>,
    options: { readonly now: () => number; readonly hooks: SessionHooks },
  ) {
    this.#config = config;
    this.#host = host;
    this.#events = events;
    this.#now = options.now;
    this.#hooks = options.hooks;
  }

  /** Opens a session and resolves once its poller runs. */
  async open(sessionId: string, options: OpenSessionOptions = {}): Promise<SessionInfo> {
    assertSessionId(sessionId);
    if (options.deliver !== undefined && typeof options.deliver !== 'function') {
      throw new VigilError('ERR_INVALID_INPUT', 'deliver must be a function', {
        details: { field: 'deliver' },
      });
    }
    if (this.#closed) throw new VigilError('ERR_CLOSED', 'this vigil instance is closed');
    const existing = this.#sessions.get(sessionId);
    if (existing?.live) {
      throw new VigilError('ERR_SESSION_EXISTS', `session ${sessionId} is already open`);
    }
    if (existing?.state === 'closing') {
      throw new VigilError('ERR_SESSION_CLOSED', `session ${sessionId} is still closing`);
    }
    const session = new Session(sessionId, this.#config, this.#hooks.parts(options.deliver));
    this.#hooks.opened(session);
    this.#sessions.set(sessionId, session);
    session.opened = this.#host.start(session.link);
    try {
      await session.opened;
    } catch (error) {
      if (this.#sessions.get(sessionId) === session) this.#sessions.delete(sessionId);
      session.state = 'closed';
      session.link.dispose();
      throw error;
    }
    if (session.state === 'opening') {
      session.state = 'open';
      session.tape.append('session.opened', { threadId: session.link.threadId });
      this.#events.emit('session:opened', session.info());
    }
    return session.info();
  }

  /**
   * Closes a session: stops its poller (cooperatively within `stopTimeoutMs`, else by terminating
   * its thread), then marks it closed. Concurrent and repeated calls share one result.
   */
  close(sessionId: string, options: CloseSessionOptions = {}): Promise<SessionCloseResult> {
    assertSessionId(sessionId);
    const session = this.#sessions.get(sessionId);
    if (session === undefined) {
      return Promise.reject(new VigilError('ERR_UNKNOWN_SESSION', `unknown session ${sessionId}`));
    }
    session.closing ??= this.#close(session, options.reason ?? 'closed');
    return session.closing;
  }

  async #close(session: Session, reason: string): Promise<SessionCloseResult> {
    session.state = 'closing';
    session.closeReason = reason;
    // Closing during open waits for the poller to exist, so that it can be stopped.
    await session.opened.catch(() => undefined);
    const [{ forced }] = await Promise.all([
      this.#host.stop(session.id, { timeoutMs: this.#config.stopTimeoutMs }),
      this.#hooks.closing(session),
    ]);
    session.link.dispose();
    session.pollerRunning = false;
    // No deliver call starts after this; the one in flight is aborted and gets stopTimeoutMs to settle.
    await session.outbox.close(this.#config.stopTimeoutMs);
    session.tape.append('session.closed', { reason, forced });
    session.state = 'closed';
    session.closedAt = this.#now();
    this.#events.emit('session:closed', session.info());
    this.#scheduleForget(session);
    return { sessionId: session.id, reason, forced };
  }

  #scheduleForget(session: Session): void {
    const forget = (): void => {
      if (this.#sessions.get(session.id) === session) this.#sessions.delete(session.id);
    };
    if (this.#config.tape.closedRetentionMs === 0 || this.#closed) {
      forget();
      return;
    }
    session.forgetTimer = setTimeout(forget, this.#config.tape.closedRetentionMs);
    session.forgetTimer.unref();
  }

  get(sessionId: string): SessionInfo {
    return this.require(sessionId).info();
  }

  list(): SessionInfo[] {
    return [...this.#sessions.values()].map((session) => session.info());
  }

  /** Round trip through the session's poller: resolves with the run and thread that answered. */
  probe(sessionId: string): Promise<ProbeResult> {
    const session = this.requireLive(sessionId);
    return session.link.probe();
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
    if (!session.live) {
      throw new VigilError('ERR_SESSION_CLOSED', `session ${sessionId} is ${session.state}`);
    }
    session.lastActivityAt = this.#now();
    return session;
  }

  /** Open sessions idle for longer than `sessionIdleTtlMs`. */
  idle(now: number): Session[] {
    const ttl = this.#config.sessionIdleTtlMs;
    return [...this.#sessions.values()].filter(
      (s) => s.state === 'open' && s.active.size === 0 && now - s.lastActivityAt >= ttl,
    );
  }

  get openCount(): number {
    let count = 0;
    for (const session of this.#sessions.values()) if (session.live) count++;
    return count;
  }

  get outboxDepth(): number {
    let depth = 0;
    for (const session of this.#sessions.values()) depth += session.outbox.depth;
    return depth;
  }

  byId(sessionId: string): Session | undefined {
    return this.#sessions.get(sessionId);
  }

  /** Refuses new sessions and closes every session in parallel. */
  async closeAll(reason: string): Promise<void> {
    this.#closed = true;
    const closing = [...this.#sessions.values()]
      .filter((session) => session.state !== 'closed')
      .map((session) => this.close(session.id, { reason }));
    await Promise.allSettled(closing);
  }

  /** Drops every retained session and its timers (after `closeAll`). */
  forgetAll(): void {
    for (const session of this.#sessions.values()) {
      clearTimeout(session.forgetTimer);
      session.link.dispose();
    }
    this.#sessions.clear();
  }
}
