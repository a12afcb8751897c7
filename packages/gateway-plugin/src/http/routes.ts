import type { ServerResponse } from 'node:http';
import { toVigilError, type Vigil } from '@vigil/core';
import { spawnErrorCode } from '@vigil/core/host';
import { type ClusterRouting, FORWARDED_BY_HEADER, type ForwardRequest } from './cluster-routing.js';
import type { HttpHandlerStats } from './handler.js';
import type { HttpApiConfig } from './options.js';
import { type Context, created, ok, type Reply, type Route, route } from './router.js';
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
import { localSource, remoteSource } from './stream-sources.js';

/** The routes of the HTTP API over one vigil instance. */
export function routes(vigil: Vigil, config: HttpApiConfig, track: Tracker): Route[] {
  const p = (ctx: { params: Readonly<Record<string, string>> }, name: string): string =>
    ctx.params[name] ?? '';
  const { stream } = config;
  const { local, owned, orRemote } = clusterRoutes(vigil, config.cluster);
  const sourceOf = (sessionId: string) =>
    config.cluster === undefined || local.session(sessionId)
      ? localSource(vigil, sessionId)
      : remoteSource(config.cluster, sessionId, (error) => config.onError?.(error));
  return [
    route('POST', '/v1/sessions', { body: openSessionBodySchema }, async ({ body }) =>
      created(await (config.openSession ?? ((id: string) => vigil.sessions.open(id)))(body.sessionId)),
    ),
    route('GET', '/v1/sessions', { query: sessionsQuerySchema }, async ({ query }) =>
      ok(
        config.cluster ? await clusterPage(vigil, config.cluster, query) : vigil.sessions.page({ ...query }),
      ),
    ),
    route('GET', '/v1/sessions/:sid', {}, (ctx) =>
      orRemote(
        p(ctx, 'sid'),
        () => vigil.sessions.get(p(ctx, 'sid')),
        (cluster) => cluster.session(p(ctx, 'sid')),
      ),
    ),
    // Answers only after the close resolved: the poller is gone and G2 holds.
    route(
      'DELETE',
      '/v1/sessions/:sid',
      { query: closeSessionQuerySchema },
      owned('sid', async (ctx) =>
        ok(await vigil.sessions.close(p(ctx, 'sid'), ctx.query.reason ? { reason: ctx.query.reason } : {})),
      ),
    ),
    route(
      'POST',
      '/v1/sessions/:sid/processes',
      { body: spawnBodySchema, bodyError: spawnErrorCode },
      owned('sid', async (ctx) => {
        const { yieldMs, ...spawn } = ctx.body;
        const input = { ...spawn, sessionId: p(ctx, 'sid') };
        if (yieldMs === undefined) return created(vigil.processes.spawn(input));
        return created(await vigil.processes.run({ ...input, yieldMs }, { signal: ctx.signal }));
      }),
    ),
    route('GET', '/v1/sessions/:sid/processes', {}, (ctx) =>
      orRemote(
        p(ctx, 'sid'),
        () => {
          const sessionId = vigil.sessions.get(p(ctx, 'sid')).sessionId;
          return { processes: vigil.processes.list({ sessionId }) };
        },
        async (cluster) => ({ processes: await cluster.processes(p(ctx, 'sid')) }),
      ),
    ),
    route('GET', '/v1/sessions/:sid/events', { query: eventsQuerySchema }, async (ctx) => {
      const { after, limit, wait } = ctx.query;
      const options = { after, limit, waitMs: wait, signal: ctx.signal };
      const read = () =>
        orRemote(
          p(ctx, 'sid'),
          () => vigil.tape.read(p(ctx, 'sid'), options),
          (cluster) => cluster.read(p(ctx, 'sid'), options),
        );
      return wait ? track.waiting(read) : read();
    }),
    route('GET', '/v1/sessions/:sid/approvals', {}, (ctx) =>
      orRemote(
        p(ctx, 'sid'),
        () => vigil.approvals.snapshot(p(ctx, 'sid')),
        (cluster) => cluster.approvals(p(ctx, 'sid')),
      ),
    ),
    // Before `:aid`: `head` and `all` are no approval's id.
    route(
      'POST',
      '/v1/sessions/:sid/approvals/head',
      { body: approvalQueueBodySchema },
      owned('sid', (ctx) => {
        const { decision, version } = ctx.body;
        return ok(
          vigil.approvals.respondHead(p(ctx, 'sid'), decision, version === undefined ? {} : { version }),
        );
      }),
    ),
    route(
      'POST',
      '/v1/sessions/:sid/approvals/all',
      { body: approvalQueueBodySchema },
      owned('sid', (ctx) => {
        const { decision, version } = ctx.body;
        return ok(
          vigil.approvals.respondAll(p(ctx, 'sid'), decision, version === undefined ? {} : { version }),
        );
      }),
    ),
    route(
      'POST',
      '/v1/sessions/:sid/approvals/:aid',
      { body: approvalBodySchema },
      owned('sid', (ctx) => {
        const approvalId = p(ctx, 'aid');
        return ok({
          approvalId,
          outcome: vigil.approvals.respond(p(ctx, 'sid'), approvalId, ctx.body.decision),
        });
      }),
    ),
    // A process of another instance: its spool and child live there, so every process route goes there.
    route(
      'GET',
      '/v1/processes/:pid',
      {},
      owned('pid', (ctx) => ok(vigil.processes.get(p(ctx, 'pid')))),
    ),
    // Removes a process that ended (409 ERR_PROCESS_RUNNING before); answers with what it was.
    route(
      'DELETE',
      '/v1/processes/:pid',
      {},
      owned('pid', (ctx) => ok(vigil.processes.remove(p(ctx, 'pid')))),
    ),
    route(
      'GET',
      '/v1/processes/:pid/poll',
      {},
      owned('pid', (ctx) => ok(vigil.processes.poll(p(ctx, 'pid')))),
    ),
    route(
      'GET',
      '/v1/processes/:pid/log',
      { query: logQuerySchema },
      owned('pid', async (ctx) => {
        const { offset, limit, ansi } = ctx.query;
        return ok(await vigil.processes.log(p(ctx, 'pid'), { offset, limit, ansi }));
      }),
    ),
    route(
      'POST',
      '/v1/processes/:pid/wait',
      { query: waitQuerySchema },
      owned('pid', async (ctx) => {
        const timeoutMs = Math.min(ctx.query.timeoutMs ?? config.maxWaitMs, config.maxWaitMs);
        return ok(
          await track.waiting(() => vigil.processes.wait(p(ctx, 'pid'), { timeoutMs, signal: ctx.signal })),
        );
      }),
    ),
    route(
      'POST',
      '/v1/processes/:pid/kill',
      { body: killBodySchema, optionalBody: true },
      owned('pid', async (ctx) =>
        ok(await vigil.processes.kill(p(ctx, 'pid'), ctx.body.signal ? { signal: ctx.body.signal } : {})),
      ),
    ),
    route(
      'POST',
      '/v1/processes/:pid/write',
      { body: writeBodySchema },
      owned('pid', async (ctx) => {
        const processId = p(ctx, 'pid');
        const { data, eof } = ctx.body;
        await vigil.processes.write(processId, data, { signal: ctx.signal, ...(eof ? { eof } : {}) });
        return ok({ processId, bytes: Buffer.byteLength(data), eof: eof === true });
      }),
    ),
    route(
      'POST',
      '/v1/processes/:pid/close-stdin',
      { body: emptySchema, optionalBody: true },
      owned('pid', (ctx) => {
        vigil.processes.closeStdin(p(ctx, 'pid'));
        return ok(vigil.processes.get(p(ctx, 'pid')));
      }),
    ),
    route(
      'POST',
      '/v1/processes/:pid/resize',
      { body: resizeBodySchema },
      owned('pid', (ctx) => {
        vigil.processes.resize(p(ctx, 'pid'), ctx.body);
        return ok(vigil.processes.get(p(ctx, 'pid')));
      }),
    ),
    route('GET', '/v1/stream', { query: streamQuerySchema }, async ({ req, res, query, signal }) => {
      const header = req.headers['last-event-id'];
      // The header wins: a reconnecting EventSource sends it, while the URL keeps the first id.
      const lastEventId = typeof header === 'string' && header !== '' ? header : query.lastEventId;
      const plan = await planStream(query.sessions, sourceOf, {
        lastEventId,
        maxSessions: stream.maxSessions,
      });
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

/**
 * How the routes reach the sessions of other instances (with `config.cluster`): a session or process
 * this instance does not have is read from the store (`orRemote`) or its request is forwarded to
 * the instance that owns it (`owned`). Without a cluster every route runs locally.
 */
function clusterRoutes(vigil: Vigil, cluster: ClusterRouting | undefined) {
  const has = (lookup: () => unknown, unknown: string): boolean => {
    try {
      lookup();
      return true;
    } catch (error) {
      // Anything but "no such" (an ambiguous prefix...) is for the local route to answer.
      return toVigilError(error).code !== unknown;
    }
  };
  const local = {
    session: (sessionId: string) => has(() => vigil.sessions.get(sessionId), 'ERR_UNKNOWN_SESSION'),
    process: (processId: string) => has(() => vigil.processes.get(processId), 'ERR_UNKNOWN_PROCESS'),
  };
  const owned =
    <Q, B>(param: 'sid' | 'pid', handle: (ctx: Context<Q, B>) => Promise<Reply> | Reply) =>
    async (ctx: Context<Q, B>): Promise<Reply> => {
      const id = ctx.params[param] ?? '';
      const here = param === 'sid' ? local.session(id) : local.process(id);
      if (cluster === undefined || here) return handle(ctx);
      const forwardedBy = ctx.req.headers[FORWARDED_BY_HEADER];
      const request: ForwardRequest = {
        method: ctx.req.method ?? 'GET',
        target: ctx.req.url ?? '/',
        body: ctx.body,
        forwardedBy: typeof forwardedBy === 'string' ? forwardedBy : undefined,
        signal: ctx.signal,
      };
      return param === 'sid' ? cluster.forwardToSession(id, request) : cluster.forwardToProcess(id, request);
    };
  const orRemote = async (
    sessionId: string,
    here: () => unknown,
    remote: (cluster: ClusterRouting) => Promise<unknown>,
  ): Promise<Reply> =>
    ok(cluster === undefined || local.session(sessionId) ? await here() : await remote(cluster));
  return { local, owned, orRemote };
}

/** `GET /v1/sessions` across the cluster: this instance's sessions and the store's open ones, by id. */
async function clusterPage(
  vigil: Vigil,
  cluster: ClusterRouting,
  query: { readonly after?: string | undefined; readonly limit?: number | undefined },
) {
  const ids = new Set([
    ...vigil.sessions.list().map((session) => session.sessionId),
    ...(await cluster.sessionIds()),
  ]);
  const limit = query.limit ?? 100;
  const after = query.after;
  const sorted = [...ids].filter((id) => after === undefined || id > after).sort();
  const page = sorted.slice(0, limit);
  const found = await Promise.all(
    page.map(async (id) => {
      try {
        return vigil.sessions.get(id);
      } catch {
        // Closed and forgotten since the listing: not on this page.
        return cluster.session(id).catch((error: unknown) => {
          if (toVigilError(error).code === 'ERR_UNKNOWN_SESSION') return undefined;
          throw error;
        });
      }
    }),
  );
  const sessions = found.filter((session) => session !== undefined);
  return { sessions, next: sorted.length > limit ? (page.at(-1) ?? null) : null, total: ids.size };
}
