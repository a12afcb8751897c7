/**
 * The three poller hosts every scenario compares, built from the packages' dist output.
 * (The bench folder is not a workspace package, so `@vigil/*` is imported by relative path.)
 */
import { createVigil } from '../../packages/core/dist/index.js';
import { createWorkerHost } from '../../packages/worker/dist/index.js';
import { FAULTY_POLLER_THREAD } from '../../test/fixtures/faulty-poller.mjs';

export const SHARED = 'worker (shared)';
export const EXCLUSIVE = 'worker (pollersPerThread: 1)';
export const IN_THREAD = 'in-thread';
export const HOSTS = [SHARED, EXCLUSIVE, IN_THREAD];

/**
 * @typedef {object} HostSetup
 * @property {number} [maxThreads] thread cap for the exclusive host (one thread per session)
 * @property {boolean} [faults] threads that take `injectFault` (worker hosts only; test/fixtures)
 * @property {Record<string, unknown>} [options] extra `createVigil` options
 */

/**
 * Creates a vigil on the named host.
 * @param {string} name one of HOSTS
 * @param {HostSetup} [setup]
 */
export function createBenchVigil(name, setup = {}) {
  const { maxThreads = 64, faults = false, options = {} } = setup;
  const threadEntry = faults ? { threadEntry: FAULTY_POLLER_THREAD } : {};
  let host;
  if (name === SHARED) host = createWorkerHost(threadEntry);
  else if (name === EXCLUSIVE) {
    host = createWorkerHost({ ...threadEntry, pool: { pollersPerThread: 1, minThreads: 0, maxThreads } });
  } else if (name !== IN_THREAD) throw new Error(`unknown host ${name}`);
  const vigil = createVigil(host === undefined ? options : { ...options, host });
  return { vigil, host };
}
