export type {
  ApprovalChange,
  ApprovalDecision,
  ApprovalOutcome,
  ApprovalRequest,
  ApprovalSnapshot,
  ApprovalView,
} from './approvals.js';
export { ApprovalQueue } from './approvals.js';
export type { VigilErrorCode, VigilErrorOptions } from './errors.js';
export { abortError, isVigilErrorCode, toVigilError, VigilError } from './errors.js';
export type { VigilEventName, VigilEvents } from './events.js';
export { assertSessionId, newId } from './ids.js';
export { createInThreadHost, InThreadHost } from './in-thread-host.js';
export type { ProcessInfo, ProcessState } from './managed-process.js';
export { TERMINAL_STATES } from './managed-process.js';
export type { PoolOptions, PoolOptionsInput, VigilConfig, VigilConfigInput } from './options.js';
export {
  configSchema,
  formatIssues,
  parseConfig,
  parseWith,
  poolOptionsSchema,
  resolvePoolThreads,
} from './options.js';
export type { Deliver, Notification } from './outbox.js';
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
export type { PollerLinkHandlers, ProbeResult } from './poller-link.js';
export { PollerLink } from './poller-link.js';
export type {
  MatchReport,
  OutputSlice,
  PollerFault,
  PollerHello,
  PollerLimits,
  PollerReport,
  PollerStart,
  PollerWork,
  ProcessReport,
  PullRequest,
  RegistryPort,
  WatchedProcess,
} from './poller-protocol.js';
export type { SpawnInput } from './process-spec.js';
export { spawnInputSchema } from './process-spec.js';
export type { LogOptions, PollResult, WaitOptions, WaitResult } from './processes.js';
export type { SessionCloseResult, SessionInfo, SessionState } from './session.js';
export type { CloseSessionOptions, OpenSessionOptions } from './sessions.js';
export type {
  TapeEvent,
  TapeEventType,
  TapePage,
  TapeReadOptions,
  TapeSubscribeOptions,
} from './tape-events.js';
export type {
  ApprovalsApi,
  ProcessesApi,
  SessionsApi,
  TapeApi,
  Vigil,
  VigilOptions,
  VigilStats,
} from './vigil.js';
export { createVigil } from './vigil.js';
export { watchPatternSchema } from './watch-pattern-schema.js';
export type { WatchPattern, WatchPatternInput } from './watch-patterns.js';
export { describePattern } from './watch-patterns.js';
