import { isVigilErrorCode, toVigilError, type VigilErrorCode } from '@vigil/core';

/** Error codes that only the HTTP layer raises (everything else is a `VigilErrorCode`). */
export type HttpOnlyErrorCode =
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN_HOST'
  | 'ERR_NOT_FOUND'
  | 'ERR_METHOD_NOT_ALLOWED'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_INTERNAL';

export type HttpErrorCode = VigilErrorCode | HttpOnlyErrorCode;

/** The one table from error code to HTTP status. */
export const HTTP_STATUS: Readonly<Record<HttpErrorCode, number>> = {
  ERR_INVALID_CONFIG: 400,
  ERR_INVALID_INPUT: 400,
  ERR_INVALID_SESSION_ID: 400,
  ERR_INVALID_PATTERN: 400,
  ERR_INVALID_CURSOR: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN_HOST: 403,
  ERR_UNKNOWN_SESSION: 404,
  ERR_UNKNOWN_PROCESS: 404,
  ERR_UNKNOWN_APPROVAL: 404,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_SESSION_EXISTS: 409,
  ERR_SESSION_CLOSED: 409,
  ERR_BODY_TOO_LARGE: 413,
  ERR_LIMIT_EXCEEDED: 429,
  ERR_CAPACITY: 429,
  ERR_POLLER: 500,
  ERR_TIMEOUT: 500,
  ERR_ABORTED: 500,
  ERR_INTERNAL: 500,
  ERR_CLOSED: 503,
};

/** The JSON body of every error response. */
export interface ErrorBody {
  readonly error: {
    readonly code: HttpErrorCode;
    readonly message: string;
    readonly details?: Readonly<Record<string, unknown>>;
  };
}

/** A refusal by the HTTP layer itself (auth, Host, routing, body size); extra `headers` go on the response. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly code: HttpOnlyErrorCode;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: HttpOnlyErrorCode, message: string, headers: Readonly<Record<string, string>> = {}) {
    super(message);
    this.code = code;
    this.headers = headers;
  }
}

/** A response ready to send: status, headers and the error body. */
export interface ErrorReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ErrorBody;
}

/**
 * Maps anything thrown to an error reply. VigilErrors (also ones that lost their prototype) keep
 * their code, message and details; anything else is an `ERR_INTERNAL` whose message is not leaked.
 */
export function toErrorReply(thrown: unknown): ErrorReply {
  if (thrown instanceof HttpError) {
    return {
      status: HTTP_STATUS[thrown.code],
      headers: thrown.headers,
      body: { error: { code: thrown.code, message: thrown.message } },
    };
  }
  const code = (thrown as { code?: unknown } | null)?.code;
  if (typeof thrown === 'object' && thrown !== null && isVigilErrorCode(code)) {
    const error = toVigilError(thrown);
    const details = serialisable(error.details);
    return {
      status: HTTP_STATUS[error.code],
      headers: {},
      body: { error: { code: error.code, message: error.message, ...(details ? { details } : {}) } },
    };
  }
  return {
    status: 500,
    headers: {},
    body: { error: { code: 'ERR_INTERNAL', message: 'Internal server error' } },
  };
}

function serialisable(
  details: Readonly<Record<string, unknown>> | undefined,
): Readonly<Record<string, unknown>> | undefined {
  if (details === undefined) return undefined;
  try {
    JSON.stringify(details);
    return details;
  } catch {
    return undefined;
  }
}
