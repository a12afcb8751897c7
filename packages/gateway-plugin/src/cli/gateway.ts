import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CloseOptions, type Deliver, type Vigil, VigilError, type VigilOptions } from '@vigil/core';
import { parse } from '@vigil/core/host';
import type { WorkerHostOptions } from '@vigil/worker';
import { z } from 'zod';
import { bearerTokenProblem } from '../http/bearer-token.js';
import { createHttpHandler, type HttpHandler } from '../http/handler.js';
import { httpApiOptionsSchema } from '../http/options.js';
import { type CorsOptions, checkHost } from '../http/security.js';
import { createGatewayPlugin, type GatewayPlugin } from '../plugin/plugin.js';
import type { RenderedNotification } from '../plugin/render.js';
import { createWebAssets } from './web-assets.js';

export interface EmbeddedGatewayOptions {
  /** Interface to bind. Default `127.0.0.1` (loopback only). */
  readonly host?: string;
  /** Port; 0 picks a free one. Default 7420. */
  readonly port?: number;
  /** The bearer token. Default: `VIGIL_TOKEN`, else a random one. */
  readonly token?: string;
  readonly config?: Omit<VigilOptions, 'host'>;
  readonly pool?: WorkerHostOptions['pool'];
  /** Extra allowed `Host` headers (for a proxy or a name); loopback names of the port are always allowed. */
  readonly allowedHosts?: readonly string[];
  readonly cors?: CorsOptions;
  /** What the reference gateway does with a notification (it has no agent): default, nothing. */
  readonly onNotification?: (sessionId: string, message: RenderedNotification) => void | Promise<void>;
  /** SSE keep-alive interval. Default 15 s (`http.stream.keepAliveMs` wins). */
  readonly keepAliveMs?: number;
  /** The HTTP API's limits and the server's timeouts (see `GatewayHttpOptions`). */
  readonly http?: GatewayHttpOptions;
  /** Join a cluster of instances sharing one Redis (`vigil serve --redis`). Default: none. */
  readonly cluster?: GatewayClusterOptions;
}

/**
 * How the gateway joins a cluster (see `vigil serve --redis`): vigil's journal goes to this Redis
 * (`config.store`, whose other fields, `prefix`, `leaseMs`, `timeoutMs`, the config may set).
 */
export interface GatewayClusterOptions {
  /** The Redis of the cluster's store. */
  readonly url: string;
  /** This instance's id in the cluster. Default: `store.instanceId`, else the one kept in the state directory, else random. */
  readonly instanceId?: string;
  /** The URL the other instances reach this one's HTTP API by. Default: the URL it listens on. */
  readonly advertiseUrl?: string;
}

/**
 * The gateway's HTTP options (also the `http` key of `vigil serve --config`): the HTTP API's limits
 * (as in `createHttpHandler`) and the server's timeouts.
 */
export const gatewayHttpOptionsSchema = httpApiOptionsSchema
  .pick({ bodyLimitBytes: true, maxWaitMs: true, maxLongPolls: true, stream: true })
  .extend({
    /**
     * A client must send a request's headers within this (default 10 s) and the whole request
     * within `requestTimeoutMs` (default 30 s); otherwise it is answered 408 and disconnected.
     * A stream or long-poll is not cut: its request is complete once its headers are in.
     */
    headersTimeoutMs: z.number().int().min(1).max(3_600_000).default(10_000),
    requestTimeoutMs: z.number().int().min(1).max(3_600_000).default(30_000),
  })
  .refine((http) => http.headersTimeoutMs <= http.requestTimeoutMs, {
    message: 'must not exceed requestTimeoutMs',
    path: ['headersTimeoutMs'],
  });

export type GatewayHttpOptions = z.input<typeof gatewayHttpOptionsSchema>;

/** The reference gateway: the plugin, the HTTP API and the web page on one loopback server. */
export interface EmbeddedGateway extends AsyncDisposable {
  readonly url: string;
  readonly token: string;
  readonly plugin: GatewayPlugin;
  readonly handler: HttpHandler;
  readonly server: Server;
  /**
   * The sessions restored from `config.stateDir` and opened again at start (their pending
   * notifications go to `onNotification`, their commands were adopted), in id order.
   */
  readonly restored: readonly string[];
  /** This instance's id in its cluster (with a Redis store). */
  readonly instanceId?: string;
  /**
   * Closes the sessions and the server together; `force` ends every process group at once (a second
   * Ctrl-C); `keepProcesses` is the restart-safe stop (see `vigil.close`).
   */
  close(options?: CloseOptions): Promise<void>;
}

/** Starts the embedded reference gateway; resolves once it listens. */
export async function startGateway(options: EmbeddedGatewayOptions = {}): Promise<EmbeddedGateway> {
  const token = options.token ?? process.env.VIGIL_TOKEN ?? randomBytes(24).toString('base64url');
  const problem = bearerTokenProblem(token);
  if (problem !== undefined) {
    const field = options.token === undefined ? 'VIGIL_TOKEN' : 'token';
    throw new VigilError('ERR_INVALID_CONFIG', `${field}: ${problem}`, { details: { field } });
  }
  const secrets = options.config?.secrets;
  const plugin = createGatewayPlugin({
    // The token is redacted from every output, wherever a command found it. An unreachable Redis
    // fails here (ERR_STORE_UNAVAILABLE naming it), before anything runs.
    config: {
      ...options.config,
      ...withClusterStore(options),
      secrets: { ...secrets, values: [...(secrets?.values ?? []), token] },
    },
    ...(options.pool === undefined ? {} : { pool: options.pool }),
    inject: async (sessionId, message) => {
      await options.onNotification?.(sessionId, message);
    },
  });
  const vigil = plugin.vigil;
  // Failover: a session this instance took over from a gone one is opened with the gateway's
  // deliver at once, which delivers what was pending there (exactly once: the store says what was
  // acknowledged). Registered before anything can be taken over.
  vigil.on('session:restored', ({ sessionId }) => {
    // Fenced or closed meanwhile: nothing left to open here.
    vigil.sessions.open(sessionId, { deliver: plugin.deliver }).catch(() => undefined);
  });
  let cluster: Awaited<ReturnType<typeof joinCluster>> | undefined;
  try {
    cluster = vigil.cluster === undefined ? undefined : await joinCluster(vigil, token);
  } catch (error) {
    await vigil.close({ keepProcesses: true });
    throw error;
  }
  let port = 0;
  const allowed = (host: string): boolean => {
    const names = [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `[::1]:${port}`,
      ...(options.allowedHosts ?? []),
    ];
    return names.some((name) => name.toLowerCase() === host);
  };
  const { headersTimeoutMs, requestTimeoutMs, ...limits } = parse(
    gatewayHttpOptionsSchema,
    options.http ?? {},
    {
      what: 'gateway HTTP options',
      root: 'http',
      code: 'ERR_INVALID_CONFIG',
    },
  );
  const keepAliveMs = options.http?.stream?.keepAliveMs ?? options.keepAliveMs ?? limits.stream.keepAliveMs;
  const handler = createHttpHandler(vigil, {
    ...limits,
    token,
    allowedHosts: allowed,
    ...(options.cors === undefined ? {} : { cors: options.cors }),
    stream: { ...limits.stream, keepAliveMs },
    openSession: (sessionId) => vigil.sessions.open(sessionId, { deliver: plugin.deliver }),
    ...(cluster === undefined ? {} : { cluster }),
  });
  let restored: string[];
  try {
    restored = await reopenRestored(vigil, plugin.deliver);
  } catch (error) {
    // Restart-safe: a start that fails must not end the commands the next start can adopt.
    await Promise.all([vigil.close({ keepProcesses: true }), cluster?.close()]);
    throw error;
  }
  const assets = createWebAssets();
  const server = createServer(
    {
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      // Node checks the two timeouts this often (its default, 30 s, would let a trickler stay that much longer).
      connectionsCheckingInterval: Math.min(1_000, headersTimeoutMs),
    },
    (req, res) => {
      try {
        // The page is public, but only under an allowed Host (DNS rebinding).
        checkHost(req, allowed);
        if (assets(req, res)) return;
      } catch {
        // The API answers the Host error in its own format.
      }
      handler(req, res);
    },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 7420, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await Promise.all([handler.close(), vigil.close({ keepProcesses: true }), cluster?.close()]);
    throw error;
  }
  port = (server.address() as AddressInfo).port;
  const shown = (options.host ?? '127.0.0.1').includes(':')
    ? `[${options.host}]`
    : (options.host ?? '127.0.0.1');
  const url = `http://${shown}:${port}`;
  try {
    vigil.cluster?.advertise({ url: options.cluster?.advertiseUrl ?? url });
  } catch (error) {
    await Promise.all([handler.close(), vigil.close({ keepProcesses: true }), cluster?.close()]);
    server.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const close = (closeOptions: CloseOptions = {}): Promise<void> => {
    // The first close decides whether the commands run on; a hurry reaches a close already
    // running: vigil then stops at once (without keepProcesses, SIGKILL to every process group).
    void vigil.close(closeOptions);
    closing ??= (async () => {
      // The sessions close while the requests end: a request (a stdin write the child never reads,
      // a close) must not hold the stop. handler.close aborts every request's signal.
      const requests = (async () => {
        await handler.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      await Promise.all([requests, plugin.hooks.gatewayStop()]);
      await cluster?.close();
    })();
    return closing;
  };
  return {
    url,
    token,
    plugin,
    handler,
    server,
    restored,
    ...(vigil.cluster === undefined ? {} : { instanceId: vigil.cluster.instanceId }),
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}

/**
 * The reference gateway keeps no sessions of its own: every session its vigil restored from the
 * state directory is one it still has, so it opens each again with its `deliver` (G16).
 */
async function reopenRestored(vigil: Vigil, deliver: Deliver): Promise<string[]> {
  const restored = vigil.sessions
    .list()
    .filter((session) => session.state === 'open')
    .map((session) => session.sessionId);
  await Promise.all(restored.map((sessionId) => vigil.sessions.open(sessionId, { deliver })));
  return restored;
}

/** `config.store` for `options.cluster`: Redis at its URL, with the config's other store fields. */
function withClusterStore(options: EmbeddedGatewayOptions): Pick<VigilOptions, 'store'> {
  const given = options.cluster;
  if (given === undefined) return {};
  const store = options.config?.store?.kind === 'redis' ? options.config.store : {};
  return {
    store: {
      ...store,
      kind: 'redis',
      url: given.url,
      ...(given.instanceId === undefined ? {} : { instanceId: given.instanceId }),
    },
  };
}

/**
 * The gateway's view of the cluster its vigil's store is in: its own connection to the same Redis,
 * for the reads of other instances' sessions (the module, and ioredis with it, loads only here).
 */
async function joinCluster(vigil: Vigil, token: string) {
  const { store, tape } = vigil.config;
  if (store.kind !== 'redis' || vigil.cluster === undefined) throw new Error('not in a cluster');
  const { Cluster } = await import('../cluster/cluster.js');
  return Cluster.open({
    url: store.url,
    prefix: store.prefix,
    instanceId: vigil.cluster.instanceId,
    timeoutMs: store.timeoutMs,
    token,
    tape,
  });
}
