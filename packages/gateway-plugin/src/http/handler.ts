import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Vigil, VigilError } from '@vigil/core';
import { parse } from '@vigil/core/host';
import { toErrorReply } from './errors.js';
import { type HttpApiOptions, httpApiOptionsSchema } from './options.js';
import { match, parseTarget, pathSegments, sendJson } from './router.js';
import { routes, type Tracker } from './routes.js';
import { queryObject } from './schemas.js';
import { applyCors, BearerCheck, checkHost, denyFraming, readBody } from './security.js';
import type { DropReason } from './sse-writer.js';

/** What is in flight, for monitoring and leak checks. */
export interface HttpHandlerStats {
  /** Requests being served (streams and long-polls included). */
  readonly requests: number;
  /** Open `GET /v1/stream` responses. */
  readonly streams: number;
  /** Long-polls waiting: `events?wait` and `processes/:pid/wait`. */
  readonly waiting: number;
  /** Bytes written to the open streams and not yet taken by the kernel, in all. */
  readonly streamBufferedBytes: number;
  /** Streams that dropped their client because it fell behind, since the handler started. */
  readonly streamsDropped: number;
}

/** A stream opened or closed (`sessions` it served; on close, why its client was dropped, if it was). */
export interface StreamInfo {
  readonly sessions: readonly string[];
  readonly dropped?: DropReason;
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
/**
 * Creates the request listener of the vigil HTTP API for a plain `node:http` server.
 * Every request is checked in this order before any route runs: `Host` allowlist (403), CORS
 * preflight (only with `cors`), bearer token (401), a parseable request target (400), then routing
 * (404, 405). A 401, 403 or 413 closes the connection: the rest of the body is not read. Every
 * response forbids framing. Options are validated (`ERR_INVALID_CONFIG` naming the field).
 */
export function createHttpHandler(vigil: Vigil, options: HttpApiOptions): HttpHandler {
  const config = parse(httpApiOptionsSchema, options, {
    what: 'HTTP API options',
    code: 'ERR_INVALID_CONFIG',
  });
  const bearer = new BearerCheck(config.token);
  const listeners = {
    'stream:opened': new Set<(info: StreamInfo) => void>(),
    'stream:closed': new Set<(info: StreamInfo) => void>(),
  };
  const controllers = new Set<AbortController>();
  const inflight = new Set<Promise<void>>();
  const streaming = new Set<ServerResponse>();
  let waiting = 0;
  let streamsDropped = 0;
  let closing: Promise<void> | undefined;

  const emit = (event: keyof typeof listeners, info: StreamInfo): void => {
    for (const listener of [...listeners[event]]) listener(info);
  };
  const track: Tracker = {
    async waiting(work) {
      admit('long-polls', waiting, config.maxLongPolls, 'maxLongPolls');
      waiting++;
      try {
        return await work();
      } finally {
        waiting--;
      }
    },
    async stream({ res, sessions }, work) {
      admit('streams', streaming.size, config.stream.maxStreams, 'stream.maxStreams');
      streaming.add(res);
      emit('stream:opened', { sessions });
      let dropped: DropReason | undefined;
      try {
        dropped = await work();
      } finally {
        streaming.delete(res);
        if (dropped !== undefined) streamsDropped++;
        emit('stream:closed', dropped === undefined ? { sessions } : { sessions, dropped });
      }
    },
    stats: () => {
      let streamBufferedBytes = 0;
      for (const res of streaming) streamBufferedBytes += res.destroyed ? 0 : res.writableLength;
      return {
        requests: inflight.size,
        streams: streaming.size,
        waiting,
        streamBufferedBytes,
        streamsDropped,
      };
    },
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
      denyFraming(res);
      checkHost(req, config.allowedHosts);
      if (applyCors(req, res, config.cors)) return;
      // An unparseable target is answered only after the token check, like every other mistake.
      const url = parseTarget(req.url);
      let queryToken: string | undefined;
      if (url && config.allowQueryToken && req.method === 'GET' && url.pathname === '/v1/stream') {
        queryToken = url.searchParams.get('access_token') ?? undefined;
        url.searchParams.delete('access_token');
      }
      bearer.check(req, queryToken);
      if (url === undefined) {
        throw new VigilError('ERR_INVALID_INPUT', 'request target: not a valid URL path', {
          details: { field: 'path' },
        });
      }
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

/** Refuses one more of `what` when `open` already reached `max` (the option `option`): 429. */
function admit(what: string, open: number, max: number, option: string): void {
  if (open < max) return;
  throw new VigilError('ERR_LIMIT_EXCEEDED', `Too many ${what}: at most ${max} at once (${option})`, {
    details: { limit: option, max },
  });
}
