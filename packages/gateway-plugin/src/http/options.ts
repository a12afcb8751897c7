import type { IncomingMessage } from 'node:http';
import type { SessionInfo } from '@vigil/core';
import { z } from 'zod';
import { bearerTokenSchema } from './bearer-token.js';
import type { ClusterRouting } from './cluster-routing.js';

const fn = <F>() => z.custom<F>((value) => typeof value === 'function', 'must be a function');

/** The options of `createHttpHandler`: the one declaration, with each default beside its field. */
export const httpApiOptionsSchema = z.strictObject({
  /**
   * The bearer token every request must carry (`Authorization: Bearer <token>`): at least 16
   * characters of `A-Z a-z 0-9 - . _ ~ + /`, then `=` padding.
   */
  token: bearerTokenSchema,
  /**
   * Allowed `Host` headers (`host:port`), or a predicate over the header. Default: the loopback
   * names of the port the request came in on (DNS rebinding).
   */
  allowedHosts: z
    .union([z.array(z.string().min(1)).readonly(), fn<(host: string, req: IncomingMessage) => boolean>()])
    .optional(),
  /** Browser origins allowed by CORS. Default: none (no CORS header is ever sent). */
  cors: z.strictObject({ origins: z.array(z.string().min(1)).readonly() }).optional(),
  /** Largest accepted request body. Default 1 MiB; larger is 413. */
  bodyLimitBytes: z
    .number()
    .int()
    .min(1)
    .max(1 << 30)
    .default(1 << 20),
  /** Cap on `POST /v1/processes/:pid/wait?timeoutMs` (also its default). Default 60 s. */
  maxWaitMs: z.number().int().min(0).max(3_600_000).default(60_000),
  /**
   * Long-polls waiting at once (`GET .../events?wait`, `POST /v1/processes/:pid/wait`); more are
   * answered 429 `ERR_LIMIT_EXCEEDED`. Default 512.
   */
  maxLongPolls: z.number().int().min(1).max(1_000_000).default(512),
  /**
   * Also accept the token as `?access_token=` on `GET /v1/stream`, for browsers' EventSource, which
   * cannot send headers. The token then shows in URLs (and logs). Default false.
   */
  allowQueryToken: z.boolean().default(false),
  stream: z
    .strictObject({
      /** Interval of `: keep-alive` comments. Default 15 s. */
      keepAliveMs: z.number().int().min(1).max(3_600_000).default(15_000),
      /** The `retry:` sent first. Default 2 s. */
      retryMs: z.number().int().min(0).max(3_600_000).default(2_000),
      /** Sessions per stream. Default 100. */
      maxSessions: z.number().int().min(1).max(10_000).default(100),
      /** Streams open at once; more are answered 429 `ERR_LIMIT_EXCEEDED`. Default 512. */
      maxStreams: z.number().int().min(1).max(1_000_000).default(512),
      /**
       * A client whose stream stays blocked (it does not read) this long is dropped with a final
       * `dropped` event carrying its cursor, and disconnected once it takes nothing for as long
       * again. Default 10 s.
       */
      stallTimeoutMs: z.number().int().min(1).max(3_600_000).default(10_000),
      /** A stream holding more unsent bytes than this after a write drops its client. Default 4 MiB. */
      maxBufferedBytes: z
        .number()
        .int()
        .min(1 << 16)
        .max(1 << 30)
        .default(4 << 20),
    })
    .prefault({}),
  /** Receives errors that became a 500 `ERR_INTERNAL` (their message is not sent). Default: ignore. */
  onError: fn<(error: unknown) => void>().optional(),
  /**
   * How `POST /v1/sessions` opens a session. Default: `vigil.sessions.open(sessionId)` without
   * `deliver` (notifications are then read through the tape or the stream). A gateway passes its
   * own, to give sessions opened over HTTP its `deliver`.
   */
  openSession: fn<(sessionId: string) => Promise<SessionInfo>>().optional(),
  /**
   * The cluster this instance belongs to (`vigil serve --redis`): sessions it does not serve are
   * read from the shared store, and what must run on their owner is forwarded there. Default: none.
   */
  cluster: z
    .custom<ClusterRouting>(
      (value) => typeof value === 'object' && value !== null && 'forwardToSession' in value,
      'must be a cluster routing object',
    )
    .optional(),
});

/** Options of `createHttpHandler` (see `httpApiOptionsSchema` for each field and its default). */
export type HttpApiOptions = z.input<typeof httpApiOptionsSchema>;
export type HttpApiConfig = z.output<typeof httpApiOptionsSchema>;
