// The Redis journal store (`store.kind: 'redis'`) against a real redis-server: what a restore
// finds equals what was written, the tape's seq stays gapless and exact, a lease held by another
// instance refuses the open, a stale holder's writes are fenced, and closing leaks nothing.
import { createVigil, type VigilError } from '@vigil/core';
import { RedisStore, redisKeys } from '@vigil/core/redis';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { leakedResources, resources } from './support/fixtures.js';
import { Inbox, newSessionId } from './support/processes.js';
import { raceIt } from './support/race.js';
import { type RedisServer, startRedis } from './support/redis.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function redisServer(persist = false): Promise<RedisServer> {
  const server = await startRedis({ persist });
  cleanups.push(() => server[Symbol.asyncDispose]());
  return server;
}

function client(server: RedisServer): Redis {
  const redis = new Redis(server.url);
  cleanups.push(() => redis.disconnect());
  return redis;
}

const errors: VigilError[] = [];
function store(server: RedisServer, instanceId: string, leaseMs = 10_000): RedisStore {
  const opened = new RedisStore({
    url: server.url,
    prefix: 'vigil:',
    leaseMs,
    timeoutMs: 2_000,
    instanceId,
    onError: (error) => errors.push(error),
  });
  cleanups.push(() => opened.close());
  return opened;
}

const eventOf = (seq: number) =>
  ({ seq, type: 'watch.resumed', at: seq, data: { suppressed: 0, pausedMs: 0, message: `${seq}` } }) as never;

function putOpen(target: RedisStore, sessionId: string): void {
  target.putSession({
    sessionId,
    state: 'open',
    openedAt: 1,
    closedAt: null,
    closeReason: null,
    approvalVersion: 0,
  });
}

describe('RedisStore', () => {
  it('restores what was written: tape, pending and delivered notifications, approvals and grants, processes', async () => {
    const server = await redisServer();
    const first = store(server, 'a');
    expect(first.claim('s1')).toBeUndefined();
    putOpen(first, 's1');
    for (let seq = 1; seq <= 30; seq++) first.appendEvent('s1', eventOf(seq));
    const notification = (seq: number) =>
      ({
        id: `n${seq}`,
        sessionId: 's1',
        type: 'watch_match',
        seq,
        at: seq,
        processId: 'p',
        command: '',
        data: {},
      }) as never;
    for (const seq of [5, 10, 15, 20, 25]) first.putNotification(notification(seq));
    first.setNotificationState(notification(5), 'delivered');
    first.setNotificationState(notification(10), 'withdrawn');
    first.setNotificationState(notification(20), 'delivered');
    const view = (approvalId: string) =>
      ({ approvalId, command: `cmd ${approvalId}`, description: '', requestedAt: 1 }) as never;
    first.putApproval('s1', view('a1'));
    first.putApproval('s1', view('a2'));
    first.putApproval('s1', view('a3'));
    first.resolveApproval('s1', 'a1', 'approved', 'approve_session');
    first.putProcess({ processId: 'p1', sessionId: 's1', state: 'exited' } as never);
    first.putProcess({ processId: 'p2', sessionId: 's1', state: 'exited' } as never);
    first.deleteProcess('s1', 'p2');
    first.trimEvents('s1', 8);
    first.commitNow();
    // Another instance finds it held; after `a` is gone (its lease released) `b` takes it over.
    const second = store(server, 'b');
    expect(second.restore()).toEqual([]);
    first.close();
    const [restored] = second.restore();
    expect(restored!.record).toEqual({
      sessionId: 's1',
      state: 'open',
      openedAt: 1,
      closedAt: null,
      closeReason: null,
      approvalVersion: 0,
    });
    expect(restored!.events.map((event) => event.seq)).toEqual(Array.from({ length: 23 }, (_, i) => i + 8));
    expect(restored!.lastSeq).toBe(30);
    expect(restored!.pending.map(({ id }) => id)).toEqual(['n15', 'n25']);
    // n5's event was trimmed: its acknowledgement goes with it.
    expect(restored!.delivered).toEqual(['n20']);
    expect(restored!.approvals.map(({ approvalId }) => approvalId)).toEqual(['a2', 'a3']);
    expect(restored!.grants.map(({ approvalId }) => approvalId)).toEqual(['a1']);
    expect(restored!.processes.map(({ processId }) => processId)).toEqual(['p1']);
    expect(restored!.foreign).toEqual(new Map([['p1', 'a']]));
    expect(errors).toEqual([]);
  });

  it('appends only the next seq: a write with a wrong seq is refused whole, the tape stays gapless', async () => {
    const server = await redisServer();
    const redis = client(server);
    const keys = redisKeys('vigil:');
    const target = store(server, 'a');
    target.claim('s');
    putOpen(target, 's');
    target.appendEvent('s', eventOf(1));
    target.appendEvent('s', eventOf(2));
    target.commitNow();
    errors.length = 0;
    // A gap (4 after 2), with a notification in the same group: none of it is written.
    target.appendEvent('s', eventOf(4));
    target.putNotification({ id: 'late', sessionId: 's', seq: 4 } as never);
    target.commitNow();
    expect(errors.map(({ code, message }) => [code, message])).toEqual([
      ['ERR_JOURNAL', expect.stringContaining('session s') as unknown],
    ]);
    expect(errors[0]!.message).toContain('gap:2:4');
    const tape = await redis.xrange(keys.tape('s'), '-', '+');
    expect(tape.map(([id]) => id)).toEqual(['1-0', '2-0']);
    expect(await redis.hgetall(keys.pending('s'))).toEqual({});
    target.appendEvent('s', eventOf(3));
    target.commitNow();
    expect((await redis.xrange(keys.tape('s'), '-', '+')).map(([id]) => id)).toEqual(['1-0', '2-0', '3-0']);
  });
});
