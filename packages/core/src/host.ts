// `@vigil/core/host`: what builds on vigil from outside its core: poller hosts (`@vigil/worker`)
// and gateway adapters (`@vigil/gateway-plugin`). Embedders need only `@vigil/core`.
export type { PoolOptions, PoolOptionsInput } from './config.js';
export { poolOptionsSchema, resolvePoolThreads } from './config.js';
export type {
  PollerExitedInfo,
  PollerExitReason,
  PollerHost,
  PollerHostStats,
  PollerObserver,
  PollerStartedInfo,
  PollerStopResult,
  PollerTarget,
} from './poller/host.js';
export { createInThreadHost, InThreadHost } from './poller/in-thread-host.js';
export type {
  MatchReport,
  PollerHello,
  PollerLimits,
  PollerReport,
  PollerStart,
  PollerWork,
  ProcessEnd,
  ProcessReport,
  PullRequest,
  RegistryPort,
  WatchedProcess,
} from './poller/protocol.js';
export { checkedRegistry } from './poller/protocol-schema.js';
export { spawnErrorCode } from './process/spawn-spec.js';
export { deadline, TIMED_OUT } from './timeout.js';
export type { InputProblem, ParseOptions } from './validation.js';
export { inputProblems, parse } from './validation.js';
