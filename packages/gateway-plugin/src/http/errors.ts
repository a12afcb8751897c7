import { ERROR_CODES, toVigilError, type VigilErrorCode } from '@vigil/core';

/** The JSON body of every error response. */
export interface ErrorBody {
  readonly error: {
    readonly code: VigilErrorCode;
    readonly message: string;
    readonly details?: Readonly<Record<string, unknown>>;
  };
}

/** A response ready to send: status, headers and the error body. */
export interface ErrorReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ErrorBody;
}

/**
 * Maps anything thrown to an error reply: the status from vigil's one code table, and the headers
 * some codes call for (`WWW-Authenticate`, `Allow`, `Connection: close` after 401, 403 and 413). Anything that is not a
 * vigil error is an `ERR_INTERNAL` whose message is not sent.
 */
export function toErrorReply(thrown: unknown): ErrorReply {
  const error = toVigilError(thrown);
  if (error.code === 'ERR_INTERNAL') {
    return {
      status: 500,
      headers: {},
      body: { error: { code: 'ERR_INTERNAL', message: 'Internal server error' } },
    };
  }
  const details = serialisable(error.details);
  return {
    status: ERROR_CODES[error.code],
    headers: headersFor(error.code, error.details),
    body: { error: { code: error.code, message: error.message, ...(details ? { details } : {}) } },
  };
}

function headersFor(
  code: VigilErrorCode,
  details: Readonly<Record<string, unknown>> | undefined,
): Record<string, string> {
  switch (code) {
    // Refused before its body was read: the connection closes rather than read (and drop) the rest.
    case 'ERR_UNAUTHORIZED':
      return {
        'www-authenticate':
          details?.reason === 'invalid_token'
            ? 'Bearer realm="vigil", error="invalid_token"'
            : 'Bearer realm="vigil"',
        connection: 'close',
      };
    case 'ERR_FORBIDDEN_HOST':
    case 'ERR_BODY_TOO_LARGE':
      return { connection: 'close' };
    case 'ERR_METHOD_NOT_ALLOWED':
      return Array.isArray(details?.allow) ? { allow: details.allow.join(', ') } : {};
    default:
      return {};
  }
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
