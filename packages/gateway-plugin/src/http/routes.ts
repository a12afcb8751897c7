import type { ServerResponse } from 'node:http';
import type { Vigil } from '@vigil/core';
import { spawnErrorCode } from '@vigil/core/host';
import type { HttpHandlerStats } from './handler.js';
import type { HttpApiConfig } from './options.js';
import { created, ok, type Route, route } from './router.js';
import {
  approvalBodySchema,
  approvalQueueBodySchema,
  closeSessionQuerySchema,
  emptySchema,
  eventsQuerySchema,
  killBodySchema,
  logQuerySchema,
  openSessionBodySchema,
  resizeBodySchema,
  sessionsQuerySchema,
  spawnBodySchema,
  streamQuerySchema,
  waitQuerySchema,
  writeBodySchema,
} from './schemas.js';
import { planStream, runStream } from './sse-stream.js';
import type { DropReason } from './sse-writer.js';

/** The routes of the HTTP API over one vigil instance. */
export function routes(vigil: Vigil, config: HttpApiConfig, track: Tracker): Route[] {
  const p = (ctx: { params: Readonly<Record<string, string>> }, name: string): string =>
    ctx.params[name] ?? '';
  const { stream } = config;
  return [
    route('POST', '/v1/sessions', { body: openSessionBodySchema }, async ({ body }) =>
      created(await (config.openSession ?? ((id: string) => vigil.sessions.open(id)))(body.sessionId)),
    ),
    route('GET', '/v1/sessions', { query: sessionsQuerySchema }, ({ query }) =>
      ok(vigil.sessions.page({ ...query })),
    ),
    route('GET', '/v1/sessions/:sid', {}, (ctx) => ok(vigil.sessions.get(p(ctx, 'sid')))),
    // Answers only after the close resolved: the poller is gone and G2 holds.
    route('DELETE', '/v1/sessions/:sid', { query: closeSessionQuerySchema }, async (ctx) =>
      ok(await vigil.sessions.close(p(ctx, 'sid'), ctx.query.reason ? { reason: ctx.query.reason } : {})),
    ),
    route(
      'POST',
      '/v1/sessions/:sid/processes',
      { body: spawnBodySchema, bodyError: spawnErrorCode },
      async (ctx) => {
        const { yieldMs, ...spawn } = ctx.body;
        const input = { ...spawn, sessionId: p(ctx, 'sid') };
        if (yieldMs === undefined) return created(vigil.processes.spawn(input));
        return created(await vigil.processes.run({ ...input, yieldMs }, { signal: ctx.signal }));
      },
    ),
    route('GET', '/v1/sessions/:sid/processes', {}, (ctx) => {
      const sessionId = vigil.sessions.get(p(ctx, 'sid')).sessionId;
      return ok({ processes: vigil.processes.list({ sessionId }) });
    }),
    route('GET', '/v1/sessions/:sid/events', { query: eventsQuerySchema }, async (ctx) => {
      const { after, limit, wait } = ctx.query;
      const read = () => vigil.tape.read(p(ctx, 'sid'), { after, limit, waitMs: wait, signal: ctx.signal });
      return ok(await (wait ? track.waiting(read) : read()));
    }),
    route('GET', '/v1/sessions/:sid/approvals', {}, (ctx) => ok(vigil.approvals.snapshot(p(ctx, 'sid')))),
    // Before `:aid`: `head` and `all` are no approval's id.
    route('POST', '/v1/sessions/:sid/approvals/head', { body: approvalQueueBodySchema }, (ctx) => {
      const { decision, version } = ctx.body;
      return ok(
        vigil.approvals.respondHead(p(ctx, 'sid'), decision, version === undefined ? {} : { version }),
      );
    }),
    route('POST', '/v1/sessions/:sid/approvals/all', { body: approvalQueueBodySchema }, (ctx) => {
      const { decision, version } = ctx.body;
      return ok(
        vigil.approvals.respondAll(p(ctx, 'sid'), decision, version === undefined ? {} : { version }),
      );
    }),
    route('POST', '/v1/sessions/:sid/approvals/:aid', { body: approvalBodySchema }, (ctx) => {
      const approvalId = p(ctx, 'aid');
      return ok({
        approvalId,
        outcome: vigil.approvals.respond(p(ctx, 'sid'), approvalId, ctx.body.decision),
      });
    }),
    route('GET', '/v1/processes/:pid', {}, (ctx) => ok(vigil.processes.get(p(ctx, 'pid')))),
    // Removes a process that ended (409 ERR_PROCESS_RUNNING before); answers with what it was.
    route('DELETE', '/v1/processes/:pid', {}, (ctx) => ok(vigil.processes.remove(p(ctx, 'pid')))),
    route('GET', '/v1/processes/:pid/poll', {}, (ctx) => ok(vigil.processes.poll(p(ctx, 'pid')))),
    route('GET', '/v1/processes/:pid/log', { query: logQuerySchema }, async (ctx) => {
      const { offset, limit, ansi } = ctx.query;
      return ok(await vigil.processes.log(p(ctx, 'pid'), { offset, limit, ansi }));
    }),
    route('POST', '/v1/processes/:pid/wait', { query: waitQuerySchema }, async (ctx) => {
      const timeoutMs = Math.min(ctx.query.timeoutMs ?? config.maxWaitMs, config.maxWaitMs);
      return ok(
        await track.waiting(() => vigil.processes.wait(p(ctx, 'pid'), { timeoutMs, signal: ctx.signal })),
      );
    }),
    route('POST', '/v1/processes/:pid/kill', { body: killBodySchema, optionalBody: true }, async (ctx) =>
      ok(await vigil.processes.kill(p(ctx, 'pid'), ctx.body.signal ? { signal: ctx.body.signal } : {})),
    ),
    route('POST', '/v1/processes/:pid/write', { body: writeBodySchema }, async (ctx) => {
      const processId = p(ctx, 'pid');
      const { data, eof } = ctx.body;
      await vigil.processes.write(processId, data, { signal: ctx.signal, ...(eof ? { eof } : {}) });
      return ok({ processId, bytes: Buffer.byteLength(data), eof: eof === true });
    }),
    route('POST', '/v1/processes/:pid/close-stdin', { body: emptySchema, optionalBody: true }, (ctx) => {
      vigil.processes.closeStdin(p(ctx, 'pid'));
      return ok(vigil.processes.get(p(ctx, 'pid')));
    }),
    route('POST', '/v1/processes/:pid/resize', { body: resizeBodySchema }, (ctx) => {
      vigil.processes.resize(p(ctx, 'pid'), ctx.body);
      return ok(vigil.processes.get(p(ctx, 'pid')));
    }),
    route('GET', '/v1/stream', { query: streamQuerySchema }, async ({ req, res, query, signal }) => {
      const header = req.headers['last-event-id'];
      // The header wins: a reconnecting EventSource sends it, while the URL keeps the first id.
      const lastEventId = typeof header === 'string' && header !== '' ? header : query.lastEventId;
      const plan = planStream(vigil, query.sessions, { lastEventId, maxSessions: stream.maxSessions });
      if (plan.done) return { status: 204 };
      await track.stream({ res, sessions: plan.sessions }, () =>
        runStream(vigil, res, plan, { ...stream, signal }),
      );
      return undefined;
    }),
    route('GET', '/v1/stats', {}, () => ok({ ...vigil.stats(), http: track.stats() })),
  ];
}

/** What the handler counts (and caps, 429) of the routes' long-running work: `work` starts once admitted. */
export interface Tracker {
  waiting<T>(work: () => Promise<T>): Promise<T>;
  stream(
    stream: { readonly res: ServerResponse; readonly sessions: readonly string[] },
    work: () => Promise<DropReason | undefined>,
  ): Promise<void>;
  stats(): HttpHandlerStats;
}
