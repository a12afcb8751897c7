import { type PoolOptions, resolvePoolThreads } from '@vigil/core/host';
import { Piscina } from 'piscina';
import { POLLER_TASK_EXPORT, type PollerTask } from './protocol.js';

const THREAD_ENTRY = new URL('./poller-thread.js', import.meta.url);

/**
 * The piscina pool that hosts pollers. Created on first use so an idle vigil owns no thread.
 * Pollers are endless tasks, so the pool is only ever destroyed, never drained.
 */
export class ThreadPool {
  readonly #options: PoolOptions;
  readonly #entry: URL;
  readonly #onError: (error: unknown) => void;
  #piscina: Piscina | undefined;
  /** One termination per thread, however many of its pollers need it gone. */
  readonly #terminating = new Map<number, Promise<void>>();

  constructor(options: PoolOptions, entry: URL | undefined, onError: (error: unknown) => void) {
    this.#options = options;
    this.#entry = entry ?? THREAD_ENTRY;
    this.#onError = onError;
  }

  get capacity(): number {
    return resolvePoolThreads(this.#options).maxThreads * this.#options.pollersPerThread;
  }

  get exclusive(): boolean {
    return this.#options.pollersPerThread === 1;
  }

  get threadCount(): number {
    return this.#piscina?.threads.length ?? 0;
  }

  run(task: PollerTask): Promise<void> {
    const piscina = this.#pool();
    return piscina.run(task, { name: POLLER_TASK_EXPORT, transferList: [task.port] }) as Promise<void>;
  }

  /** Terminates the thread with `threadId`; piscina rejects its tasks and replaces it if needed. */
  async terminate(threadId: number): Promise<boolean> {
    let terminating = this.#terminating.get(threadId);
    if (terminating === undefined) {
      const worker = this.#piscina?.threads.find((thread) => thread.threadId === threadId);
      if (worker === undefined) return false;
      terminating = worker.terminate().then(() => {
        this.#terminating.delete(threadId);
      });
      this.#terminating.set(threadId, terminating);
    }
    await terminating;
    return true;
  }

  async destroy(): Promise<void> {
    const piscina = this.#piscina;
    this.#piscina = undefined;
    if (piscina !== undefined) await piscina.destroy();
  }

  #pool(): Piscina {
    if (this.#piscina !== undefined) return this.#piscina;
    const { idleTimeoutMs, pollersPerThread, resourceLimits } = this.#options;
    const { minThreads, maxThreads } = resolvePoolThreads(this.#options);
    const piscina = new Piscina({
      filename: this.#entry.href,
      minThreads,
      maxThreads,
      idleTimeout: idleTimeoutMs,
      concurrentTasksPerWorker: pollersPerThread,
      // 'sync' atomics park an idle thread's event loop, which starves the Comlink ports living in it.
      atomics: 'disabled',
      resourceLimits,
      recordTiming: false,
    });
    piscina.on('error', this.#onError);
    this.#piscina = piscina;
    return piscina;
  }
}
