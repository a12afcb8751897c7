import type { PollerFault, RegistryPort } from './poller-protocol.js';

export interface PollerContext {
  readonly runId: number;
  readonly threadId: number;
  /** Whether injected faults are honoured (tests of the worker host only). */
  readonly allowFaults: boolean;
}

/**
 * A session's poller: pulls work from the registry, processes it, commits the result, and
 * returns when the registry says stop. The same code runs in a worker thread and in-thread.
 */
export async function runPoller(port: RegistryPort, context: PollerContext): Promise<void> {
  await port.hello({ runId: context.runId, threadId: context.threadId });
  for (;;) {
    const work = await port.pull({});
    if (work.stop) return;
    for (const fault of work.faults) {
      if (context.allowFaults) performFault(fault);
    }
    await port.commit({ probes: work.probes });
  }
}

function performFault(fault: PollerFault): void {
  switch (fault) {
    case 'spin':
      // A poller wedged in synchronous code: only terminating its thread ends it.
      for (;;) {
        /* busy */
      }
    case 'throw':
      setImmediate(() => {
        throw new Error('injected poller fault');
      });
      return;
    case 'exit':
      process.exit(1);
      return;
    case 'oom': {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array<number>(1 << 20).fill(hoard.length));
    }
  }
}
