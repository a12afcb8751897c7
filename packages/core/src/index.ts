// `@vigil/core`: the embedder API. Poller hosts and gateway adapters also use `@vigil/core/host`.
export type {
  ApprovalAnswer,
  ApprovalAnswers,
  ApprovalDecision,
  ApprovalListener,
  ApprovalOutcome,
  ApprovalRequest,
  ApprovalSnapshot,
  ApprovalView,
  RespondOptions,
} from './approvals/approval-queue.js';
export { APPROVAL_DECISIONS } from './approvals/approval-queue.js';
export type { VigilConfig, VigilConfigInput } from './config.js';
export { configSchema, parseConfig } from './config.js';
export type { VigilErrorCode, VigilErrorOptions } from './errors.js';
export { ERROR_CODES, isVigilErrorCode, toVigilError, VigilError } from './errors.js';
export type { VigilEventName, VigilEvents } from './events.js';
export { isSessionId } from './ids.js';
export type {
  Deliver,
  DeliverBatch,
  Delivery,
  Notification,
  NotificationBatch,
  NotificationData,
  NotificationOf,
  NotificationType,
} from './journal/notification.js';
export type {
  TapeEvent,
  TapeEventData,
  TapeEventOf,
  TapeEventType,
  TapePage,
  TapeReadOptions,
  TapeSubscribeOptions,
  WatchDisabledReason,
} from './journal/tape-events.js';
export type { PollerExitedInfo, PollerExitReason, PollerHost, PollerStartedInfo } from './poller/host.js';
export type { ProbeResult } from './poller/link.js';
export { SURVIVOR_LIMIT_MS } from './process/child-run.js';
export type { CompletionPolicy } from './process/completion-policy.js';
export type { ProcessInfo, ProcessState } from './process/process-info.js';
export { TERMINAL_STATES } from './process/process-info.js';
export { processName } from './process/process-name.js';
export { signalSchema } from './process/signals.js';
export type { RunInput, SpawnInput, TerminalSize } from './process/spawn-spec.js';
export {
  DEFAULT_TERMINAL_SIZE,
  HEARTBEAT_FLOOR_MS,
  MAX_TIMEOUT_MS,
  MAX_YIELD_MS,
  runInputSchema,
  spawnInputSchema,
  TERMINAL_MAX_DIMENSION,
  terminalSizeSchema,
  yieldMsSchema,
} from './process/spawn-spec.js';
export type { CloseSessionOptions, OpenSessionOptions } from './registry.js';
export { REDACTED } from './secrets/redactor.js';
export { DEFAULT_ENV_DENY, DEFAULT_REDACT_PATTERNS } from './secrets/secrets-config.js';
export type {
  LogOptions,
  LogPage,
  PollResult,
  RunResult,
  WaitOptions,
  WaitResult,
} from './session/process-table.js';
export type {
  SessionCloseResult,
  SessionInfo,
  SessionPollerInfo,
  SessionState,
} from './session/session-info.js';
export type { SessionPage, SessionPageOptions } from './session/session-page.js';
export type {
  ApprovalsApi,
  CloseOptions,
  ClusterMember,
  KillOptions,
  ProcessesApi,
  SessionsApi,
  TapeApi,
  Vigil,
  VigilOptions,
  VigilStats,
  WriteOptions,
} from './vigil.js';
export { createVigil } from './vigil.js';
export { watchPatternSchema } from './watch/pattern-schema.js';
export type { WatchPatternInput } from './watch/patterns.js';
export { describePattern } from './watch/patterns.js';
