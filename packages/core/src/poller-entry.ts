// `@vigil/core/poller`: what a poller thread needs, without the registry or zod, so a new thread
// starts fast.
export type { PollerContext } from './poller.js';
export { runPoller } from './poller.js';
export type {
  PollerFault,
  PollerReport,
  PollerWork,
  RegistryPort,
} from './poller-protocol.js';
