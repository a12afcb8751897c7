import {
  APPROVAL_DECISIONS,
  signalSchema,
  spawnInputSchema,
  terminalSizeSchema,
  VigilError,
  type VigilErrorCode,
  yieldMsSchema,
} from '@vigil/core';
import { parse } from '@vigil/core/host';
import { z } from 'zod';

const uint = (max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d{1,16}$/, 'must be a non-negative integer')
    .transform(Number)
    .pipe(z.number().int().max(max));

/** `POST /v1/sessions`. No `deliver` over HTTP: notifications are read from the tape or the stream. */
export const openSessionBodySchema = z.strictObject({ sessionId: z.string() });

/**
 * `POST /v1/sessions/:sid/processes`: the spawn input; the session comes from the path. With
 * `yieldMs` it is a `processes.run`.
 */
export const spawnBodySchema = spawnInputSchema
  .omit({ sessionId: true })
  .extend({ yieldMs: yieldMsSchema.optional() });

/** `GET /v1/sessions?after&limit`: a page in id order (`limit` 1–1000, default 100). */
export const sessionsQuerySchema = z.strictObject({
  after: z.string().min(1).max(128).optional(),
  limit: uint(1000)
    .refine((limit) => limit >= 1, 'must be at least 1')
    .optional(),
});

/** `POST /v1/processes/:pid/kill` (the body is optional). */
export const killBodySchema = z.strictObject({ signal: signalSchema.optional() });

/** `POST /v1/processes/:pid/write`: `eof` ends stdin after `data`. */
export const writeBodySchema = z.strictObject({ data: z.string(), eof: z.boolean().optional() });

/** `POST /v1/processes/:pid/resize`: the terminal's new size. */
export const resizeBodySchema = terminalSizeSchema;

const decision = z.enum(APPROVAL_DECISIONS);

/** `POST /v1/sessions/:sid/approvals/:aid`. */
export const approvalBodySchema = z.strictObject({ decision });

/** `POST /v1/sessions/:sid/approvals/head` and `.../all`: `version` is the snapshot answered. */
export const approvalQueueBodySchema = z.strictObject({
  decision,
  version: z.number().int().min(0).optional(),
});

/** `DELETE /v1/sessions/:sid?reason`. */
export const closeSessionQuerySchema = z.strictObject({ reason: z.string().min(1).max(200).optional() });

/** A query flag: `1` or `true`, `0` or `false`. */
const flag = z
  .enum(['0', '1', 'false', 'true'], 'must be 1, 0, true or false')
  .transform((value) => value === '1' || value === 'true');

/** `GET /v1/processes/:pid/log?offset&limit&ansi` (`ansi=1` keeps the terminal escape sequences). */
export const logQuerySchema = z.strictObject({
  offset: uint().optional(),
  limit: uint().optional(),
  ansi: flag.optional(),
});

/** `POST /v1/processes/:pid/wait?timeoutMs`; the handler caps it at 60 s. */
export const waitQuerySchema = z.strictObject({ timeoutMs: uint().optional() });

/** `GET /v1/sessions/:sid/events?after&limit&wait` (`wait` in ms, capped by `tape.maxWaitMs`). */
export const eventsQuerySchema = z.strictObject({
  after: uint().optional(),
  limit: uint().optional(),
  wait: uint().optional(),
});

/** `GET /v1/stream?sessions=a,b&lastEventId=`. */
export const streamQuerySchema = z.strictObject({
  sessions: z
    .string()
    .min(1, 'must list at least one session')
    .transform((list) => [...new Set(list.split(','))]),
  lastEventId: z.string().optional(),
});

/** A query or body with no fields (anything sent is an unknown field). */
export const emptySchema = z.strictObject({});

/**
 * Parses a request's query or body: `ERR_INVALID_INPUT` (or what `code` picks for the first bad
 * field) whose message names every offending field, unknown ones included.
 */
export function parseRequest<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: 'body' | 'query',
  code?: (field: string) => VigilErrorCode,
): z.output<S> {
  return parse(schema, input, {
    what: `request ${where}`,
    root: where,
    ...(code === undefined ? {} : { code }),
  });
}

/** Parses a JSON body; an empty body is `empty` (undefined: required). Invalid JSON is `ERR_INVALID_INPUT`. */
export function parseJson(text: string, empty?: unknown): unknown {
  if (text.trim() === '') {
    if (empty !== undefined) return empty;
    throw new VigilError('ERR_INVALID_INPUT', 'Invalid request body: body: a JSON object is required', {
      details: { field: 'body' },
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new VigilError('ERR_INVALID_INPUT', `Invalid request body: body: not valid JSON (${reason})`, {
      cause,
      details: { field: 'body' },
    });
  }
}

/** The query string as an object; a parameter given twice is `ERR_INVALID_INPUT` naming it. */
export function queryObject(params: URLSearchParams): Record<string, string> {
  const query: Record<string, string> = Object.create(null);
  for (const [key, value] of params) {
    if (Object.hasOwn(query, key)) {
      throw new VigilError('ERR_INVALID_INPUT', `Invalid request query: ${key}: given more than once`, {
        details: { field: key },
      });
    }
    query[key] = value;
  }
  return query;
}
