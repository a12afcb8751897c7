export type { WorkerHostOptions } from './worker-host.js';
export { createWorkerHost, WorkerHost } from './worker-host.js';
