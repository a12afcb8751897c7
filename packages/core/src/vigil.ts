import { EventEmitter } from 'eventemitter3';
import type { ApprovalDecision, ApprovalOutcome, ApprovalRequest, ApprovalSnapshot } from './approvals.js';
import { toVigilError, VigilError } from './errors.js';
import type { VigilEventName, VigilEvents } from './events.js';
import { createInThreadHost } from './in-thread-host.js';
import type { ProcessInfo } from './managed-process.js';
import { parseConfig, type VigilConfig, type VigilConfigInput } from './options.js';
import type { PollerHost } from './poller-host.js';
import type { ProbeResult } from './poller-link.js';
import type { SpawnInput } from './process-spec.js';
import {
  type LogOptions,
  type PollResult,
  ProcessRegistry,
  type WaitOptions,
  type WaitResult,
} from './processes.js';
import type { SessionCloseResult, SessionInfo } from './session.js';
import { type CloseSessionOptions, type OpenSessionOptions, SessionRegistry } from './sessions.js';
import type { TapeEvent, TapePage, TapeReadOptions, TapeSubscribeOptions } from './tape-events.js';
import { WatchReports } from './watch-reports.js';

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

export interface ProcessesApi {
  spawn(input: SpawnInput): ProcessInfo;
  get(processId: string): ProcessInfo;
  list(filter?: { readonly sessionId?: string }): ProcessInfo[];
  poll(processId: string): PollResult;
  log(processId: string, options?: LogOptions): ReturnType<ProcessRegistry['log']>;
  wait(processId: string, options?: WaitOptions): Promise<WaitResult>;
  kill(processId: string, options?: { readonly signal?: NodeJS.Signals }): Promise<ProcessInfo>;
  write(processId: string, data: string): Promise<void>;
}

export interface TapeApi {
  read(sessionId: string, options?: TapeReadOptions): Promise<TapePage>;
  subscribe(sessionId: string, options?: TapeSubscribeOptions): AsyncIterableIterator<TapeEvent, undefined>;
}

export interface ApprovalsApi {
  request(
    sessionId: string,
    request: ApprovalRequest,
    options?: { readonly timeoutMs?: number },
  ): { readonly approvalId: string; readonly decision: Promise<ApprovalOutcome> };
  respond(sessionId: string, approvalId: string, decision: ApprovalDecision): ApprovalOutcome;
  snapshot(sessionId: string): ApprovalSnapshot;
  subscribe(sessionId: string, listener: (snapshot: ApprovalSnapshot) => void | Promise<void>): () => void;
}

/** A vigil instance: sessions, their pollers and everything they own. No state is shared between instances. */
export interface Vigil extends AsyncDisposable {
  readonly config: VigilConfig;
  readonly host: PollerHost;
  readonly sessions: SessionsApi;
  readonly processes: ProcessesApi;
  readonly tape: TapeApi;
  readonly approvals: ApprovalsApi;
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
  let processes!: ProcessRegistry;
  let watch!: WatchReports;

  const registry = new SessionRegistry(config, host, events, {
    now,
    hooks: {
      parts: (deliver) => ({
        deliver,
        now,
        withdrawn: (notification) => processes.withdrawn(notification),
        onDeliveryFailure: (notification, error, attempt) => {
          events.emit('delivery:failed', { notification, error: toVigilError(error), attempt });
        },
        onDelivered: (notification) => processes.acknowledged(notification),
      }),
      opened: (session) => watch.attach(session),
      closing: async (session) => {
        await processes.closeSession(session);
        watch.detach(session);
      },
    },
  });
  processes = new ProcessRegistry({
    config,
    sessions: registry,
    now,
    onFinished: (process) => events.emit('process:exited', process.info()),
    onOutput: (process, chunk) => {
      if (events.listenerCount('process:output') === 0) return;
      events.emit('process:output', {
        sessionId: process.spec.sessionId,
        processId: process.processId,
        text: chunk.toString('utf8'),
      });
    },
  });
  watch = new WatchReports({ config, sessions: registry, processes, host, now });

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
        // Whatever did not stop by now is ended by force: processes by SIGKILL, pollers with their threads.
        await Promise.all([processes.closeAll(), host.close()]);
        watch.close();
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
    processes: {
      spawn: (input) => processes.spawn(input),
      get: (processId) => processes.get(processId),
      list: (filter) => processes.list(filter),
      poll: (processId) => processes.poll(processId),
      log: (processId, logOptions) => processes.log(processId, logOptions),
      wait: (processId, waitOptions) => processes.wait(processId, waitOptions),
      kill: (processId, killOptions) => processes.kill(processId, killOptions),
      write: (processId, data) => processes.write(processId, data),
    },
    tape: {
      read: async (sessionId, readOptions) => registry.require(sessionId).tape.read(readOptions),
      subscribe: (sessionId, subscribeOptions) =>
        registry.require(sessionId).tape.subscribe(subscribeOptions),
    },
    approvals: {
      request: (sessionId, request, requestOptions) =>
        registry.requireLive(sessionId).approvals.request(request, requestOptions),
      respond: (sessionId, approvalId, decision) =>
        registry.require(sessionId).approvals.respond(approvalId, decision),
      snapshot: (sessionId) => registry.require(sessionId).approvals.snapshot(),
      subscribe: (sessionId, listener) => registry.require(sessionId).approvals.subscribe(listener),
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
        processes: processes.activeCount,
        outboxDepth: registry.outboxDepth,
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
