import { threadId } from 'node:worker_threads';
import { runPoller } from '@vigil/core/poller';
import * as Comlink from 'comlink';
import { guardRegistry } from './guarded-port.js';
import type { PollerTask } from './protocol.js';

/** Runs in a pooled worker thread: one session's poller, talking to the registry over `task.port`. */
export async function runPollerTask(task: PollerTask): Promise<void> {
  const remote = Comlink.wrap<import('@vigil/core/poller').RegistryPort>(task.port);
  try {
    await runPoller(guardRegistry(remote, task.port), {
      runId: task.runId,
      threadId,
      allowFaults: task.allowFaults,
    });
  } finally {
    task.port.close();
    // An exclusive thread leaves with its poller, however that ended, so no other session can
    // ever run on it.
    if (task.exclusive) process.exit(0);
  }
}
