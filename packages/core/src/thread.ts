// `@vigil/core/thread`: what a poller thread runs, without the registry or zod, so a new thread
// starts fast.
export type { PollerContext } from './poller/poller.js';
export { runPoller } from './poller/poller.js';
export type { PollerReport, PollerWork, RegistryPort } from './poller/protocol.js';
