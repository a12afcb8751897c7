import type { ApprovalSnapshot, ProcessInfo, SessionInfo, TapeEvent, TapePage } from '@vigil/core';

/** A request an instance sends on to the instance that owns its session. */
export interface ForwardRequest {
  readonly method: string;
  /** The request target (path and query) as the client sent it. */
  readonly target: string;
  /** The validated body; undefined for a route without one. */
  readonly body: unknown;
  /** The instance that forwarded it here, if one did: a forwarded request is never forwarded again. */
  readonly forwardedBy: string | undefined;
  readonly signal: AbortSignal;
}

/** The owner's answer, passed on as is. */
export interface ForwardedReply {
  readonly status: number;
  readonly body?: unknown;
}

/** The header naming the instance a request was forwarded by. */
export const FORWARDED_BY_HEADER = 'x-vigil-forwarded-by';

/**
 * What the HTTP API asks of a cluster for the sessions this instance does not serve (see
 * `vigil serve --redis`): reads come from the shared store, operations that must run where the
 * session's processes run are forwarded to its owner.
 */
export interface ClusterRouting {
  /** Ids of the cluster's sessions not closed. */
  sessionIds(): Promise<string[]>;
  session(sessionId: string): Promise<SessionInfo>;
  read(
    sessionId: string,
    options: {
      readonly after?: number | undefined;
      readonly limit?: number | undefined;
      readonly waitMs?: number | undefined;
      readonly signal?: AbortSignal;
    },
  ): Promise<TapePage>;
  subscribe(
    sessionId: string,
    options: { readonly after: number; readonly signal: AbortSignal },
  ): AsyncIterable<TapeEvent>;
  approvals(sessionId: string): Promise<ApprovalSnapshot>;
  processes(sessionId: string): Promise<ProcessInfo[]>;
  /** Runs the request on the session's owner; `ERR_SESSION_OWNED` when it cannot. */
  forwardToSession(sessionId: string, request: ForwardRequest): Promise<ForwardedReply>;
  /** The same for the owner of the process's session; `ERR_UNKNOWN_PROCESS` when no session has it. */
  forwardToProcess(processId: string, request: ForwardRequest): Promise<ForwardedReply>;
}
