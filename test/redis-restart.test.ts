// Vigil on Redis across process deaths: a SIGKILLed vigil restarted on the same stateDir (the same
// instance) delivers exactly what was not acknowledged; another instance takes over a gone one's
// session and ends its commands lost; two instances racing for a session never both own it; Redis
// itself SIGKILLed mid-stream turns operations into typed errors and loses nothing acknowledged.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVigil, type ProcessInfo, type SessionInfo, type VigilError } from '@vigil/core';
import { redisKeys } from '@vigil/core/redis';
import { afterEach, describe, expect } from 'vitest';
import { nextEvent } from './support/fixtures.js';
import {
  type Delivery,
  deliversTheOtherSeven,
  JournalChild,
  killedAfterThreeOfTen,
  runInTurn,
} from './support/journal-child.js';
import { Inbox, newSessionId } from './support/processes.js';
import { raceIt } from './support/race.js';
import { type RedisServer, redisFixture } from './support/redis.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-redis-restart-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const fixture = redisFixture(cleanups);

const keys = redisKeys('vigil:');

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

const optionsOf = (server: RedisServer, dir: string) => ({
  stateDir: dir,
  store: { kind: 'redis' as const, url: server.url },
  processes: { spawner: 'direct' as const },
});

describe('a vigil on Redis, SIGKILLed', () => {
  raceIt(
    'restarted on the same stateDir delivers exactly the unacknowledged completions, once each and in order',
    async () => {
      const server = await fixture.server();
      const dir = stateDir();
      const ids = await killedAfterThreeOfTen(optionsOf(server, dir));
      // The same instance (its id is kept in the stateDir) takes its lease back at once.
      await using second = await JournalChild.start(optionsOf(server, dir));
      // Restored at start, before anyone opens it again.
      expect(await second.call<SessionInfo>('session', { sessionId: 'agent' })).toMatchObject({
        state: 'open',
      });
      await deliversTheOtherSeven(second, ids);
    },
  );

  raceIt(
    'is taken over by another instance once its lease is gone: its command ends lost, saying its instance is gone',
    async () => {
      const server = await fixture.server();
      const redis = fixture.client(server);
      const dir = stateDir();
      const processId = await (async () => {
        await using first = await JournalChild.start(optionsOf(server, dir));
        await first.call('open', { sessionId: 'agent' });
        const info = await first.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command: 'sleep 30' },
        });
        const { pid } = await first.call<ProcessInfo>('get', { processId: info.processId });
        // It outlives its vigil (nothing follows it any more): the test ends it.
        if (pid !== null) cleanups.push(() => killGroup(pid));
        await first.kill();
        return info.processId;
      })();
      const gone = readFileSync(join(dir, 'instance-id'), 'utf8').trim();
      await using second = await JournalChild.start(optionsOf(server, stateDir()));
      // Held until it expires: opening it elsewhere is refused, naming the instance.
      await expect(second.call('open', { sessionId: 'agent' })).rejects.toMatchObject({
        code: 'ERR_SESSION_OWNED',
        message: expect.stringContaining(gone) as unknown,
      });
      // Its expiry (leaseMs after the SIGKILL), at once.
      await redis.del(keys.lease('agent'));
      await second.call('open', { sessionId: 'agent' });
      await second.deliveredCount(1);
      const [{ notification }] = second.deliveries as [Delivery];
      expect(notification).toMatchObject({
        id: `${processId}:completion`,
        data: { state: 'lost', reason: `its instance ${gone} is gone` },
      });
      const process = await second.call<ProcessInfo>('get', { processId });
      expect(process.state).toBe('lost');
      expect(await redis.get(keys.lease('agent'))).toMatch(/^vigil-\w+\/[0-9a-f]+ \d+$/);
      expect(await redis.get(keys.lease('agent'))).not.toContain(gone);
    },
  );
});

describe('a vigil on Redis restarted on its stateDir', () => {
  raceIt(
    're-adopts its own running command (the same instance): kill ends it, its completion arrives',
    async () => {
      const server = await fixture.server();
      const dir = stateDir();
      // The spawner helper records the exit status: a command of the same instance can be adopted.
      const options = { stateDir: dir, store: { kind: 'redis' as const, url: server.url } };
      const { processId, pid } = await (async () => {
        await using first = await JournalChild.start(options);
        await first.call('open', { sessionId: 'agent' });
        const info = await first.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command: 'sleep 600 & echo mark-ready; wait', watch: ['mark'] },
        });
        await first.call('tapeEvent', { sessionId: 'agent', type: 'notification.delivered' });
        const started = await first.call<ProcessInfo>('get', { processId: info.processId });
        await first.kill();
        return { processId: info.processId, pid: started.pid! };
      })();
      cleanups.push(() => killGroup(pid));
      await using second = await JournalChild.start(options);
      await second.call('open', { sessionId: 'agent' });
      expect(await second.call<ProcessInfo>('get', { processId })).toMatchObject({ state: 'running', pid });
      expect(await second.call<ProcessInfo>('kill', { processId })).toMatchObject({ state: 'killed' });
      await second.deliveredCount(1);
      expect(second.deliveries[0]?.notification).toMatchObject({
        type: 'completion',
        processId,
        data: { state: 'killed' },
      });
    },
  );
});

describe('failover: the owner SIGKILLed', () => {
  raceIt(
    'another instance takes its session once the lease expired: delivers the unacknowledged once and in order, ends its command lost',
    async () => {
      const server = await fixture.server();
      const options = (dir: string) => ({
        ...optionsOf(server, dir),
        store: { kind: 'redis' as const, url: server.url, leaseMs: 1_500 },
      });
      const survivor = createVigil(options(stateDir()));
      cleanups.push(() => survivor.close());
      const restored = nextEvent(survivor, 'session:restored');
      const dir = stateDir();
      const { ids, sleeper } = await (async () => {
        await using owner = await JournalChild.start(options(dir));
        await owner.call('open', { sessionId: 'agent', ackFirst: 3 });
        const ids = await runInTurn(
          owner,
          'agent',
          Array.from({ length: 6 }, (_, i) => `exit ${i}`),
        );
        await owner.deliveredCount(4);
        const sleeper = await owner.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command: 'sleep 30' },
        });
        const { pid } = await owner.call<ProcessInfo>('get', { processId: sleeper.processId });
        if (pid !== null) cleanups.push(() => killGroup(pid));
        await owner.kill();
        return { ids, sleeper: sleeper.processId };
      })();
      const gone = readFileSync(join(dir, 'instance-id'), 'utf8').trim();
      const [{ sessionId }] = await restored;
      expect(sessionId).toBe('agent');
      const inbox = new Inbox();
      await survivor.sessions.open('agent', { deliver: inbox.deliver });
      const lost = await inbox.of(sleeper, 'completion');
      expect(lost.data).toMatchObject({ state: 'lost', reason: `its instance ${gone} is gone` });
      const completions = inbox.acked.filter(({ type }) => type === 'completion').map(({ id }) => id);
      expect(completions).toEqual([...ids.slice(3), sleeper].map((id) => `${id}:completion`));
      expect(survivor.processes.get(sleeper).state).toBe('lost');
    },
  );
});

describe('two vigil instances on one Redis', () => {
  raceIt('racing to open the same sessions never both own one', async () => {
    const server = await fixture.server();
    await using one = await JournalChild.start(optionsOf(server, stateDir()));
    await using two = await JournalChild.start(optionsOf(server, stateDir()));
    const winners: string[] = [];
    for (let round = 0; round < 25; round++) {
      const sessionId = newSessionId('race');
      const results = await Promise.allSettled([
        one.call('open', { sessionId }),
        two.call('open', { sessionId }),
      ]);
      const opened = results.filter((result) => result.status === 'fulfilled');
      expect(opened).toHaveLength(1);
      const refused = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
      expect((refused.reason as VigilError).code).toBe('ERR_SESSION_OWNED');
      winners.push(results[0]!.status === 'fulfilled' ? 'one' : 'two');
      // The loser does not serve it: it does not know the session.
      const loser = results[0]!.status === 'fulfilled' ? two : one;
      await expect(loser.call('session', { sessionId })).rejects.toMatchObject({
        code: 'ERR_UNKNOWN_SESSION',
      });
    }
    expect(winners).toHaveLength(25);
  });
});

describe('Redis SIGKILLed and restarted mid-stream', () => {
  raceIt(
    'operations fail with ERR_STORE_UNAVAILABLE while it is down, nothing acknowledged is lost, delivery goes on',
    async () => {
      const server = await fixture.server({ persist: true });
      const redis = fixture.client(server);
      const dir = stateDir();
      const vigil = createVigil(optionsOf(server, dir));
      cleanups.push(() => vigil.close());
      const inbox = new Inbox();
      const sessionId = newSessionId('outage');
      await vigil.sessions.open(sessionId, { deliver: inbox.deliver });
      const before: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { processId } = vigil.processes.spawn({ sessionId, command: `exit ${i}` });
        await inbox.of(processId, 'completion');
        before.push(processId);
      }
      const go = join(dir, 'go');
      const waiter = vigil.processes.spawn({
        sessionId,
        command: `while [ ! -f ${go} ]; do sleep 0.02; done; exit 7`,
      });
      await server.stop('SIGKILL');
      let refused: VigilError | undefined;
      try {
        vigil.processes.spawn({ sessionId, command: 'exit 9' });
      } catch (error) {
        refused = error as VigilError;
      }
      expect(refused?.code).toBe('ERR_STORE_UNAVAILABLE');
      expect(refused?.message).toContain(`127.0.0.1:${server.port}`);
      // The waiter ends while Redis is down: its exit cannot be written, so nobody hears of it yet.
      const failed = nextEvent(vigil, 'error', (error) => error.code === 'ERR_STORE_UNAVAILABLE');
      writeFileSync(go, '');
      await failed;
      expect(inbox.ackedFor(waiter.processId)).toEqual([]);
      await server.restart();
      const late = await inbox.of(waiter.processId, 'completion');
      expect(late.data).toMatchObject({ exitCode: 7 });
      const { processId: after } = vigil.processes.spawn({ sessionId, command: 'exit 8' });
      await inbox.of(after, 'completion');
      const completions = inbox.acked.filter(({ type }) => type === 'completion').map(({ id }) => id);
      expect(completions).toEqual([...before, waiter.processId, after].map((id) => `${id}:completion`));
      // The tape in Redis is gapless, and has what was acknowledged before the crash.
      const tape = await redis.xrange(keys.tape(sessionId), '-', '+');
      const seqs = tape.map(([id]) => Number(id.split('-')[0]));
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
      const delivered = await redis.zrange(keys.delivered(sessionId), 0, -1);
      for (const id of before) expect(delivered).toContain(`${id}:completion`);
      expect(existsSync(go)).toBe(true);
    },
  );
});
