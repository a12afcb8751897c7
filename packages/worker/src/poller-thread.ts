import { AsyncLocalStorage } from 'node:async_hooks';
import { threadId } from 'node:worker_threads';
import { type RegistryPort, runPoller } from '@vigil/core/thread';
import * as Comlink from 'comlink';
import { guardRegistry } from './guarded-port.js';
import type { PollerTask } from './protocol.js';

/** Ends the poller run whose code threw: each run's callbacks carry it as their async context. */
const faultOf = new AsyncLocalStorage<(error: unknown) => void>();

// An exception thrown from a run's callback (a timer, a watcher) ends that run alone; the thread and
// its other pollers stay. One no run owns ends the thread, as Node would.
process.on('uncaughtException', (error) => {
  const fail = faultOf.getStore();
  if (fail === undefined) throw error;
  fail(error);
});

/**
 * Runs in a pooled worker thread: one session's poller, talking to the registry over `task.port`.
 * `wrap` lets a test's thread entry stand between the poller and the registry.
 */
export async function runPollerTask(
  task: PollerTask,
  wrap: (registry: RegistryPort) => RegistryPort = (registry) => registry,
): Promise<void> {
  const remote = Comlink.wrap<RegistryPort>(task.port);
  let fail!: (error: unknown) => void;
  const failed = new Promise<never>((_resolve, reject) => {
    fail = (error) => {
      reject(error);
      // Its pending calls fail, so the abandoned run unwinds and closes its spools.
      task.port.close();
    };
  });
  try {
    // A thread of its own: reading a spool synchronously blocks nobody.
    await faultOf.run(fail, () =>
      Promise.race([
        runPoller(wrap(guardRegistry(remote, task.port)), {
          runId: task.runId,
          threadId,
          reads: 'sync',
          batchBytes: 1 << 20,
        }),
        failed,
      ]),
    );
  } finally {
    task.port.close();
    // An exclusive thread leaves with its poller, however that ended, so no other session can
    // ever run on it.
    if (task.exclusive) process.exit(0);
  }
}
