import { EventEmitter } from 'eventemitter3';
import { z } from 'zod';
import type {
  ApprovalAnswer,
  ApprovalAnswers,
  ApprovalDecision,
  ApprovalListener,
  ApprovalOutcome,
  ApprovalRequest,
  ApprovalSnapshot,
  RespondOptions,
} from './approvals/approval-queue.js';
import { parseConfig, type VigilConfig, type VigilConfigInput } from './config.js';
import { abortError, VigilError } from './errors.js';
import type { VigilEventName, VigilEvents } from './events.js';
import type { TapeEvent, TapePage, TapeReadOptions, TapeSubscribeOptions } from './journal/tape-events.js';
import type { PollerHost } from './poller/host.js';
import { createInThreadHost } from './poller/in-thread-host.js';
import type { ProbeResult } from './poller/link.js';
import type { ProcessInfo } from './process/process-info.js';
import { signalSchema } from './process/signals.js';
import {
  type RunInput,
  type SpawnInput,
  type TerminalSize,
  terminalSizeSchema,
} from './process/spawn-spec.js';
import { type CloseSessionOptions, type OpenSessionOptions, SessionRegistry } from './registry.js';
import type {
  LogOptions,
  LogPage,
  PollResult,
  RunResult,
  WaitOptions,
  WaitResult,
} from './session/process-table.js';
import type { Session } from './session/session.js';
import type { SessionCloseResult, SessionInfo } from './session/session-info.js';
import {
  SESSION_PAGE_DEFAULT_LIMIT,
  SESSION_PAGE_MAX_LIMIT,
  type SessionPage,
  type SessionPageOptions,
} from './session/session-page.js';
import { openStore } from './store/open-store.js';
import { RedisStore } from './store/redis-store.js';
import { deadline } from './timeout.js';
import { parse } from './validation.js';
import { enableLinearEngine } from './watch/regex-engine.js';

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
  /** A page of sessions in `sessionId` order, after `after`; `next` continues it. */
  page(options?: SessionPageOptions): SessionPage;
  /** Round trip through the session's poller; resolves with the run and thread that answered. */
  probe(sessionId: string): Promise<ProbeResult>;
}

export interface ProcessesApi {
  spawn(input: SpawnInput): ProcessInfo;
  /**
   * Spawns, then waits up to `yieldMs` (default 10 s, at most 2 min) for the command to end: the
   * foreground fast path. One that ends sooner resolves with its exit and output tail
   * (`finished: true`) and is never notified; one still running goes on in the background.
   */
  run(input: RunInput, options?: { readonly signal?: AbortSignal }): Promise<RunResult>;
  get(processId: string): ProcessInfo;
  list(filter?: { readonly sessionId?: string }): ProcessInfo[];
  poll(processId: string): PollResult;
  /** A page of the output's lines (read from the spool, not from memory); without `offset`, the last ones. */
  log(processId: string, options?: LogOptions): Promise<LogPage>;
  wait(processId: string, options?: WaitOptions): Promise<WaitResult>;
  kill(processId: string, options?: KillOptions): Promise<ProcessInfo>;
  /**
   * Removes a process that ended from `get` and `list`: its journaled record and its spool file (as
   * `processes.finishedTtlMs` would later). A notification of it already queued is still delivered.
   * Resolves with what it was. `ERR_PROCESS_RUNNING` while it has not ended.
   */
  remove(processId: string): ProcessInfo;
  /**
   * Writes to stdin within the `stdin` bounds of the config; resolves once the child took the data.
   * A write that times out or whose `signal` aborts closes the child's stdin. With `eof`, stdin is
   * then ended, as `closeStdin` does.
   */
  write(processId: string, data: string, options?: WriteOptions): Promise<void>;
  /**
   * Ends stdin after the writes already made: EOF for a pipe; for a terminal (`pty: true`) its EOF
   * character ^D (twice when a line is open, as at a keyboard). Later writes fail. Idempotent.
   */
  closeStdin(processId: string): void;
  /** Resizes the terminal of a process spawned with `pty: true` (`cols`, `rows`: 1..1000). */
  resize(processId: string, size: TerminalSize): void;
}

export interface KillOptions {
  /** Default SIGTERM (then SIGKILL after `processes.killGraceMs`). */
  readonly signal?: NodeJS.Signals;
  /**
   * The caller reads how it ended from the result, so its completion is consumed (G10): no
   * notification of it follows (the agent tool's `kill` sets this). Default false.
   */
  readonly consumeCompletion?: boolean;
}

export interface WriteOptions {
  readonly signal?: AbortSignal;
  /** End stdin after this data (see `closeStdin`). Default false. */
  readonly eof?: boolean;
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
  ): { readonly approvalId: string; readonly decision: Promise<ApprovalOutcome>; readonly granted: boolean };
  respond(sessionId: string, approvalId: string, decision: ApprovalDecision): ApprovalOutcome;
  /** Answers the head without naming it (`ERR_NO_PENDING_APPROVAL`, `ERR_STALE_VERSION`). */
  respondHead(sessionId: string, decision: ApprovalDecision, options?: RespondOptions): ApprovalAnswer;
  /** Answers every pending approval (up to `version`) in one mutation. */
  respondAll(sessionId: string, decision: ApprovalDecision, options?: RespondOptions): ApprovalAnswers;
  snapshot(sessionId: string): ApprovalSnapshot;
  subscribe(sessionId: string, listener: ApprovalListener): () => void;
}

/** This instance in a cluster of instances sharing one Redis store. */
export interface ClusterMember {
  readonly instanceId: string;
  /** Sets this instance's entry in `<prefix>instances` (kept with its `pid`, `hostname`, `startedAt`). */
  advertise(info: { readonly url?: string }): void;
}

/** A vigil instance: sessions, their pollers and everything they own. No state is shared between instances. */
export interface Vigil extends AsyncDisposable {
  readonly config: VigilConfig;
  readonly host: PollerHost;
  readonly sessions: SessionsApi;
  readonly processes: ProcessesApi;
  readonly tape: TapeApi;
  readonly approvals: ApprovalsApi;
  /**
   * With `store.kind: 'redis'`: this instance in its cluster, its id and what other instances read
   * of it (`advertise`: `vigil serve` sets its HTTP API's `url`). Undefined otherwise.
   */
  readonly cluster: ClusterMember | undefined;
  /** Registers a listener of a typed event; returns the function that removes it. */
  on<E extends VigilEventName>(event: E, listener: (...args: VigilEvents[E]) => void): () => void;
  stats(): VigilStats;
  /**
   * Closes every session in parallel, then the host, within `shutdownTimeoutMs`; whatever has not
   * stopped by then is ended by force (SIGKILL, terminated threads). `force` skips the graceful
   * wait, also of a close already running (a second Ctrl-C). `keepProcesses` makes it a
   * restart-safe stop. Idempotent.
   */
  close(options?: CloseOptions): Promise<void>;
}

export interface CloseOptions {
  /** End everything now: SIGKILL to every process group, no grace. Default false. */
  readonly force?: boolean;
  /**
   * A restart-safe stop: every running command runs on, with its spool and the process that records
   * its exit status, for the next vigil on the same `stateDir` to adopt. Deliveries stop first (the
   * one in flight settles and its acknowledgement is journaled); then the journal is kept as it is:
   * every session stays open in it, with its pending notifications and approvals, for the next
   * vigil to restore. Pollers and threads stop as in any close. Only the first close decides.
   * Default false.
   */
  readonly keepProcesses?: boolean;
}

const logOptionsSchema = z.object({
  offset: z.number().int().min(0).optional(),
  limit: z.number().int().min(1).max(1000).optional(),
  ansi: z.boolean().optional(),
});
const waitOptionsSchema = z.object({
  timeoutMs: z.number().int().min(0).optional(),
  signal: z.instanceof(AbortSignal).optional(),
});
const runOptionsSchema = z.object({ signal: z.instanceof(AbortSignal).optional() });
const killOptionsSchema = z.object({
  signal: signalSchema.optional(),
  consumeCompletion: z.boolean().optional(),
});
const writeDataSchema = z.string();
const sessionPageSchema = z.object({
  after: z.string().optional(),
  limit: z.number().int().min(1).max(SESSION_PAGE_MAX_LIMIT).default(SESSION_PAGE_DEFAULT_LIMIT),
});
const writeOptionsSchema = z.object({
  signal: z.instanceof(AbortSignal).optional(),
  eof: z.boolean().optional(),
});

function isPollerHost(value: unknown): value is PollerHost {
  const host = value as Partial<PollerHost> | null;
  return (
    typeof host === 'object' &&
    host !== null &&
    ['attach', 'start', 'stop', 'restart', 'stats', 'close'].every(
      (method) => typeof (host as Record<string, unknown>)[method] === 'function',
    )
  );
}

/** Creates a vigil instance. Options are validated; a bad field fails with `ERR_INVALID_CONFIG` naming it. */
export function createVigil(options: VigilOptions = {}): Vigil {
  if (typeof options !== 'object' || options === null) {
    throw new VigilError('ERR_INVALID_CONFIG', 'Invalid vigil options: expected an object', {
      details: { field: '(input)' },
    });
  }
  const { host: givenHost, ...rest } = options;
  if (givenHost !== undefined && !isPollerHost(givenHost)) {
    throw new VigilError('ERR_INVALID_CONFIG', 'Invalid vigil options: host: expected a PollerHost', {
      details: { field: 'host' },
    });
  }
  const config = parseConfig(rest);
  // Before any poller thread exists: no pattern of any session can get stuck where V8 can help it.
  enableLinearEngine();
  const host = givenHost ?? createInThreadHost();
  const events = new EventEmitter<VigilEvents>();
  const store = openStore(config, (error) => events.emit('error', error));
  let registry: SessionRegistry;
  try {
    registry = new SessionRegistry(config, host, { events, now: Date.now, store });
  } catch (error) {
    store.close();
    throw error;
  }
  const input = { what: 'options' };

  let closing: Promise<void> | undefined;
  const hurry = new AbortController();
  const close = (closeOptions: CloseOptions = {}): Promise<void> => {
    if (closeOptions.force === true) hurry.abort();
    const keepProcesses = closeOptions.keepProcesses === true;
    closing ??= (async () => {
      if (keepProcesses) {
        // A command whose pid is not known yet could not be adopted: wait for the spawner's report.
        await registry.awaitPids(hurry.signal);
        // Then: no session's close may kill them, nor be journaled.
        registry.releaseAll();
        await registry.suspendAll(hurry.signal);
      }
      try {
        await deadline(registry.closeAll('shutdown'), config.shutdownTimeoutMs, hurry.signal);
      } catch {
        // Hurried: the graceful close goes on while everything is ended by force below.
      } finally {
        // Whatever did not stop by now is ended by force: processes by SIGKILL, pollers with their threads.
        await Promise.all([registry.destroy({ keepProcesses }), host.close()]);
        registry.forgetAll();
        await store.released;
      }
    })();
    return closing;
  };

  /** Runs an approval answer, then commits it: it is acted on once durable, and a full disk fails the call. */
  const committed = <T>(sessionId: string, answer: (session: Session) => T): T => {
    const session = registry.require(sessionId);
    const result = answer(session);
    session.journal.commit();
    return result;
  };

  return {
    config,
    host,
    cluster: store instanceof RedisStore ? clusterMember(store) : undefined,
    sessions: {
      open: (sessionId, openOptions) => registry.open(sessionId, openOptions),
      close: (sessionId, closeOptions) => registry.close(sessionId, closeOptions),
      get: (sessionId) => registry.require(sessionId).info(),
      list: () => registry.list(),
      page(pageOptions = {}) {
        const { after, limit } = parse(sessionPageSchema, pageOptions, input);
        return registry.page(after, limit);
      },
      probe: (sessionId) => registry.requireLive(sessionId).probe(),
    },
    processes: {
      spawn(spawnInput) {
        const { session, process } = registry.spawn(spawnInput);
        return session.processes.info(process);
      },
      async run(runInput, runOptions = {}) {
        const { signal } = parse(runOptionsSchema, runOptions, input);
        // Before the spawn: an aborted caller starts nothing.
        if (signal?.aborted) throw abortError(signal);
        const { session, process, yieldMs } = registry.run(runInput);
        return session.processes.yieldTo(process, yieldMs, signal === undefined ? {} : { signal });
      },
      get(processId) {
        const { session, process } = registry.process(processId);
        return session.processes.info(process);
      },
      list(filter = {}) {
        const all = [...registry.processes()];
        const chosen =
          filter.sessionId === undefined
            ? all
            : all.filter(({ process }) => process.spec.sessionId === filter.sessionId);
        return chosen.map(({ session, process }) => session.processes.info(process));
      },
      poll(processId) {
        const { session, process } = registry.process(processId);
        return session.processes.poll(process);
      },
      async log(processId, logOptions = {}) {
        const { session, process } = registry.process(processId);
        return session.processes.log(process, parse(logOptionsSchema, logOptions, input));
      },
      async wait(processId, waitOptions = {}) {
        const { session, process } = registry.process(processId);
        return session.processes.wait(process, parse(waitOptionsSchema, waitOptions, input));
      },
      async kill(processId, killOptions = {}) {
        const { session, process } = registry.process(processId);
        const { signal = 'SIGTERM', consumeCompletion } = parse(killOptionsSchema, killOptions, input);
        return session.processes.kill(process, signal, consumeCompletion ? { consumeCompletion } : {});
      },
      remove: (processId) => registry.remove(processId),
      async write(processId, data, writeOptions = {}) {
        const { session, process } = registry.process(processId);
        const { signal, eof } = parse(writeOptionsSchema, writeOptions, input);
        await session.processes.write(process, parse(writeDataSchema, data, { what: 'data', root: 'data' }), {
          ...(signal === undefined ? {} : { signal }),
          ...(eof === undefined ? {} : { eof }),
        });
      },
      closeStdin(processId) {
        const { session, process } = registry.process(processId);
        session.processes.closeStdin(process);
      },
      resize(processId, size) {
        const { session, process } = registry.process(processId);
        session.processes.resize(process, parse(terminalSizeSchema, size, { what: 'size', root: 'size' }));
      },
    },
    tape: {
      read: async (sessionId, readOptions) => registry.require(sessionId).journal.read(readOptions),
      subscribe: (sessionId, subscribeOptions) =>
        registry.require(sessionId).journal.subscribe(subscribeOptions),
    },
    approvals: {
      request: (sessionId, request, requestOptions) =>
        registry.requireLive(sessionId).approvals.request(request, requestOptions),
      respond: (sessionId, approvalId, decision) =>
        committed(sessionId, (session) => session.approvals.respond(approvalId, decision)),
      respondHead: (sessionId, decision, respondOptions) =>
        committed(sessionId, (session) => session.approvals.respondHead(decision, respondOptions)),
      respondAll: (sessionId, decision, respondOptions) =>
        committed(sessionId, (session) => session.approvals.respondAll(decision, respondOptions)),
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
      const { pollers, threads } = host.stats();
      return {
        sessions: registry.openCount,
        pollers,
        threads,
        processes: registry.activeCount,
        outboxDepth: registry.outboxDepth,
      };
    },
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}

function clusterMember(store: RedisStore): ClusterMember {
  return { instanceId: store.instanceId, advertise: (info) => store.advertise(info) };
}
