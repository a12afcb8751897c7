import {
  type ApprovalSnapshot,
  type ApprovalView,
  type ProcessInfo,
  type SessionInfo,
  type SessionState,
  VigilError,
} from '@vigil/core';
import { leaseHolder, type RedisKeys } from '@vigil/core/redis';
import type { Redis } from 'ioredis';
import { processInfoOf, type StoredProcess } from './process-record-info.js';
import { execAll, guarded } from './redis-errors.js';

/** Who serves a session: the instance holding its lease (or the last one that did). */
export interface SessionOwner {
  readonly instanceId: string;
  /** Its HTTP API base, when it registered one. */
  readonly url: string | undefined;
  /** Its lease on the session is current and its liveness key exists. */
  readonly alive: boolean;
  /** The session is closed: nothing runs in it any more, wherever it was served. */
  readonly closed: boolean;
}

interface StoredApproval {
  /** The order it was requested in. */
  readonly n?: number;
  readonly view: ApprovalView;
  readonly outcome: string | null;
}

/**
 * Reads what the Redis store holds of sessions another instance serves: their records, approval
 * queues and processes, in the shapes the HTTP API answers for local ones.
 */
export class RemoteSessions {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #url: string;

  constructor(redis: Redis, keys: RedisKeys, url: string) {
    this.#redis = redis;
    this.#keys = keys;
    this.#url = url;
  }

  /** Ids of the cluster's sessions not closed. */
  ids(): Promise<string[]> {
    return guarded(this.#url, () => this.#redis.smembers(this.#keys.sessions));
  }

  /** The session as `GET /v1/sessions/:sid` shows it; `ERR_UNKNOWN_SESSION` when the store has none. */
  async info(sessionId: string): Promise<SessionInfo> {
    const keys = this.#keys;
    const replies = await this.#exec(
      this.#redis
        .multi()
        .hgetall(keys.session(sessionId))
        .hvals(keys.processes(sessionId))
        .hlen(keys.pending(sessionId))
        .xrevrange(keys.tape(sessionId), '+', '-', 'COUNT', 1),
    );
    const [record, processes, pending, newest] = replies as [
      Record<string, string>,
      string[],
      number,
      [string, string[]][],
    ];
    if (record.state === undefined) throw unknownSession(sessionId);
    const state = record.state as SessionState;
    const openedAt = Number(record.openedAt ?? 0);
    const lastEvent = newest[0]?.[1];
    const lastAt = lastEvent === undefined ? openedAt : (JSON.parse(lastEvent[1] ?? '{}').at ?? openedAt);
    const active = processes
      .map((json) => JSON.parse(json) as StoredProcess)
      .filter(({ record }) => record.state === 'running' || record.state === 'pending_approval').length;
    return {
      sessionId,
      state,
      openedAt,
      closedAt: nullableNumber(record.closedAt),
      closeReason: record.closeReason === undefined || record.closeReason === '' ? null : record.closeReason,
      lastActivityAt: lastAt,
      // Its poller runs on the owner: none here.
      poller: { runId: 0, threadId: -1, restarts: 0, running: state === 'open' },
      activeProcesses: active,
      outboxDepth: pending,
      lastSeq: Number(record.lastSeq ?? 0),
    };
  }

  /** The session's approval queue: its oldest pending entry, how many are pending, its version. */
  async approvals(sessionId: string): Promise<ApprovalSnapshot> {
    const keys = this.#keys;
    const [version, entries] = (await this.#exec(
      this.#redis.multi().hget(keys.session(sessionId), 'approvalVersion').hvals(keys.approvals(sessionId)),
    )) as [string | null, string[]];
    if (version === null) throw unknownSession(sessionId);
    const pending = entries
      .map((json) => JSON.parse(json) as StoredApproval)
      .filter((entry) => entry.outcome === null || entry.outcome === undefined)
      .sort((a, b) => (a.n ?? 0) - (b.n ?? 0) || a.view.requestedAt - b.view.requestedAt)
      .map((entry) => entry.view);
    return { sessionId, head: pending[0] ?? null, count: pending.length, version: Number(version) };
  }

  /** The session's processes, oldest first. */
  async processes(sessionId: string): Promise<ProcessInfo[]> {
    const keys = this.#keys;
    const [exists, entries] = (await this.#exec(
      this.#redis.multi().exists(keys.session(sessionId)).hvals(keys.processes(sessionId)),
    )) as [number, string[]];
    if (exists === 0) throw unknownSession(sessionId);
    return entries
      .map((json) => processInfoOf(JSON.parse(json) as StoredProcess))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** The session a process belongs to, among the cluster's open sessions; undefined when none has it. */
  async sessionOf(processId: string): Promise<string | undefined> {
    const ids = await this.ids();
    if (ids.length === 0) return undefined;
    const pipeline = this.#redis.pipeline();
    for (const sessionId of ids) pipeline.hexists(this.#keys.processes(sessionId), processId);
    const found = (await this.#exec(pipeline)) as number[];
    return ids[found.indexOf(1)];
  }

  /** The session's owner; undefined when the store has no such session. */
  async owner(sessionId: string): Promise<SessionOwner | undefined> {
    const keys = this.#keys;
    const [lease, [recorded, state]] = (await this.#exec(
      this.#redis.multi().get(keys.lease(sessionId)).hmget(keys.session(sessionId), 'owner', 'state'),
    )) as [string | null, (string | null)[]];
    const holder = leaseHolder(lease);
    const instanceId = holder ?? recorded;
    if (instanceId === null || instanceId === undefined) return undefined;
    const [entry, live] = (await this.#exec(
      this.#redis.multi().hget(keys.instances, instanceId).exists(keys.instance(instanceId)),
    )) as [string | null, number];
    const url = entry === null ? undefined : (JSON.parse(entry) as { url?: string }).url;
    return { instanceId, url, alive: holder !== undefined && live === 1, closed: state === 'closed' };
  }

  #exec(batch: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<unknown[]> {
    return execAll(this.#url, batch);
  }
}

function unknownSession(sessionId: string): VigilError {
  return new VigilError('ERR_UNKNOWN_SESSION', `No session ${sessionId}`, { details: { sessionId } });
}

function nullableNumber(value: string | undefined): number | null {
  return value === undefined || value === '' || value === 'null' ? null : Number(value);
}
