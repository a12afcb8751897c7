// Writes the Redis keys of the store's schema the way the Redis journal store does, so that the
// gateway's cluster layer (its reader, router and forwarder) can be tested against situations no
// live instance is in: a session whose owner is gone or unreachable, a tape appended at will.
import type { TapeEvent } from '@vigil/core';
import { redisKeys } from '@vigil/core/redis';
import { Redis } from 'ioredis';

export const keys = redisKeys('vigil:');

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
  return {
    redis,
    async openSession(sessionId, owner) {
      await redis
        .multi()
        .hset(keys.session(sessionId), {
          state: 'open',
          openedAt: Date.now(),
          closedAt: '',
          closeReason: '',
          approvalVersion: 0,
          lastSeq: 0,
          firstSeq: 1,
          owner,
        })
        .set(keys.lease(sessionId), `${owner}/test 1`, 'PX', 60_000)
        .sadd(keys.sessions, sessionId)
        .exec();
    },
    async append(sessionId, ...events) {
      const lastSeq = Number((await redis.hget(keys.session(sessionId), 'lastSeq')) ?? 0);
      const batch = redis.multi();
      events.forEach((event, i) => {
        const seq = lastSeq + i + 1;
        batch.xadd(keys.tape(sessionId), `${seq}-0`, 'e', JSON.stringify({ seq, at: Date.now(), ...event }));
      });
      await batch.hset(keys.session(sessionId), 'lastSeq', lastSeq + events.length).exec();
      return lastSeq + events.length;
    },
    async instance(instanceId, url, alive = true) {
      const entry = JSON.stringify({ url, pid: 0, hostname: 'test', startedAt: 0 });
      const batch = redis.multi().hset(keys.instances, instanceId, entry);
      if (alive) batch.set(keys.instance(instanceId), '0', 'PX', 60_000);
      await batch.exec();
    },
    async [Symbol.asyncDispose]() {
      redis.disconnect();
    },
  };
}
