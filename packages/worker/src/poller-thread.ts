import { threadId } from 'node:worker_threads';
import { type RegistryPort, runPoller } from '@vigil/core/thread';
import * as Comlink from 'comlink';
import { guardRegistry } from './guarded-port.js';
import type { PollerTask } from './protocol.js';

/**
 * Runs in a pooled worker thread: one session's poller, talking to the registry over `task.port`.
 * `wrap` lets a test's thread entry stand between the poller and the registry.
 */
export async function runPollerTask(
  task: PollerTask,
  wrap: (registry: RegistryPort) => RegistryPort = (registry) => registry,
): Promise<void> {
  const remote = Comlink.wrap<RegistryPort>(task.port);
  try {
    // A thread of its own: reading a spool synchronously blocks nobody.
    await runPoller(wrap(guardRegistry(remote, task.port)), {
      runId: task.runId,
      threadId,
      reads: 'sync',
      batchBytes: 1 << 20,
    });
  } finally {
    task.port.close();
    // An exclusive thread leaves with its poller, however that ended, so no other session can
    // ever run on it.
    if (task.exclusive) process.exit(0);
  }
}
