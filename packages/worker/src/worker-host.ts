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
  threadId: number;
  /** Set when vigil terminated the run's thread on purpose. */
  forced: boolean;
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
}

/** A crash loop backs off up to this delay between restarts. */
const MAX_RESTART_DELAY_MS = 2_000;

/**
 * Runs sessions' pollers in pooled worker threads (piscina). Each poller run gets its own
 * MessageChannel with the registry exposed over Comlink. A poller that does not stop in time has
 * its thread terminated; the other pollers of that thread restart elsewhere from the registry's state.
 */
export class WorkerHost implements PollerHost {
  readonly kind = 'worker';
  readonly #pool: ThreadPool;
  readonly #entries = new Map<string, Entry>();
  #observer: PollerObserver | undefined;
  #runSeq = 0;
  #closing: Promise<void> | undefined;

  constructor(options: WorkerHostOptions = {}) {
    const pool = parse(poolOptionsSchema, options.pool ?? {}, {
      what: 'worker host options: pool',
      code: 'ERR_INVALID_CONFIG',
    });
    this.#pool = new ThreadPool(pool, options.threadEntry, (error) => this.#reportError(error));
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
    const run = this.#entries.get(sessionId)?.run;
    if (run === undefined || run.threadId === 0) return;
    run.forced = true;
    this.#reportError(
      new VigilError('ERR_POLLER', `terminating the poller of session ${sessionId}: ${reason}`),
    );
    await this.#terminate(run);
  }

  stats(): PollerHostStats {
    let pollers = 0;
    for (const entry of this.#entries.values()) if (entry.run !== undefined) pollers++;
    return { threads: this.#pool.threadCount, pollers };
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
      await this.#pool.destroy();
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
    const run: Run = {
      runId,
      port: port1,
      startedAt: Date.now(),
      threadId: 0,
      forced: false,
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
    const task = this.#pool.run({
      kind: 'poller',
      sessionId: entry.link.sessionId,
      runId,
      port: port2,
      exclusive: this.#pool.exclusive,
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
    if (entry.run === run) entry.run = undefined;
    const reason = run.forced ? 'terminated' : entry.stopping ? 'stopped' : 'crashed';
    this.#observer?.exited({
      sessionId: entry.link.sessionId,
      runId: run.runId,
      threadId: run.threadId,
      reason,
      ...(reason === 'crashed' && error !== undefined ? { error: toVigilError(error, 'ERR_POLLER') } : {}),
    });
    if (entry.stopping || this.#closing !== undefined) return;
    // Pollers are restartable by design: their state lives in the registry's link.
    entry.crashes = Date.now() - run.startedAt > 5_000 || run.forced ? 1 : entry.crashes + 1;
    const delay = entry.crashes <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 25 * 2 ** entry.crashes);
    entry.restartTimer = setTimeout(() => {
      entry.restartTimer = undefined;
      if (entry.stopping || this.#closing !== undefined) return;
      this.#launch(entry, true).catch((launchError: unknown) => this.#reportError(launchError));
    }, delay);
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

  /** Terminates the run's thread and waits for the run to end. */
  async #terminate(run: Run): Promise<void> {
    if (await this.#pool.terminate(run.threadId)) {
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
