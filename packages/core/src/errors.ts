/** Every error code vigil raises. HTTP maps them to statuses in one table. */
export type VigilErrorCode =
  | 'ERR_INVALID_CONFIG'
  | 'ERR_INVALID_INPUT'
  | 'ERR_INVALID_SESSION_ID'
  | 'ERR_SESSION_EXISTS'
  | 'ERR_SESSION_CLOSED'
  | 'ERR_UNKNOWN_SESSION'
  | 'ERR_UNKNOWN_PROCESS'
  | 'ERR_UNKNOWN_APPROVAL'
  | 'ERR_INVALID_PATTERN'
  | 'ERR_INVALID_CURSOR'
  | 'ERR_LIMIT_EXCEEDED'
  | 'ERR_CAPACITY'
  | 'ERR_POLLER'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_CLOSED';

const CODES = new Set<string>([
  'ERR_INVALID_CONFIG',
  'ERR_INVALID_INPUT',
  'ERR_INVALID_SESSION_ID',
  'ERR_SESSION_EXISTS',
  'ERR_SESSION_CLOSED',
  'ERR_UNKNOWN_SESSION',
  'ERR_UNKNOWN_PROCESS',
  'ERR_UNKNOWN_APPROVAL',
  'ERR_INVALID_PATTERN',
  'ERR_INVALID_CURSOR',
  'ERR_LIMIT_EXCEEDED',
  'ERR_CAPACITY',
  'ERR_POLLER',
  'ERR_TIMEOUT',
  'ERR_ABORTED',
  'ERR_CLOSED',
] satisfies VigilErrorCode[]);

export interface VigilErrorOptions {
  readonly cause?: unknown;
  /** Structured detail, e.g. the offending field path. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The one error class of vigil: a typed `code`, a readable message and an optional `cause`. */
export class VigilError extends Error {
  override readonly name = 'VigilError';
  readonly code: VigilErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: VigilErrorCode, message: string, options: VigilErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

export function isVigilErrorCode(value: unknown): value is VigilErrorCode {
  return typeof value === 'string' && CODES.has(value);
}

/**
 * Turns anything thrown back into a VigilError. Errors that crossed a thread or a structured
 * clone lose their prototype, so this matches on the shape (`code`, `message`), not `instanceof`.
 */
export function toVigilError(thrown: unknown, fallback: VigilErrorCode = 'ERR_POLLER'): VigilError {
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
