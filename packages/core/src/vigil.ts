import { EventEmitter } from 'eventemitter3';
import { VigilError } from './errors.js';
import type { VigilEventName, VigilEvents } from './events.js';
import { createInThreadHost } from './in-thread-host.js';
import { parseConfig, type VigilConfig, type VigilConfigInput } from './options.js';
import type { PollerHost } from './poller-host.js';
import type { ProbeResult } from './poller-link.js';
import type { SessionCloseResult, SessionInfo } from './session.js';
import { type CloseSessionOptions, type OpenSessionOptions, SessionRegistry } from './sessions.js';

export interface VigilOptions extends VigilConfigInput {
  /** Where pollers run. Default: the in-thread host; pass `createWorkerHost()` from `@vigil/worker`. */
  readonly host?: PollerHost;
}

export interface VigilStats {
  readonly sessions: number;
  readonly pollers: number;
  readonly threads: number;
  readonly processes: number;
  readonly outboxDepth: number;
}

export interface SessionsApi {
  open(sessionId: string, options?: OpenSessionOptions): Promise<SessionInfo>;
  close(sessionId: string, options?: CloseSessionOptions): Promise<SessionCloseResult>;
  get(sessionId: string): SessionInfo;
  list(): SessionInfo[];
  /** Round trip through the session's poller; resolves with the run and thread that answered. */
  probe(sessionId: string): Promise<ProbeResult>;
}

/** A vigil instance: sessions, their pollers and everything they own. No state is shared between instances. */
export interface Vigil extends AsyncDisposable {
  readonly config: VigilConfig;
  readonly host: PollerHost;
  readonly sessions: SessionsApi;
  on<E extends VigilEventName>(event: E, listener: (...args: VigilEvents[E]) => void): () => void;
  stats(): VigilStats;
  /** Closes every session in parallel, then the host, within `shutdownTimeoutMs`. Idempotent. */
  close(): Promise<void>;
}

function isPollerHost(value: unknown): value is PollerHost {
  const host = value as Partial<PollerHost> | null;
  return (
    typeof host === 'object' &&
    host !== null &&
    typeof host.attach === 'function' &&
    typeof host.start === 'function' &&
    typeof host.stop === 'function' &&
    typeof host.close === 'function'
  );
}

/** Creates a vigil instance. Options are validated; a bad field fails with `ERR_INVALID_CONFIG` naming it. */
export function createVigil(options: VigilOptions = {}): Vigil {
  if (typeof options !== 'object' || options === null) {
    throw new VigilError('ERR_INVALID_CONFIG', 'Invalid vigil options: expected an object');
  }
  const { host: givenHost, ...rest } = options;
  if (givenHost !== undefined && !isPollerHost(givenHost)) {
    throw new VigilError('ERR_INVALID_CONFIG', 'Invalid vigil options: host: expected a PollerHost', {
      details: { fields: ['host'] },
    });
  }
  const config = parseConfig(rest);
  const host = givenHost ?? createInThreadHost();
  const events = new EventEmitter<VigilEvents>();
  const now = Date.now;
  const registry = new SessionRegistry(config, host, events, now);

  host.attach({
    started: (info) => {
      const session = registry.byId(info.sessionId);
      if (session !== undefined && session.link.runId === info.runId) {
        session.pollerRunning = true;
        if (info.restart) session.pollerRestarts++;
      }
      events.emit('poller:started', info);
    },
    exited: (info) => {
      const session = registry.byId(info.sessionId);
      if (session !== undefined && session.link.runId === info.runId) session.pollerRunning = false;
      events.emit('poller:exited', info);
    },
    error: (error) => {
      events.emit('error', error);
    },
  });

  const reaper = startReaper(config, registry, now);
  let closing: Promise<void> | undefined;

  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (reaper !== undefined) clearInterval(reaper);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, config.shutdownTimeoutMs);
      });
      try {
        await Promise.race([registry.closeAll('shutdown'), deadline]);
      } finally {
        clearTimeout(timer);
        // The host's close is forceful: whatever did not stop by now is terminated with its thread.
        await host.close();
        registry.forgetAll();
      }
    })();
    return closing;
  };

  return {
    config,
    host,
    sessions: {
      open: (sessionId, openOptions) => registry.open(sessionId, openOptions),
      close: (sessionId, closeOptions) => registry.close(sessionId, closeOptions),
      get: (sessionId) => registry.get(sessionId),
      list: () => registry.list(),
      probe: (sessionId) => registry.probe(sessionId),
    },
    on(event, listener) {
      events.on(event, listener as never);
      return () => {
        events.off(event, listener as never);
      };
    },
    stats() {
      const hostStats = host.stats();
      return {
        sessions: registry.openCount,
        pollers: hostStats.pollers,
        threads: hostStats.threads,
        processes: 0,
        outboxDepth: 0,
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function startReaper(config: VigilConfig, registry: SessionRegistry, now: () => number) {
  const ttl = config.sessionIdleTtlMs;
  if (ttl === 0) return undefined;
  const every = Math.min(60_000, Math.max(10, Math.floor(ttl / 4)));
  const timer = setInterval(() => {
    for (const session of registry.idle(now())) {
      registry.close(session.id, { reason: 'idle' }).catch(() => undefined);
    }
  }, every);
  timer.unref();
  return timer;
}
