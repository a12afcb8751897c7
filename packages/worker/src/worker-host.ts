import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { toVigilError, VigilError } from '@vigil/core';
import {
  checkedRegistry,
  deadline,
  type PollerHost,
  type PollerHostStats,
  type PollerObserver,
  type PollerStopResult,
  type PollerTarget,
  type PoolOptionsInput,
  parse,
  poolOptionsSchema,
  type RegistryPort,
  TIMED_OUT,
} from '@vigil/core/host';
import * as Comlink from 'comlink';
import { ThreadPool } from './thread-pool.js';

export interface WorkerHostOptions {
  /** Thread pool settings (see the README's config table). */
  readonly pool?: PoolOptionsInput;
  /**
   * The module each pooled thread runs (it exports `runPollerTask`). Default: vigil's own. Tests
   * pass a wrapper of it that can misbehave on request.
   */
  readonly threadEntry?: URL;
}

interface Run {
  readonly runId: number;
  readonly port: MessagePort;
  readonly startedAt: number;
  /** The pool whose thread runs it. */
  readonly pool: ThreadPool;
  threadId: number;
  /** Set when vigil terminated the run's thread on purpose. */
  forced: boolean;
  /** Set when the run ends for another session's fault, or to move: it restarts at once. */
  moved: boolean;
  /** Settles (never rejects) once the task is over and its port closed. */
  settled: Promise<void>;
}

interface Entry {
  readonly link: PollerTarget;
  run: Run | undefined;
  stopping: boolean;
  crashes: number;
  restartTimer: NodeJS.Timeout | undefined;
  stopped: Promise<PollerStopResult> | undefined;
  /** Quarantined: its runs go to the isolated pool, which no healthy session shares. */
  isolated: boolean;
}

/** A crash loop backs off up to this delay between restarts. */
const MAX_RESTART_DELAY_MS = 2_000;

/**
 * Runs sessions' pollers in pooled worker threads (piscina). Each poller run gets its own
 * MessageChannel with the registry exposed over Comlink. A poller that throws ends alone (its
 * thread stays). A poller that is stuck or does not stop in time has its thread terminated: the
 * other pollers of that thread restart elsewhere at once from the registry's state, and the stuck
 * session is quarantined on the isolated pool (`pool.isolatedThreads`) with its crash-loop back-off.
 */
export class WorkerHost implements PollerHost {
  readonly kind = 'worker';
  readonly #pool: ThreadPool;
  /** Quarantined sessions' pollers; undefined with `pollersPerThread: 1` (no thread is shared). */
  readonly #isolated: ThreadPool | undefined;
  readonly #entries = new Map<string, Entry>();
  #observer: PollerObserver | undefined;
  #runSeq = 0;
  #closing: Promise<void> | undefined;

  constructor(options: WorkerHostOptions = {}) {
    const pool = parse(poolOptionsSchema, options.pool ?? {}, {
      what: 'worker host options: pool',
      code: 'ERR_INVALID_CONFIG',
    });
    const onError = (error: unknown): void => this.#reportError(error);
    this.#pool = new ThreadPool(pool, options.threadEntry, onError);
    if (!this.#pool.exclusive) {
      // Every session may end up here: the isolated threads take as many pollers as the pool.
      const isolated = { ...pool, minThreads: 0, maxThreads: pool.isolatedThreads };
      const pollersPerThread = Math.ceil(this.#pool.capacity / pool.isolatedThreads);
      this.#isolated = new ThreadPool({ ...isolated, pollersPerThread }, options.threadEntry, onError);
    }
  }

  attach(observer: PollerObserver): void {
    if (this.#observer !== undefined) {
      throw new VigilError('ERR_INVALID_CONFIG', 'host: a poller host serves exactly one vigil instance');
    }
    this.#observer = observer;
  }

  async start(link: PollerTarget): Promise<void> {
    if (this.#closing !== undefined) throw new VigilError('ERR_CLOSED', 'the worker host is closed');
    if (this.#entries.has(link.sessionId)) {
      throw new VigilError('ERR_SESSION_EXISTS', `a poller for session ${link.sessionId} is running`);
    }
    if (this.#entries.size >= this.#pool.capacity) {
      throw new VigilError(
        'ERR_CAPACITY',
        `the worker pool is full (${this.#pool.capacity} pollers = pool.maxThreads x pool.pollersPerThread)`,
      );
    }
    const entry: Entry = {
      link,
      run: undefined,
      stopping: false,
      crashes: 0,
      restartTimer: undefined,
      stopped: undefined,
      isolated: false,
    };
    this.#entries.set(link.sessionId, entry);
    await this.#launch(entry, false);
  }

  stop(sessionId: string, options: { readonly timeoutMs: number }): Promise<PollerStopResult> {
    const entry = this.#entries.get(sessionId);
    if (entry === undefined) return Promise.resolve({ forced: false });
    entry.stopped ??= this.#stop(entry, options.timeoutMs);
    return entry.stopped;
  }

  async restart(sessionId: string, reason: string): Promise<void> {
    const entry = this.#entries.get(sessionId);
    const run = entry?.run;
    if (entry === undefined || run === undefined || run.threadId === 0) return;
    entry.isolated = this.#isolated !== undefined;
    run.forced = true;
    this.#reportError(
      new VigilError(
        'ERR_POLLER',
        `terminating the poller of session ${sessionId}${entry.isolated ? ' and quarantining the session' : ''}: ${reason}`,
      ),
    );
    await this.#terminate(run);
  }

  isolate(sessionId: string): void {
    const entry = this.#entries.get(sessionId);
    if (entry === undefined || entry.isolated || entry.stopping || this.#isolated === undefined) return;
    entry.isolated = true;
    const run = entry.run;
    if (run === undefined) return; // A restart is pending: it goes to the isolated pool.
    // The new run supersedes this one at once (its calls fail, its pull answers stop), so nothing
    // followed from now on reaches a shared thread.
    run.moved = true;
    this.#launch(entry, true).catch((error: unknown) => this.#reportError(error));
  }

  stats(): PollerHostStats {
    let pollers = 0;
    for (const entry of this.#entries.values()) if (entry.run !== undefined) pollers++;
    return { threads: this.#pool.threadCount + (this.#isolated?.threadCount ?? 0), pollers };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const runs: Promise<void>[] = [];
      for (const entry of this.#entries.values()) {
        entry.stopping = true;
        clearTimeout(entry.restartTimer);
        entry.link.requestStop();
        if (entry.run !== undefined) runs.push(entry.run.settled);
      }
      // Destroying the pool terminates every thread; piscina then rejects their tasks.
      await Promise.all([this.#pool.destroy(), this.#isolated?.destroy()]);
      await Promise.all(runs);
      this.#entries.clear();
    })();
    return this.#closing;
  }

  async #launch(entry: Entry, restart: boolean): Promise<void> {
    const runId = ++this.#runSeq;
    const { port1, port2 } = new MessageChannel();
    // The poller runs in another thread: every call it makes is checked before the registry sees it.
    const registry = checkedRegistry(entry.link.openRun(runId));
    let said!: () => void;
    const hello = new Promise<void>((resolve) => {
      said = resolve;
    });
    const pool = entry.isolated ? (this.#isolated ?? this.#pool) : this.#pool;
    const run: Run = {
      runId,
      port: port1,
      startedAt: Date.now(),
      pool,
      threadId: 0,
      forced: false,
      moved: false,
      settled: Promise.resolve(),
    };
    const exposed: RegistryPort = {
      hello: async (info) => {
        const reply = await registry.hello(info);
        run.threadId = info.threadId;
        said();
        return reply;
      },
      pull: (request) => registry.pull(request),
      commit: (report) => registry.commit(report),
    };
    Comlink.expose(exposed, port1);
    entry.run = run;
    const task = pool.run({
      kind: 'poller',
      sessionId: entry.link.sessionId,
      runId,
      port: port2,
      exclusive: pool.exclusive,
    });
    run.settled = task.then(
      () => this.#ended(entry, run, undefined),
      (error: unknown) => this.#ended(entry, run, error ?? new Error('poller task failed')),
    );
    const first = await Promise.race([
      hello.then(() => 'hello' as const),
      run.settled.then(() => 'ended' as const),
    ]);
    if (first === 'hello') {
      this.#observer?.started({ sessionId: entry.link.sessionId, runId, threadId: run.threadId, restart });
    }
  }

  #ended(entry: Entry, run: Run, error: unknown): void {
    run.port.close();
    entry.link.runEnded(run.runId);
    const current = entry.run === run;
    if (current) entry.run = undefined;
    const reason = run.forced ? 'terminated' : entry.stopping ? 'stopped' : run.moved ? 'moved' : 'crashed';
    // A run that moved was superseded (or is restarted at once); only the session's own faults back off.
    const restartInMs =
      !current || entry.stopping || this.#closing !== undefined
        ? undefined
        : reason === 'moved'
          ? 0
          : this.#backOff(entry, run);
    this.#observer?.exited({
      sessionId: entry.link.sessionId,
      runId: run.runId,
      threadId: run.threadId,
      reason,
      ...(reason === 'crashed' && error !== undefined ? { error: toVigilError(error, 'ERR_POLLER') } : {}),
      ...(restartInMs === undefined ? {} : { restartInMs }),
    });
    if (restartInMs === undefined) return;
    // Pollers are restartable by design: their state lives in the registry's link.
    entry.restartTimer = setTimeout(() => {
      entry.restartTimer = undefined;
      if (entry.stopping || this.#closing !== undefined) return;
      this.#launch(entry, true).catch((launchError: unknown) => this.#reportError(launchError));
    }, restartInMs);
  }

  /** The delay before restarting a session whose own run crashed or was stuck: a crash loop backs off. */
  #backOff(entry: Entry, run: Run): number {
    entry.crashes = Date.now() - run.startedAt > 5_000 ? 1 : entry.crashes + 1;
    return entry.crashes <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 25 * 2 ** entry.crashes);
  }

  async #stop(entry: Entry, timeoutMs: number): Promise<PollerStopResult> {
    entry.stopping = true;
    clearTimeout(entry.restartTimer);
    entry.link.requestStop();
    const run = entry.run;
    let forced = false;
    if (run !== undefined) {
      if ((await deadline(run.settled, timeoutMs)) === TIMED_OUT) {
        forced = true;
        run.forced = true;
        await this.#terminate(run);
      }
    }
    this.#entries.delete(entry.link.sessionId);
    return { forced };
  }

  /** Terminates the run's thread and waits for the run to end; the thread's other runs move at once. */
  async #terminate(run: Run): Promise<void> {
    for (const { run: other } of this.#entries.values()) {
      if (other === undefined || other === run || run.threadId === 0) continue;
      if (other.pool === run.pool && other.threadId === run.threadId) other.moved = true;
    }
    if (await run.pool.terminate(run.threadId)) {
      await run.settled;
      return;
    }
    // The task never said hello (still queued behind a stuck thread): fence it off instead. If it
    // ever starts, its calls fail on the closed port and it returns at once.
    run.port.close();
  }

  #reportError(error: unknown): void {
    this.#observer?.error?.(toVigilError(error, 'ERR_POLLER'));
  }
}

/** Creates a poller host that runs pollers in pooled worker threads. Pass it as `createVigil({ host })`. */
export function createWorkerHost(options: WorkerHostOptions = {}): WorkerHost {
  return new WorkerHost(options);
}
