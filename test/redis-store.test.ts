// The Redis journal store (`store.kind: 'redis'`) against a real redis-server: what a restore
// finds equals what was written, the tape's seq stays gapless and exact, a lease held by another
// instance refuses the open, a stale holder's writes are fenced, and closing leaks nothing.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVigil, type OpenSessionOptions, type Vigil, type VigilError } from '@vigil/core';
import { RedisStore, redisKeys } from '@vigil/core/redis';
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

/** A Redis server, a client of it, and a store `a` holding `sessionIds`, each open with event 1 committed. */
async function storeHolding(...sessionIds: string[]) {
  const server = await fixture.server();
  errors.length = 0;
  const a = store(server, 'a');
  for (const sessionId of sessionIds) {
    a.claim(sessionId);
    putOpen(a, sessionId);
    a.appendEvent(sessionId, eventOf(1));
  }
  a.commitNow();
  return { server, redis: fixture.client(server), keys: redisKeys('vigil:'), a };
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

  it('appends only the next seq: a write with a wrong seq is refused whole and drops the session, the tape stays gapless', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
    const keys = redisKeys('vigil:');
    const target = store(server, 'a');
    const fenced: string[] = [];
    target.onFenced((sessionId) => fenced.push(sessionId));
    target.claim('s');
    putOpen(target, 's');
    target.appendEvent('s', eventOf(1));
    target.appendEvent('s', eventOf(2));
    target.commitNow();
    errors.length = 0;
    // A gap (4 after 2), with a notification in the same group: none of it is written, and what this
    // instance journaled is no longer what Redis holds: the session is dropped, its callbacks never run.
    const ran: string[] = [];
    target.appendEvent('s', eventOf(4));
    target.putNotification({ id: 'late', sessionId: 's', seq: 4 } as never);
    target.afterCommit(() => ran.push('seq 4'), 's');
    expect(() => target.commitNow('s')).toThrow(/gap:2:4/);
    expect(errors.map(({ code, message }) => [code, message])).toEqual([
      ['ERR_JOURNAL', expect.stringContaining('session s') as unknown],
    ]);
    expect(errors[0]!.message).toContain('gap:2:4');
    expect(errors[0]!.details).toEqual({ sessionId: 's', status: 'gap:2:4' });
    await Promise.resolve();
    expect(fenced).toEqual(['s']);
    const tape = await redis.xrange(keys.tape('s'), '-', '+');
    expect(tape.map(([id]) => id)).toEqual(['1-0', '2-0']);
    expect(await redis.hgetall(keys.pending('s'))).toEqual({});
    // Nothing more of it is written, and a commit as the session's keeps failing.
    target.appendEvent('s', eventOf(3));
    target.afterCommit(() => ran.push('seq 3'), 's');
    expect(() => target.commitNow('s')).toThrow(expect.objectContaining({ code: 'ERR_JOURNAL' }));
    expect((await redis.xrange(keys.tape('s'), '-', '+')).map(([id]) => id)).toEqual(['1-0', '2-0']);
    expect(ran).toEqual([]);
    expect(errors).toHaveLength(1);
  });

  it("never runs a fenced session's callbacks: commitNow as that session throws ERR_SESSION_OWNED naming the new owner", async () => {
    const { server, redis, keys, a } = await storeHolding('s1', 's2');
    const fenced: string[] = [];
    a.onFenced((sessionId) => fenced.push(sessionId));
    // `a`'s lease of s1 lapses (it was paused) and `b` takes the session over.
    await redis.del(keys.lease('s1'));
    store(server, 'b').claim('s1');
    // `a` does not know yet: it records a notification of s1, and an event of s2, in one batch.
    const ran: string[] = [];
    a.appendEvent('s1', eventOf(2));
    a.putNotification({ id: 'n2', sessionId: 's1', type: 'watch_match', seq: 2 } as never);
    a.afterCommit(() => ran.push('s1: publish 2, deliver n2'), 's1');
    a.appendEvent('s2', eventOf(2));
    a.afterCommit(() => ran.push('s2: publish 2'), 's2');
    let thrown: VigilError | undefined;
    try {
      a.commitNow('s1');
    } catch (error) {
      thrown = error as VigilError;
    }
    expect(thrown).toMatchObject({
      code: 'ERR_SESSION_OWNED',
      message: expect.stringMatching(/session s1 is served by instance b/) as unknown,
      details: { sessionId: 's1', owner: 'b' },
    });
    expect(ran).toEqual(['s2: publish 2']);
    expect((await redis.xrange(keys.tape('s1'), '-', '+')).map(([id]) => id)).toEqual(['1-0']);
    expect(await redis.hgetall(keys.pending('s1'))).toEqual({});
    expect((await redis.xrange(keys.tape('s2'), '-', '+')).map(([id]) => id)).toEqual(['1-0', '2-0']);
    // Dropped: its later writes go nowhere and their callbacks never run (not at once either).
    a.appendEvent('s1', eventOf(3));
    a.afterCommit(() => ran.push('s1: publish 3'), 's1');
    expect(() => a.commitNow('s1')).toThrow(expect.objectContaining({ code: 'ERR_SESSION_OWNED' }));
    a.commitNow('s2');
    a.afterCommit(() => ran.push('no session'));
    expect(ran).toEqual(['s2: publish 2', 'no session']);
    await Promise.resolve();
    expect(fenced).toEqual(['s1']);
    expect((await redis.xrange(keys.tape('s1'), '-', '+')).map(([id]) => id)).toEqual(['1-0']);
    // A lost lease is the session's news (onFenced), not a fault of the journal.
    expect(errors).toEqual([]);
  });

  it('commits nothing after freeze: a batch whose commit gave up waiting is not sent again', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
    const keys = redisKeys('vigil:');
    errors.length = 0;
    const target = new RedisStore({
      url: server.url,
      prefix: 'vigil:',
      leaseMs: 60_000,
      timeoutMs: 500,
      instanceId: 'a',
      onError: (error) => errors.push(error),
    });
    cleanups.push(() => {
      server.child.kill('SIGCONT');
      target.close();
      return target.released;
    });
    target.claim('s');
    putOpen(target, 's');
    target.appendEvent('s', eventOf(1));
    target.commitNow();
    // Every commit script Redis runs, by its batch id (ARGV[3]); `echo <marker>` ends the watch.
    const monitor = await redis.monitor();
    cleanups.push(() => monitor.disconnect());
    const batches: string[] = [];
    let marked: (() => void) | undefined;
    monitor.on('monitor', (_time: string, args: string[]) => {
      // ARGV[2] is the lease holder, `<instanceId>/<nonce>`.
      const [command, , , , holder, batchId] = args;
      if (command?.toLowerCase() === 'evalsha' && holder?.startsWith('a/') && batchId?.startsWith('a:')) {
        batches.push(batchId);
      }
      if (command?.toLowerCase() === 'echo' && args[1] === 'marker') marked?.();
    });
    const watched = (): Promise<void> =>
      new Promise((resolve) => {
        marked = resolve;
        void redis.echo('marker');
      });
    await watched();
    // Redis stops answering: the freeze's commit gives up, and the batch's late failure comes after it.
    server.child.kill('SIGSTOP');
    target.appendEvent('s', eventOf(2));
    target.freeze();
    expect(errors.map(({ code }) => code)).toEqual(['ERR_STORE_UNAVAILABLE']);
    // A request behind it through the thread: its answer comes after the batch's late failure.
    expect(() => target.advertise({ url: 'http://127.0.0.1:1' })).toThrow(/did not answer|unavailable/);
    server.child.kill('SIGCONT');
    target.close();
    await target.released;
    await watched();
    // The freeze's batch ran once (it was on its way when Redis stopped); it was not sent again.
    expect(batches).toEqual([expect.stringMatching(/^a:/)]);
    expect(await redis.xlen(keys.tape('s'))).toBe(2);
  });

  it('commits a close reason that is not valid UTF-16 (a lone surrogate) with the rest of its batch', async () => {
    const { redis, keys, a } = await storeHolding('s1', 's2', 's3');
    // s1 closes with a user's reason cut inside an emoji; s3 closes with an empty one; s2 goes on.
    const ran: string[] = [];
    a.appendEvent('s1', eventOf(2));
    const closed = { state: 'closed', openedAt: 1, closedAt: 5, approvalVersion: 3 } as const;
    a.putSession({ sessionId: 's1', ...closed, closeReason: 'user: done \ud83d' });
    a.putSession({ sessionId: 's3', ...closed, closeReason: '' });
    a.appendEvent('s2', eventOf(2));
    a.afterCommit(() => ran.push('s1'), 's1');
    a.afterCommit(() => ran.push('s2'), 's2');
    a.commitNow('s1');
    expect(ran).toEqual(['s1', 's2']);
    expect(errors).toEqual([]);
    expect(await redis.hgetall(keys.session('s1'))).toMatchObject({
      state: 'closed',
      closedAt: '5',
      approvalVersion: '3',
      // Redis holds UTF-8: the lone surrogate went as U+FFFD.
      closeReason: 'user: done \ufffd',
    });
    expect(await redis.hgetall(keys.session('s3'))).toMatchObject({ state: 'closed', closeReason: '' });
    expect(await redis.hexists(keys.session('s2'), 'closeReason')).toBe(0);
    expect((await redis.smembers(keys.sessions)).sort()).toEqual(['s2']);
    expect((await redis.xrange(keys.tape('s1'), '-', '+')).map(([id]) => id)).toEqual(['1-0', '2-0']);
    expect((await redis.xrange(keys.tape('s2'), '-', '+')).map(([id]) => id)).toEqual(['1-0', '2-0']);
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

/** A Redis server, a client of it, and a vigil `one` on it with one session open. */
async function oneSession(prefix: string, options: OpenSessionOptions = {}) {
  const server = await fixture.server();
  const redis = fixture.client(server);
  const one = redisVigil(server, 'one');
  const sessionId = newSessionId(prefix);
  await one.sessions.open(sessionId, options);
  return { redis, keys: redisKeys('vigil:'), one, sessionId };
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
    "rejects a stale lease holder's writes by the fencing token: its spawn fails naming the owner, starts nothing, and it drops the session",
    async () => {
      const { redis, keys, one, sessionId } = await oneSession('fenced');
      const lastSeq = await redis.hget(keys.session(sessionId), 'lastSeq');
      // Another instance takes the lease, as after `one` paused past leaseMs.
      await redis.del(keys.lease(sessionId));
      const token = await redis.incr(keys.fence(sessionId));
      await redis.set(keys.lease(sessionId), `two ${token}`, 'PX', 60_000);
      const fenced = nextEvent(one, 'session:fenced');
      // Its record is refused: the spawn fails, and nothing was started.
      expect(() => one.processes.spawn({ sessionId, command: 'sleep 30' })).toThrow(
        expect.objectContaining({
          code: 'ERR_SESSION_OWNED',
          message: expect.stringContaining(`session ${sessionId} is served by instance two`) as unknown,
          details: { sessionId, owner: 'two' },
        }),
      );
      expect(one.processes.list()).toEqual([]);
      expect(one.stats().processes).toBe(0);
      const [{ sessionId: dropped }] = await fenced;
      expect(dropped).toBe(sessionId);
      expect(await redis.hget(keys.session(sessionId), 'lastSeq')).toBe(lastSeq);
      expect(await redis.xlen(keys.tape(sessionId))).toBe(Number(lastSeq));
      expect(await redis.hkeys(keys.processes(sessionId))).toEqual([]);
      expect(await redis.get(keys.lease(sessionId))).toBe(`two ${token}`);
      expect(() => one.sessions.get(sessionId)).toThrow(/unknown session/);
    },
  );

  raceIt(
    "fails an approval's answer made after the lease was taken, and never runs its command",
    async () => {
      const { redis, keys, one, sessionId } = await oneSession('answer');
      const dir = mkdtempSync(join(tmpdir(), 'vigil-fenced-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const ran = join(dir, 'ran');
      one.processes.spawn({ sessionId, command: `touch ${ran}`, requireApproval: true });
      const { approvalId } = one.approvals.snapshot(sessionId).head!;
      const token = await redis.incr(keys.fence(sessionId));
      await redis.set(keys.lease(sessionId), `two ${token}`, 'PX', 60_000);
      const closed = nextEvent(one, 'session:closed', (info) => info.sessionId === sessionId);
      expect(() => one.approvals.respond(sessionId, approvalId, 'approve')).toThrow(
        expect.objectContaining({ code: 'ERR_SESSION_OWNED', details: { sessionId, owner: 'two' } }),
      );
      // Dropped here: the answer was never journaled, and the command never started.
      await closed;
      expect(existsSync(ran)).toBe(false);
      const [stored] = Object.values(await redis.hgetall(keys.approvals(sessionId)));
      expect(JSON.parse(stored!)).toMatchObject({ outcome: null, decision: null });
    },
  );

  raceIt(
    'neither delivers nor publishes a notification recorded after the lease was taken from under the session',
    async () => {
      const inbox = new Inbox();
      const { redis, keys, one, sessionId } = await oneSession('taken', { deliver: inbox.deliver });
      const { processId } = one.processes.spawn({
        sessionId,
        command: 'read line; echo "hit $line"; exec sleep 30',
        watch: ['hit'],
      });
      const seen: string[] = [];
      const reading = new AbortController();
      cleanups.push(() => reading.abort());
      const following = (async () => {
        for await (const event of one.tape.subscribe(sessionId, { signal: reading.signal })) {
          seen.push(event.type);
        }
      })().catch((error: unknown) => error);
      // Another instance takes the lease, as after `one` paused past leaseMs; then the match comes.
      const token = await redis.incr(keys.fence(sessionId));
      await redis.set(keys.lease(sessionId), `two ${token}`, 'PX', 60_000);
      const fenced = nextEvent(one, 'session:fenced');
      await one.processes.write(processId, 'go\n');
      const [{ sessionId: dropped }] = await fenced;
      expect(dropped).toBe(sessionId);
      const tape = await redis.xrange(keys.tape(sessionId), '-', '+');
      const types = tape.map(([, [, json]]) => (JSON.parse(json!) as { type: string }).type);
      expect(types).toContain('process.started');
      expect(types).not.toContain('watch.match');
      expect(await redis.hkeys(keys.pending(sessionId))).toEqual([]);
      expect(seen).toContain('process.started');
      expect(seen).not.toContain('watch.match');
      expect(inbox.calls.map(({ type }) => type)).not.toContain('watch_match');
      // Its subscriber is told why nothing more comes, rather than left waiting (the owner is named
      // when the commit found it, not when the lease's renewal did).
      expect(await following).toMatchObject({
        code: 'ERR_SESSION_OWNED',
        details: { sessionId },
      });
      expect(seen).not.toContain('watch.match');
    },
  );

  raceIt(
    'drops a session whose tape in Redis is not where it left it (a lost tail), saying why',
    async () => {
      const { redis, keys, one, sessionId } = await oneSession('gap');
      // Redis lost the tape's tail (an append-only file cut short, a replica promoted late).
      const lastSeq = Number(await redis.hget(keys.session(sessionId), 'lastSeq'));
      await redis.hset(keys.session(sessionId), 'lastSeq', lastSeq - 1);
      await redis.xdel(keys.tape(sessionId), `${lastSeq}-0`);
      const fenced = nextEvent(one, 'session:fenced');
      const failed = nextEvent(one, 'error', (error) => error.code === 'ERR_JOURNAL');
      // Its record commits (no event in that batch); its `process.started` is refused.
      one.processes.spawn({ sessionId, command: 'sleep 30' });
      const [error] = await failed;
      expect(error.message).toContain(`session ${sessionId}`);
      expect(error.details).toEqual({ sessionId, status: `gap:${lastSeq - 1}:${lastSeq + 1}` });
      await fenced;
      expect(() => one.sessions.get(sessionId)).toThrow(/unknown session/);
      expect(await redis.xlen(keys.tape(sessionId))).toBe(lastSeq - 1);
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
