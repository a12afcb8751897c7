import { threadId } from 'node:worker_threads';
import { toVigilError, VigilError } from '../errors.js';
import { deadline, TIMED_OUT } from '../timeout.js';
import type { PollerHost, PollerHostStats, PollerObserver, PollerStopResult, PollerTarget } from './host.js';
import { runPoller } from './poller.js';

interface Run {
  readonly link: PollerTarget;
  readonly runId: number;
  readonly done: Promise<void>;
}

/**
 * Runs every poller on the calling thread. Fine for small embeddings and tests; a poller stuck in
 * synchronous code blocks this thread, so use `@vigil/worker` where isolation matters.
 */
export class InThreadHost implements PollerHost {
  readonly kind = 'in-thread';
  #observer: PollerObserver | undefined;
  #runSeq = 0;
  #closed = false;
  readonly #runs = new Map<string, Run>();

  attach(observer: PollerObserver): void {
    if (this.#observer !== undefined) {
      throw new VigilError('ERR_INVALID_CONFIG', 'host: a poller host serves exactly one vigil instance');
    }
    this.#observer = observer;
  }

  async start(link: PollerTarget): Promise<void> {
    if (this.#closed) throw new VigilError('ERR_CLOSED', 'the poller host is closed');
    const runId = ++this.#runSeq;
    const port = link.openRun(runId);
    let started!: () => void;
    const hello = new Promise<void>((resolve) => {
      started = resolve;
    });
    const done = runPoller(
      {
        hello: async (info) => {
          const reply = await port.hello(info);
          started();
          return reply;
        },
        // Yield to the event loop between batches: in-thread, a busy poller would starve it.
        pull: async (request) => {
          await new Promise((resolve) => setImmediate(resolve));
          return port.pull(request);
        },
        commit: (report) => port.commit(report),
      },
      // On the gateway's own thread: never block its loop on a read, and keep batches short.
      { runId, threadId, reads: 'async', batchBytes: 256 * 1024 },
    ).then(
      () => this.#exited(link, runId, undefined),
      (error: unknown) => this.#exited(link, runId, error),
    );
    this.#runs.set(link.sessionId, { link, runId, done });
    await Promise.race([hello, done]);
    this.#observer?.started({ sessionId: link.sessionId, runId, threadId, restart: false });
  }

  async stop(sessionId: string, options: { readonly timeoutMs: number }): Promise<PollerStopResult> {
    const run = this.#runs.get(sessionId);
    if (run === undefined) return { forced: false };
    run.link.requestStop();
    const late = (await deadline(run.done, options.timeoutMs)) === TIMED_OUT;
    // In-thread code cannot be terminated; a poller that ignores stop is abandoned and fenced off.
    if (late) this.#runs.delete(sessionId);
    return { forced: late };
  }

  async restart(sessionId: string): Promise<void> {
    const run = this.#runs.get(sessionId);
    if (run === undefined) return;
    run.link.requestStop();
    await run.done;
  }

  stats(): PollerHostStats {
    return { threads: 0, pollers: this.#runs.size };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#runs.keys()].map((id) => this.stop(id, { timeoutMs: 1000 })));
  }

  #exited(link: PollerTarget, runId: number, error: unknown): void {
    link.runEnded(runId);
    if (this.#runs.get(link.sessionId)?.runId === runId) this.#runs.delete(link.sessionId);
    this.#observer?.exited({
      sessionId: link.sessionId,
      runId,
      threadId,
      reason: error === undefined ? 'stopped' : 'crashed',
      ...(error === undefined ? {} : { error: toVigilError(error, 'ERR_POLLER') }),
    });
  }
}

/** The in-thread poller host (the default when `createVigil` gets no `host`). */
export function createInThreadHost(): InThreadHost {
  return new InThreadHost();
}
