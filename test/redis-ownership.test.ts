// Who serves a session on Redis, when things go wrong: a claim whose read fails gives its lease
// back, a Redis outage longer than leaseMs does not hand live instances' sessions to another, a
// second live process with the same instance id takes nothing of the first (and a second vigil on
// one stateDir is refused), and the end of the store's thread fences its sessions instead of hanging.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createVigil, type VigilError } from '@vigil/core';
import { leaseHolder, type RedisStore, redisKeys } from '@vigil/core/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { COMMIT } from '../packages/core/src/store/redis-scripts.js';
import { runNodeScript } from './support/fixtures.js';
import { raceIt } from './support/race.js';
import { eventOf, putOpen, type RedisServer, redisFixture } from './support/redis.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const fixture = redisFixture(cleanups);
const keys = redisKeys('vigil:');

const errors: VigilError[] = [];
function store(
  server: RedisServer,
  instanceId: string,
  options: { leaseMs?: number; stateDir?: string } = {},
) {
  return fixture.store(server, instanceId, errors, options);
}

/** Opens `sessionId` on `target` with its first event, committed. */
function openWithEvent(target: RedisStore, sessionId: string): void {
  target.claim(sessionId);
  putOpen(target, sessionId);
  target.appendEvent(sessionId, eventOf(1));
  target.commitNow();
}

function stateDir(): string {
  return mkdtempSync(join(tmpdir(), 'vigil-redis-ownership-'));
}

describe('a claim whose read fails', () => {
  it('gives the lease back at once: nobody is left holding a session nobody serves', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
    // A gone instance left `s` open; its tape is unreadable (not a stream).
    await redis
      .multi()
      .hset(keys.session('s'), { state: 'open', openedAt: 1, approvalVersion: 0, lastSeq: 1, owner: 'gone' })
      .sadd(keys.sessions, 's')
      .set(keys.tape('s'), 'not a stream')
      .exec();
    const target = store(server, 'a');
    expect(() => target.claim('s')).toThrow(expect.objectContaining({ code: 'ERR_JOURNAL' }) as never);
    expect(await redis.get(keys.lease('s'))).toBeNull();
    // Once readable, the next claim takes it and restores it.
    await redis.del(keys.tape('s'));
    await redis.xadd(keys.tape('s'), '1-0', 'e', JSON.stringify(eventOf(1)));
    expect(target.claim('s')?.lastSeq).toBe(1);
    expect(leaseHolder(await redis.get(keys.lease('s')))).toBe('a');
  });
});

describe('a Redis outage longer than leaseMs', () => {
  raceIt(
    'leaves every session with its live owner: the other instance waits for the owners to renew before it takes any',
    async () => {
      const server = await fixture.server({ persist: true });
      const redis = fixture.client(server);
      // The owner renews every 500 ms, the other scans every 150 ms: the other would be first.
      const leaseMs = 1_500;
      const owner = store(server, 'owner', { leaseMs });
      const other = store(server, 'other', { leaseMs: 300 });
      owner.restore();
      other.restore();
      const fenced: string[] = [];
      const taken: string[] = [];
      owner.onFenced((sessionId) => fenced.push(sessionId));
      other.onTaken((session) => taken.push(session.record.sessionId));
      const sessions = Array.from({ length: 10 }, (_, i) => `s${i}`);
      for (const sessionId of sessions) openWithEvent(owner, sessionId);
      await server.stop('SIGKILL');
      // The outage outlasts every lease (they expire while Redis is away).
      await delay(leaseMs + 500);
      await server.restart();
      // The other instance's first scan after it reconnected.
      await new Promise<void>((resolve) => other.onScanned(resolve));
      expect({ fenced, taken }).toEqual({ fenced: [], taken: [] });
      for (const sessionId of sessions)
        expect(leaseHolder(await redis.get(keys.lease(sessionId)))).toBe('owner');
      // The owner goes on writing them.
      owner.appendEvent('s0', eventOf(2));
      owner.commitNow();
      expect(await redis.hget(keys.session('s0'), 'lastSeq')).toBe('2');
    },
    30_000,
  );
});

describe('two live processes with the same instance id', () => {
  raceIt('the second takes none of the first one’s sessions while its leases live', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
    const first = store(server, 'same');
    const fenced: string[] = [];
    first.onFenced((sessionId) => fenced.push(sessionId));
    openWithEvent(first, 's1');
    const second = store(server, 'same');
    expect(second.restore()).toEqual([]);
    expect(() => second.claim('s1')).toThrow(expect.objectContaining({ code: 'ERR_SESSION_OWNED' }) as never);
    // The first still writes it.
    first.appendEvent('s1', eventOf(2));
    first.commitNow();
    expect(await redis.hget(keys.session('s1'), 'lastSeq')).toBe('2');
    expect(fenced).toEqual([]);
  });

  it('a second vigil on the same stateDir fails with ERR_STATE_LOCKED naming the holder', async () => {
    const server = await fixture.server();
    const dir = stateDir();
    const options = { stateDir: dir, store: { kind: 'redis' as const, url: server.url } };
    const first = createVigil(options);
    cleanups.push(() => first.close());
    let thrown: VigilError | undefined;
    try {
      createVigil(options);
    } catch (error) {
      thrown = error as VigilError;
    }
    expect(thrown).toMatchObject({ code: 'ERR_STATE_LOCKED', details: { pid: process.pid } });
    expect(thrown?.message).toContain(dir);
    await first.close();
    // Free once the first closed.
    const again = createVigil(options);
    await again.close();
  });

  it('the next process on the same stateDir takes back the leases the last one kept, at once', async () => {
    const server = await fixture.server();
    const dir = stateDir();
    const first = store(server, 'kept', { stateDir: dir });
    openWithEvent(first, 's1');
    // A restart-safe stop keeps the leases (as a SIGKILL does).
    first.freeze();
    first.close();
    const [restored] = store(server, 'kept', { stateDir: dir }).restore();
    expect(restored?.lastSeq).toBe(1);
  });
});

describe('a commit', () => {
  it('keeps the lease when an argument, not an op, is the delete letter', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
    const target = store(server, 'a');
    openWithEvent(target, 's');
    target.putNotification({ id: 'Z', sessionId: 's', seq: 1 } as never);
    target.commitNow();
    target.appendEvent('s', eventOf(2));
    target.commitNow();
    expect(await redis.hget(keys.session('s'), 'lastSeq')).toBe('2');
    expect(await redis.hkeys(keys.pending('s'))).toEqual(['Z']);
  });

  it('never applies a stale copy of an older batch again (batch numbers rise)', async () => {
    const server = await fixture.server();
    const redis = fixture.client(server);
    const target = store(server, 'a');
    openWithEvent(target, 's');
    target.appendEvent('s', eventOf(2));
    target.commitNow();
    const [lease, batch] = await Promise.all([
      redis.get(keys.lease('s')),
      redis.hget(keys.session('s'), 'batch'),
    ]);
    const [holder, token] = lease!.split(' ');
    const [, process, number] = /^(.*):(\d+)$/.exec(batch!)!;
    // The first batch again, as a delayed copy would come: its event 3 is valid, and still not applied.
    const older = `${process}:${Number(number) - 1}`;
    const reply = await redis.eval(
      COMMIT,
      0,
      'vigil:',
      holder!,
      older,
      10_000,
      1,
      's',
      token!,
      3,
      'E',
      3,
      '{}',
    );
    expect(reply).toEqual(['s', 'applied']);
    expect(await redis.hget(keys.session('s'), 'lastSeq')).toBe('2');
  });
});

describe("the store's thread ending", () => {
  raceIt(
    'fails what waits with ERR_STORE_UNAVAILABLE, fences every held session, and never hangs',
    async () => {
      const server = await fixture.server();
      // In a process of its own: it ends the store's thread as a crash would.
      const script = `
      import wt from 'node:worker_threads';
      import { syncBuiltinESMExports } from 'node:module';
      const workers = [];
      const Original = wt.Worker;
      wt.Worker = class extends Original { constructor(...args) { super(...args); workers.push(this); } };
      syncBuiltinESMExports();
      const { RedisStore } = await import('@vigil/core/redis');
      const errors = [];
      const store = new RedisStore({ url: ${JSON.stringify(server.url)}, prefix: 'vigil:', leaseMs: 10000,
        timeoutMs: 60000, instanceId: 'a', onError: (error) => errors.push(error.code) });
      const fenced = [];
      store.onFenced((sessionId) => fenced.push(sessionId));
      for (const sessionId of ['s1', 's2']) {
        store.claim(sessionId);
        store.putSession({ sessionId, state: 'open', openedAt: 1, closedAt: null, closeReason: null, approvalVersion: 0 });
      }
      store.commitNow();
      let ran = false;
      store.putSession({ sessionId: 's1', state: 'open', openedAt: 2, closedAt: null, closeReason: null, approvalVersion: 0 });
      store.afterCommit(() => { ran = true; });
      const exited = new Promise((resolve) => workers[0].once('exit', resolve));
      await workers[0].terminate();
      await exited;
      // Nothing commits any more: a callback waiting for a commit never runs.
      store.afterCommit(() => { ran = true; });
      let commitNow;
      try { store.commitNow(); commitNow = 'returned'; } catch (error) { commitNow = error.code; }
      store.close();
      console.log(JSON.stringify({ fenced: fenced.sort(), ran, commitNow, errors: [...new Set(errors)] }));
    `;
      const { code, out } = await runNodeScript(script);
      expect(code).toBe(0);
      expect(JSON.parse(out)).toEqual({
        fenced: ['s1', 's2'],
        ran: false,
        commitNow: 'ERR_STORE_UNAVAILABLE',
        errors: ['ERR_STORE_UNAVAILABLE'],
      });
    },
  );
});
