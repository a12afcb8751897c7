import { VigilError } from '@vigil/core';
import { redisKeys } from '@vigil/core/redis';
import { Redis } from 'ioredis';
import type { ClusterRouting, ForwardedReply, ForwardRequest } from '../http/cluster-routing.js';
import { forwardTo } from './forward.js';
import { storeUnavailable } from './redis-errors.js';
import { RemoteSessions } from './remote-sessions.js';
import { RemoteTape, type TapeLimits } from './remote-tape.js';

/** How an instance joins a cluster (`vigil serve --redis`). */
export interface ClusterOptions {
  /** The Redis the store uses: `redis://[:password@]host:port[/db]`. */
  readonly url: string;
  /** The store's key prefix. */
  readonly prefix: string;
  readonly instanceId: string;
  /** A Redis command that takes longer fails (`ERR_STORE_UNAVAILABLE`). */
  readonly timeoutMs: number;
  /** The bearer token every instance of the cluster shares. */
  readonly token: string;
  readonly tape: TapeLimits;
}

/**
 * One instance's view of its cluster: reads of sessions other instances serve (from Redis) and the
 * forwarding of what must run on their owner. The instance's presence (`P instances`, its liveness
 * key) is the store's: its worker renews it with the leases.
 */
export class Cluster implements ClusterRouting, AsyncDisposable {
  readonly instanceId: string;
  readonly #redis: Redis;
  readonly #token: string;
  readonly #remote: RemoteSessions;
  readonly #tape: RemoteTape;

  private constructor(redis: Redis, options: ClusterOptions) {
    const keys = redisKeys(options.prefix);
    this.instanceId = options.instanceId;
    this.#redis = redis;
    this.#token = options.token;
    this.#remote = new RemoteSessions(redis, keys, options.url);
    this.#tape = new RemoteTape(redis, keys, {
      url: options.url,
      limits: options.tape,
      timeoutMs: options.timeoutMs,
    });
  }

  /** Connects to Redis; an unreachable one fails at once with `ERR_STORE_UNAVAILABLE` naming the URL. */
  static async open(options: ClusterOptions): Promise<Cluster> {
    const redis = new Redis(options.url, {
      lazyConnect: true,
      // Fail fast instead of queueing while Redis is away: every read answers a typed error.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: options.timeoutMs,
      commandTimeout: options.timeoutMs,
    });
    // Later connection errors are reported by the commands that fail meanwhile; the first one
    // (ECONNREFUSED...) says why the start failed better than "Connection is closed".
    let first: unknown;
    redis.on('error', (error) => {
      first ??= error;
    });
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw storeUnavailable(options.url, first ?? error);
    }
    return new Cluster(redis, options);
  }

  sessionIds(): Promise<string[]> {
    return this.#remote.ids();
  }
  session(sessionId: string) {
    return this.#remote.info(sessionId);
  }
  read(sessionId: string, options: Parameters<ClusterRouting['read']>[1]) {
    return this.#tape.read(sessionId, options);
  }
  subscribe(sessionId: string, options: { readonly after: number; readonly signal: AbortSignal }) {
    return this.#tape.subscribe(sessionId, options);
  }
  approvals(sessionId: string) {
    return this.#remote.approvals(sessionId);
  }
  processes(sessionId: string) {
    return this.#remote.processes(sessionId);
  }

  async forwardToSession(sessionId: string, request: ForwardRequest): Promise<ForwardedReply> {
    const owner = await this.#remote.owner(sessionId);
    if (owner === undefined) {
      throw new VigilError('ERR_UNKNOWN_SESSION', `No session ${sessionId}`, { details: { sessionId } });
    }
    return forwardTo(sessionId, owner, request, { instanceId: this.instanceId, token: this.#token });
  }

  async forwardToProcess(processId: string, request: ForwardRequest): Promise<ForwardedReply> {
    const sessionId = await this.#remote.sessionOf(processId);
    if (sessionId === undefined) {
      throw new VigilError('ERR_UNKNOWN_PROCESS', `No process ${processId}`, { details: { processId } });
    }
    return this.forwardToSession(sessionId, request);
  }

  /** Closes the connection (the store, not this, is the instance's presence). Idempotent. */
  async close(): Promise<void> {
    this.#redis.disconnect();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
