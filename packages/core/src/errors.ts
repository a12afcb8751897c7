/**
 * Every error code vigil raises, with the HTTP status the API answers it with. The one table: the
 * code type is derived from it, and the HTTP layer reads its statuses from it.
 */
export const ERROR_CODES = {
  /** Options of `createVigil`, a host or the HTTP API are invalid; the message names the field. */
  ERR_INVALID_CONFIG: 400,
  /** A caller's input is invalid; the message names the field. */
  ERR_INVALID_INPUT: 400,
  ERR_INVALID_SESSION_ID: 400,
  ERR_INVALID_PATTERN: 400,
  /** A tape cursor (`after`, `Last-Event-ID`) is not one the tape can continue from. */
  ERR_INVALID_CURSOR: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN_HOST: 403,
  ERR_UNKNOWN_SESSION: 404,
  ERR_UNKNOWN_PROCESS: 404,
  /** An id prefix names two or more processes; `details.matches` lists them. */
  ERR_AMBIGUOUS_PROCESS: 400,
  /** The process has not ended, so it cannot be removed (kill it first). */
  ERR_PROCESS_RUNNING: 409,
  ERR_UNKNOWN_APPROVAL: 404,
  /** No HTTP route has this path. */
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_SESSION_EXISTS: 409,
  ERR_SESSION_CLOSED: 409,
  /** An answer to the head of a session's approvals when none is pending. */
  ERR_NO_PENDING_APPROVAL: 409,
  /** An answer given for a snapshot version whose head is no longer the head. */
  ERR_STALE_VERSION: 409,
  ERR_BODY_TOO_LARGE: 413,
  /** A cap of the config (`processes.maxPerSession`, `processes.maxTotal`) is reached. */
  ERR_LIMIT_EXCEEDED: 429,
  /** The worker pool has no room for another poller. */
  ERR_CAPACITY: 429,
  /** A poller run crashed or was superseded. */
  ERR_POLLER: 500,
  /** A `deliver` call threw or rejected (its error is the cause). */
  ERR_DELIVERY: 500,
  /** A process's output spool could not be created or kept (the message names the path). */
  ERR_SPOOL: 500,
  /**
   * The journal in \`stateDir\` cannot be used: corrupt, not a vigil journal, written by a newer vigil
   * (schema), or unreadable. The message names the file; vigil never starts empty in its place.
   */
  ERR_JOURNAL: 500,
  /** The journal could not be written because the disk (or quota) is full; nothing journaled is lost. */
  ERR_JOURNAL_FULL: 507,
  /** Another vigil holds the journal of this \`stateDir\` (\`details.pid\` when known). */
  ERR_STATE_LOCKED: 423,
  /**
   * The shared store (`store.kind: 'redis'`) cannot be reached or did not answer within
   * `store.timeoutMs`; the message names its URL (without password). Nothing acknowledged is lost:
   * what could not be written is written once it is back.
   */
  ERR_STORE_UNAVAILABLE: 503,
  /** Another live instance holds the session's lease (`details.owner`, its instance id). */
  ERR_SESSION_OWNED: 409,
  ERR_TIMEOUT: 500,
  ERR_ABORTED: 500,
  /** Anything else: a bug. The original error is the cause; HTTP does not send its message. */
  ERR_INTERNAL: 500,
  /** The vigil instance (or the HTTP API) is closed or closing. */
  ERR_CLOSED: 503,
} as const satisfies Record<string, number>;

export type VigilErrorCode = keyof typeof ERROR_CODES;

export interface VigilErrorOptions {
  readonly cause?: unknown;
  /**
   * Structured detail. Input errors carry `field`, the path of the (first) offending field; the
   * message names every one.
   */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The one error class of vigil: a typed `code`, a readable message, `details` and `cause`. */
export class VigilError extends Error {
  override readonly name = 'VigilError';
  readonly code: VigilErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: VigilErrorCode, message: string, options: VigilErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  /** The HTTP status of this error's code. */
  get status(): number {
    return ERROR_CODES[this.code];
  }
}

export function isVigilErrorCode(value: unknown): value is VigilErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/**
 * Turns anything thrown back into a VigilError. Errors that crossed a thread or a structured clone
 * lose their prototype, so this matches on the shape (`code`, `message`), not `instanceof`. Anything
 * that is not a vigil error becomes `fallback` (`ERR_INTERNAL`: a bug) with the original as its cause.
 */
export function toVigilError(thrown: unknown, fallback: VigilErrorCode = 'ERR_INTERNAL'): VigilError {
  if (thrown instanceof VigilError) return thrown;
  if (typeof thrown === 'object' && thrown !== null) {
    const { code, message, details } = thrown as { code?: unknown; message?: unknown; details?: unknown };
    const text = typeof message === 'string' ? message : String(thrown);
    if (isVigilErrorCode(code)) {
      const detail =
        typeof details === 'object' && details !== null ? (details as Record<string, unknown>) : undefined;
      return new VigilError(code, text, { cause: thrown, ...(detail ? { details: detail } : {}) });
    }
    return new VigilError(fallback, text, { cause: thrown });
  }
  return new VigilError(fallback, String(thrown), { cause: thrown });
}

/** The reason an aborted signal carries, as a VigilError (`ERR_ABORTED`) unless it already is one. */
export function abortError(signal: AbortSignal): VigilError {
  const reason: unknown = signal.reason;
  if (reason instanceof VigilError) return reason;
  return new VigilError('ERR_ABORTED', 'The operation was aborted', { cause: reason });
}

/** An `ERR_INVALID_INPUT` naming `field`. */
export function invalidInput(field: string, message: string, cause?: unknown): VigilError {
  return new VigilError('ERR_INVALID_INPUT', message, {
    details: { field },
    ...(cause === undefined ? {} : { cause }),
  });
}
