// The Redis journal store (`store.kind: 'redis'`) against a real redis-server: what a restore
// finds equals what was written, the tape's seq stays gapless and exact, a lease held by another
// instance refuses the open, a stale holder's writes are fenced, and closing leaks nothing.
import { createVigil, type Vigil, type VigilError } from '@vigil/core';
import { type RedisStore, redisKeys } from '@vigil/core/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { leakedResources, nextEvent, resources, settledThreads } from './support/fixtures.js';
import { osThreads } from './support/proc.js';
import { Inbox, newSessionId } from './support/processes.js';
import { raceIt } from './support/race.js';
import { eventOf, putOpen, type RedisServer, redisFixture } from './support/redis.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const fixture = redisFixture(cleanups);

const errors: VigilError[] = [];
function store(server: RedisServer, instanceId: string, leaseMs = 10_000): RedisStore {
  return fixture.store(server, instanceId, errors, { leaseMs });
}

describe('RedisStore', () => {
  it('restores what was written: tape, pending and delivered notifications, approvals and grants, processes', async () => {
    const server = await fixture.server();
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

  it('keeps a completion while its process is kept, and one still pending after its process is forgotten', async () => {
    const server = await fixture.server();
    const target = store(server, 'a');
    target.claim('s');
    putOpen(target, 's');
    const completion = (processId: string, seq: number) =>
      ({ id: `${processId}:completion`, sessionId: 's', type: 'completion', seq, processId }) as never;
    target.putProcess({ processId: 'kept', sessionId: 's', state: 'exited' } as never);
    target.putProcess({ processId: 'waiting', sessionId: 's', state: 'exited' } as never);
    for (const [seq, processId] of [
      [1, 'kept'],
      [2, 'gone'],
      [3, 'waiting'],
    ] as const) {
      target.appendEvent('s', eventOf(seq));
      target.putNotification(completion(processId, seq));
      if (processId !== 'waiting') target.setNotificationState(completion(processId, seq), 'delivered');
    }
    for (let seq = 4; seq <= 20; seq++) target.appendEvent('s', eventOf(seq));
    // `waiting` is forgotten before its completion was delivered; the tape drops the three events.
    target.deleteProcess('s', 'waiting');
    target.trimEvents('s', 10);
    target.commitNow();
    target.close();
    const [restored] = store(server, 'a').restore();
    expect(restored!.delivered).toEqual(['kept:completion']);
    expect(restored!.pending.map(({ id }) => id)).toEqual(['waiting:completion']);
  });

  it('appends only the next seq: a write with a wrong seq is refused whole, the tape stays gapless', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
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

function redisVigil(server: RedisServer, instanceId: string): Vigil {
  const vigil = createVigil({
    store: { kind: 'redis', url: server.url, instanceId },
    processes: { spawner: 'direct' },
  });
  cleanups.push(() => vigil.close());
  return vigil;
}

describe('a vigil on Redis', () => {
  it('fails at once on an unreachable Redis, naming its URL without the password, and leaves nothing behind', async () => {
    const server = await fixture.server();
    await server.stop();
    const baseResources = resources();
    const baseThreads = osThreads();
    const url = `redis://vigil:s3cret@127.0.0.1:${server.port}/0`;
    let thrown: VigilError | undefined;
    try {
      createVigil({ store: { kind: 'redis', url } });
    } catch (error) {
      thrown = error as VigilError;
    }
    expect(thrown?.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(thrown?.message).toContain(`127.0.0.1:${server.port}`);
    expect(thrown?.message).not.toContain('s3cret');
    expect(await settledThreads(baseThreads, 20_000)).toBe(baseThreads);
    expect(await leakedResources(baseResources)).toEqual({});
  });

  it('names the field of a bad store option', () => {
    expect(() => createVigil({ store: { kind: 'redis', url: 'http://x' } as never })).toThrow(/store\.url/);
    expect(() => createVigil({ store: { kind: 'redis', url: 'redis://x', leaseMs: 1 } as never })).toThrow(
      /store\.leaseMs/,
    );
  });

  raceIt('journals to Redis, delivers, and leaves no thread, port or timer after close (G3)', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
    await redis.ping();
    const keys = redisKeys('vigil:');
    const baseResources = resources();
    const baseThreads = osThreads();
    const vigil = createVigil({
      store: { kind: 'redis', url: server.url, instanceId: 'one' },
      processes: { spawner: 'direct' },
    });
    const inbox = new Inbox();
    const sessionId = newSessionId('leak');
    await vigil.sessions.open(sessionId, { deliver: inbox.deliver });
    const { processId } = vigil.processes.spawn({ sessionId, command: 'exit 3' });
    await inbox.of(processId, 'completion');
    expect(await redis.get(keys.lease(sessionId))).toMatch(/^one\/[0-9a-f]+ \d+$/);
    expect(vigil.cluster?.instanceId).toBe('one');
    vigil.cluster!.advertise({ url: 'http://127.0.0.1:7010' });
    expect(JSON.parse((await redis.hget(keys.instances, 'one'))!)).toMatchObject({
      url: 'http://127.0.0.1:7010',
      pid: process.pid,
    });
    expect(await redis.exists(keys.instance('one'))).toBe(1);
    const tape = await redis.xrange(keys.tape(sessionId), '-', '+');
    expect(tape.map(([, [, json]]) => (JSON.parse(json!) as { type: string }).type)).toContain(
      'process.exited',
    );
    await vigil.close();
    // Its sessions are forgotten with it, its lease and its presence released.
    expect(await redis.exists(keys.lease(sessionId), keys.session(sessionId), keys.instance('one'))).toBe(0);
    expect(await settledThreads(baseThreads)).toBe(baseThreads);
    expect(await leakedResources(baseResources)).toEqual({});
  });

  raceIt('refuses to open a session another live instance serves, naming it', async () => {
    const server = await fixture.server();
    const one = redisVigil(server, 'one');
    const two = redisVigil(server, 'two');
    const sessionId = newSessionId('owned');
    await one.sessions.open(sessionId);
    await expect(two.sessions.open(sessionId)).rejects.toMatchObject({
      code: 'ERR_SESSION_OWNED',
      message: expect.stringContaining('instance one') as unknown,
      details: { owner: 'one' },
    });
    expect(() => two.sessions.get(sessionId)).toThrow(/unknown session/);
    // Once `one` closed it, `two` opens a new session of that id.
    await one.sessions.close(sessionId);
    await one.close();
    await two.sessions.open(sessionId);
  });

  raceIt(
    "rejects a stale lease holder's writes by the fencing token: nothing of it is written, it drops the session",
    async () => {
      const server = await fixture.server();
      const redis = fixture.client(server);
      const keys = redisKeys('vigil:');
      const one = redisVigil(server, 'one');
      const sessionId = newSessionId('fenced');
      await one.sessions.open(sessionId);
      const lastSeq = await redis.hget(keys.session(sessionId), 'lastSeq');
      // Another instance takes the lease, as after `one` paused past leaseMs.
      await redis.del(keys.lease(sessionId));
      const token = await redis.incr(keys.fence(sessionId));
      await redis.set(keys.lease(sessionId), `two ${token}`, 'PX', 60_000);
      const fenced = nextEvent(one, 'session:fenced');
      const { processId } = one.processes.spawn({ sessionId, command: 'sleep 30' });
      const [{ sessionId: dropped }] = await fenced;
      expect(dropped).toBe(sessionId);
      expect(await redis.hget(keys.session(sessionId), 'lastSeq')).toBe(lastSeq);
      expect(await redis.xlen(keys.tape(sessionId))).toBe(Number(lastSeq));
      expect(await redis.hkeys(keys.processes(sessionId))).toEqual([]);
      expect(await redis.get(keys.lease(sessionId))).toBe(`two ${token}`);
      expect(() => one.sessions.get(sessionId)).toThrow(/unknown session/);
      // Its process here is killed: the new owner accounts for it.
      const ended = await one.processes.wait(processId).catch(() => undefined);
      expect(ended === undefined || ended.process.state !== 'running').toBe(true);
    },
  );

  raceIt('finds a lease taken from under an idle session when it renews, and drops the session', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
    const keys = redisKeys('vigil:');
    const one = createVigil({
      store: { kind: 'redis', url: server.url, instanceId: 'one', leaseMs: 300 },
      processes: { spawner: 'direct' },
    });
    cleanups.push(() => one.close());
    const kept = newSessionId('kept');
    const taken = newSessionId('taken');
    await one.sessions.open(kept);
    await one.sessions.open(taken);
    const token = await redis.incr(keys.fence(taken));
    await redis.set(keys.lease(taken), `two ${token}`, 'PX', 60_000);
    const [{ sessionId }] = await nextEvent(one, 'session:fenced');
    expect(sessionId).toBe(taken);
    // The other one is still its own.
    expect(one.sessions.get(kept).state).toBe('open');
    expect(await redis.get(keys.lease(kept))).toMatch(/^one\/[0-9a-f]+ \d+$/);
  });
});
