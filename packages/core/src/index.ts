export type { VigilErrorCode, VigilErrorOptions } from './errors.js';
export { abortError, isVigilErrorCode, toVigilError, VigilError } from './errors.js';
export type { VigilEventName, VigilEvents } from './events.js';
export { assertSessionId, newId } from './ids.js';
export { createInThreadHost, InThreadHost } from './in-thread-host.js';
export type { PoolOptions, PoolOptionsInput, VigilConfig, VigilConfigInput } from './options.js';
export { configSchema, formatIssues, parseConfig, parseWith, poolOptionsSchema } from './options.js';
export type { PollerContext } from './poller.js';
export { runPoller } from './poller.js';
export type {
  PollerExitedInfo,
  PollerExitReason,
  PollerHost,
  PollerHostStats,
  PollerObserver,
  PollerStartedInfo,
  PollerStopResult,
} from './poller-host.js';
export type { ProbeResult } from './poller-link.js';
export { PollerLink } from './poller-link.js';
export type {
  PollerFault,
  PollerHello,
  PollerReport,
  PollerStart,
  PollerWork,
  PullRequest,
  RegistryPort,
} from './poller-protocol.js';
export type { Deliver, Notification, SessionCloseResult, SessionInfo, SessionState } from './session.js';
export type { CloseSessionOptions, OpenSessionOptions } from './sessions.js';
export type { SessionsApi, Vigil, VigilOptions, VigilStats } from './vigil.js';
export { createVigil } from './vigil.js';
