// Writes the Redis keys of DESIGN's schema the way the Redis journal store does, so that the
// gateway's cluster layer (its reader, router and forwarder) can be tested against them.
import type { TapeEvent } from '@vigil/core';
import { Redis } from 'ioredis';

export const PREFIX = 'vigil:';

export interface StoreWriter extends AsyncDisposable {
  readonly redis: Redis;
  /** Journals an open session owned by `owner` (its lease held for a minute). */
  openSession(sessionId: string, owner: string): Promise<void>;
  /** Appends the next events (seq = lastSeq + 1, ...) to the session's tape, atomically with lastSeq. */
  append(sessionId: string, ...events: Omit<TapeEvent, 'seq' | 'at'>[]): Promise<number>;
  /** Registers an instance (`url`) and, when `alive`, its liveness key. */
  instance(instanceId: string, url: string, alive?: boolean): Promise<void>;
}

export async function storeWriter(url: string): Promise<StoreWriter> {
  const redis = new Redis(url);
  const key = (sessionId: string, part = '') => `${PREFIX}s:${sessionId}${part}`;
  return {
    redis,
    async openSession(sessionId, owner) {
      await redis
        .multi()
        .hset(key(sessionId), {
          state: 'open',
          openedAt: Date.now(),
          closedAt: '',
          closeReason: '',
          approvalVersion: 0,
          lastSeq: 0,
          firstSeq: 1,
          owner,
        })
        .set(key(sessionId, ':lease'), `${owner} 1`, 'PX', 60_000)
        .sadd(`${PREFIX}sessions`, sessionId)
        .exec();
    },
    async append(sessionId, ...events) {
      const lastSeq = Number((await redis.hget(key(sessionId), 'lastSeq')) ?? 0);
      const batch = redis.multi();
      events.forEach((event, i) => {
        const seq = lastSeq + i + 1;
        batch.xadd(
          key(sessionId, ':tape'),
          `${seq}-0`,
          'e',
          JSON.stringify({ seq, at: Date.now(), ...event }),
        );
      });
      await batch.hset(key(sessionId), 'lastSeq', lastSeq + events.length).exec();
      return lastSeq + events.length;
    },
    async instance(instanceId, url, alive = true) {
      const batch = redis
        .multi()
        .hset(
          `${PREFIX}instances`,
          instanceId,
          JSON.stringify({ url, pid: 0, hostname: 'test', startedAt: 0 }),
        );
      if (alive) batch.set(`${PREFIX}instance:${instanceId}`, '0', 'PX', 60_000);
      await batch.exec();
    },
    async [Symbol.asyncDispose]() {
      redis.disconnect();
    },
  };
}
