import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseWith, type SessionInfo, type Vigil, VigilError } from '@vigil/core';
import { z } from 'zod';
import { toErrorReply } from './http-errors.js';
import { created, match, ok, pathSegments, type Route, route, sendJson } from './http-router.js';
import {
  approvalBodySchema,
  closeSessionQuerySchema,
  eventsQuerySchema,
  killBodySchema,
  logQuerySchema,
  openSessionBodySchema,
  queryObject,
  spawnBodySchema,
  streamQuerySchema,
  waitQuerySchema,
  writeBodySchema,
} from './http-schemas.js';
import {
  applyCors,
  BearerCheck,
  type CorsOptions,
  checkHost,
  type HostAllowlist,
  readBody,
} from './http-security.js';
import { planStream, runStream } from './sse-stream.js';

/** Options of `createHttpHandler`. */
export interface HttpApiOptions {
  /** The bearer token every request must carry (`Authorization: Bearer <token>`). At least 16 characters. */
  readonly token: string;
  /** Allowed `Host` headers, or a predicate. Default: `127.0.0.1:<port>`, `localhost:<port>`, `[::1]:<port>`. */
  readonly allowedHosts?: HostAllowlist;
  /** Browser origins allowed by CORS. Default: none (no CORS header is ever sent). */
  readonly cors?: CorsOptions;
  /** Largest accepted request body. Default 1 MiB; larger is 413. */
  readonly bodyLimitBytes?: number;
  /** Cap on `POST /v1/processes/:pid/wait?timeoutMs` (also its default). Default 60 s. */
  readonly maxWaitMs?: number;
  /**
   * Also accept the token as `?access_token=` on `GET /v1/stream`, for browsers' EventSource, which
   * cannot send headers. The token then shows in URLs (and logs). Default false.
   */
  readonly allowQueryToken?: boolean;
  readonly stream?: {
    /** Interval of `: keep-alive` comments. Default 15 s. */
    readonly keepAliveMs?: number;
    /** The `retry:` sent first. Default 2 s. */
    readonly retryMs?: number;
    /** Sessions per stream. Default 100. */
    readonly maxSessions?: number;
  };
  /** Receives errors that became a 500 `ERR_INTERNAL` (their message is not sent). Default: ignore. */
  readonly onError?: (error: unknown) => void;
  /**
   * How `POST /v1/sessions` opens a session. Default: `vigil.sessions.open(sessionId)` without
   * `deliver` (notifications are then read through the tape or the stream). A gateway passes its
   * own, to give sessions opened over HTTP its `deliver`.
   */
  readonly openSession?: (sessionId: string) => Promise<SessionInfo>;
}

const optionsSchema = z.strictObject({
  token: z.string().min(16),
  allowedHosts: z
    .union([
      z.array(z.string().min(1)),
      z.custom<(host: string, req: IncomingMessage) => boolean>((value) => typeof value === 'function'),
    ])
    .optional(),
  cors: z.strictObject({ origins: z.array(z.string().min(1)) }).optional(),
  bodyLimitBytes: z
    .number()
    .int()
    .min(1)
    .max(1 << 30)
    .default(1 << 20),
  maxWaitMs: z.number().int().min(0).max(3_600_000).default(60_000),
  allowQueryToken: z.boolean().default(false),
  stream: z
    .strictObject({
      keepAliveMs: z.number().int().min(1).max(3_600_000).default(15_000),
      retryMs: z.number().int().min(0).max(3_600_000).default(2_000),
      maxSessions: z.number().int().min(1).max(10_000).default(100),
    })
    .prefault({}),
  onError: z.custom<(error: unknown) => void>((value) => typeof value === 'function').optional(),
  openSession: z
    .custom<(sessionId: string) => Promise<SessionInfo>>((value) => typeof value === 'function')
    .optional(),
});

/** What is in flight, for monitoring and leak checks. */
export interface HttpHandlerStats {
  /** Requests being served (streams and long-polls included). */
  readonly requests: number;
  /** Open `GET /v1/stream` responses. */
  readonly streams: number;
  /** Long-polls waiting: `events?wait` and `processes/:pid/wait`. */
  readonly waiting: number;
}

/** A stream opened or closed (`sessions` it served). */
export interface StreamInfo {
  readonly sessions: readonly string[];
}

/** A `node:http` request listener serving the vigil HTTP API, plus its lifecycle. */
export interface HttpHandler extends AsyncDisposable {
  (req: IncomingMessage, res: ServerResponse): void;
  stats(): HttpHandlerStats;
  /** Registers a listener; returns the function that removes it. */
  on(event: 'stream:opened' | 'stream:closed', listener: (info: StreamInfo) => void): () => void;
  /** Ends every stream and long-poll (`ERR_CLOSED`, 503), refuses new requests, resolves when all settled. */
  close(): Promise<void>;
}
/** The routes of SPEC §5 over one vigil instance. */
function routes(vigil: Vigil, config: z.output<typeof optionsSchema>, track: Tracker): Route[] {
  const p = (ctx: { params: Readonly<Record<string, string>> }, name: string): string =>
    ctx.params[name] ?? '';
  const { stream } = config;
  return [
    route('POST', '/v1/sessions', { body: openSessionBodySchema }, async ({ body }) =>
      created(await (config.openSession ?? ((id: string) => vigil.sessions.open(id)))(body.sessionId)),
    ),
    route('GET', '/v1/sessions', {}, () => ok({ sessions: vigil.sessions.list() })),
    route('GET', '/v1/sessions/:sid', {}, (ctx) => ok(vigil.sessions.get(p(ctx, 'sid')))),
    // Answers only after the close resolved: the poller is gone and G2 holds.
    route('DELETE', '/v1/sessions/:sid', { query: closeSessionQuerySchema }, async (ctx) =>
      ok(await vigil.sessions.close(p(ctx, 'sid'), ctx.query.reason ? { reason: ctx.query.reason } : {})),
    ),
    route('POST', '/v1/sessions/:sid/processes', { body: spawnBodySchema }, (ctx) =>
      created(vigil.processes.spawn({ ...ctx.body, sessionId: p(ctx, 'sid') })),
    ),
    route('GET', '/v1/sessions/:sid/processes', {}, (ctx) => {
      const sessionId = vigil.sessions.get(p(ctx, 'sid')).sessionId;
      return ok({ processes: vigil.processes.list({ sessionId }) });
    }),
    route('GET', '/v1/sessions/:sid/events', { query: eventsQuerySchema }, async (ctx) => {
      const { after, limit, wait } = ctx.query;
      const read = vigil.tape.read(p(ctx, 'sid'), { after, limit, waitMs: wait, signal: ctx.signal });
      return ok(await (wait ? track.waiting(read) : read));
    }),
    route('GET', '/v1/sessions/:sid/approvals', {}, (ctx) => ok(vigil.approvals.snapshot(p(ctx, 'sid')))),
    route('POST', '/v1/sessions/:sid/approvals/:aid', { body: approvalBodySchema }, (ctx) => {
      const approvalId = p(ctx, 'aid');
      return ok({
        approvalId,
        outcome: vigil.approvals.respond(p(ctx, 'sid'), approvalId, ctx.body.decision),
      });
    }),
    route('GET', '/v1/processes/:pid', {}, (ctx) => ok(vigil.processes.get(p(ctx, 'pid')))),
    route('GET', '/v1/processes/:pid/poll', {}, (ctx) => ok(vigil.processes.poll(p(ctx, 'pid')))),
    route('GET', '/v1/processes/:pid/log', { query: logQuerySchema }, (ctx) => {
      const { offset, limit } = ctx.query;
      return ok(vigil.processes.log(p(ctx, 'pid'), { offset, limit }));
    }),
    route('POST', '/v1/processes/:pid/wait', { query: waitQuerySchema }, async (ctx) => {
      const timeoutMs = Math.min(ctx.query.timeoutMs ?? config.maxWaitMs, config.maxWaitMs);
      return ok(await track.waiting(vigil.processes.wait(p(ctx, 'pid'), { timeoutMs, signal: ctx.signal })));
    }),
    route('POST', '/v1/processes/:pid/kill', { body: killBodySchema, optionalBody: true }, async (ctx) =>
      ok(await vigil.processes.kill(p(ctx, 'pid'), ctx.body.signal ? { signal: ctx.body.signal } : {})),
    ),
    route('POST', '/v1/processes/:pid/write', { body: writeBodySchema }, async (ctx) => {
      const processId = p(ctx, 'pid');
      await vigil.processes.write(processId, ctx.body.data);
      return ok({ processId, bytes: Buffer.byteLength(ctx.body.data) });
    }),
    route('GET', '/v1/stream', { query: streamQuerySchema }, async ({ req, res, query, signal }) => {
      const header = req.headers['last-event-id'];
      // The header wins: a reconnecting EventSource sends it, while the URL keeps the first id.
      const lastEventId = typeof header === 'string' && header !== '' ? header : query.lastEventId;
      const plan = planStream(vigil, query.sessions, { lastEventId, maxSessions: stream.maxSessions });
      if (plan.done) return { status: 204 };
      await track.stream(plan.sessions, runStream(vigil, res, plan, { ...stream, signal }));
      return undefined;
    }),
    route('GET', '/v1/stats', {}, () => ok({ ...vigil.stats(), http: track.stats() })),
  ];
}

interface Tracker {
  waiting<T>(work: Promise<T>): Promise<T>;
  stream(sessions: readonly string[], work: Promise<void>): Promise<void>;
  stats(): HttpHandlerStats;
}

/**
 * Creates the request listener of the vigil HTTP API (SPEC §5) for a plain `node:http` server.
 * Every request is checked in this order before any route runs: `Host` allowlist (403), CORS
 * preflight (only with `cors`), bearer token (401), then routing (404, 405). Options are validated
 * (`ERR_INVALID_CONFIG` naming the field).
 */
export function createHttpHandler(vigil: Vigil, options: HttpApiOptions): HttpHandler {
  const config = parseWith(optionsSchema, options, 'HTTP API options');
  const bearer = new BearerCheck(config.token);
  const listeners = {
    'stream:opened': new Set<(info: StreamInfo) => void>(),
    'stream:closed': new Set<(info: StreamInfo) => void>(),
  };
  const controllers = new Set<AbortController>();
  const inflight = new Set<Promise<void>>();
  let streams = 0;
  let waiting = 0;
  let closing: Promise<void> | undefined;

  const emit = (event: keyof typeof listeners, info: StreamInfo): void => {
    for (const listener of [...listeners[event]]) listener(info);
  };
  const track: Tracker = {
    async waiting(work) {
      waiting++;
      try {
        return await work;
      } finally {
        waiting--;
      }
    },
    async stream(sessions, work) {
      streams++;
      emit('stream:opened', { sessions });
      try {
        await work;
      } finally {
        streams--;
        emit('stream:closed', { sessions });
      }
    },
    stats: () => ({ requests: inflight.size, streams, waiting }),
  };
  const table = routes(vigil, config, track);

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const controller = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) controller.abort(new VigilError('ERR_ABORTED', 'The client disconnected'));
    };
    res.on('close', onClose);
    controllers.add(controller);
    try {
      checkHost(req, config.allowedHosts);
      if (applyCors(req, res, config.cors)) return;
      const url = new URL(req.url ?? '/', 'http://vigil.invalid');
      let queryToken: string | undefined;
      if (config.allowQueryToken && req.method === 'GET' && url.pathname === '/v1/stream') {
        queryToken = url.searchParams.get('access_token') ?? undefined;
        url.searchParams.delete('access_token');
      }
      bearer.check(req, queryToken);
      if (closing !== undefined) throw new VigilError('ERR_CLOSED', 'The HTTP API is closing');
      const { route: found, params } = match(table, req.method ?? '', pathSegments(url.pathname));
      const ctx = {
        req,
        res,
        params,
        query: queryObject(url.searchParams),
        body: undefined,
        signal: controller.signal,
      };
      const reply = await found.run(ctx, () => readBody(req, config.bodyLimitBytes));
      if (reply !== undefined) sendJson(res, reply.status, reply.body);
    } catch (error) {
      const reply = toErrorReply(error);
      if (reply.body.error.code === 'ERR_INTERNAL') config.onError?.(error);
      sendJson(res, reply.status, reply.body, reply.headers);
    } finally {
      res.off('close', onClose);
      controllers.delete(controller);
      if (!res.writableEnded) res.end();
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const work = serve(req, res).catch((error: unknown) => config.onError?.(error));
    inflight.add(work);
    void work.finally(() => inflight.delete(work));
  };
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const controller of controllers)
        controller.abort(new VigilError('ERR_CLOSED', 'The HTTP API is closing'));
      await Promise.allSettled([...inflight]);
    })();
    return closing;
  };
  return Object.assign(handler, {
    stats: track.stats,
    on(event: keyof typeof listeners, listener: (info: StreamInfo) => void) {
      listeners[event].add(listener);
      return () => {
        listeners[event].delete(listener);
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  });
}
