import { spawnSync } from 'node:child_process';
import type { TapeEvent } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import { keys, storeWriter } from './support/cluster-store.js';
import { raceIt } from './support/race.js';
import { startRedis } from './support/redis.js';
import { CLI, type ServeProcess, startServe } from './support/serve-process.js';
import { readSse } from './support/sse-reader.js';

const config = { shutdownTimeoutMs: 3_000, stopTimeoutMs: 500, processes: { killGraceMs: 300 } };

/** A `vigil serve --redis` instance `instanceId` of the cluster on `redis`, sharing `token`. */
function instance(redis: string, instanceId: string, token: string): Promise<ServeProcess> {
  // Commands see which instance runs them.
  return startServe({
    config,
    token,
    cluster: { redis, instanceId },
    env: { VIGIL_INSTANCE_ROLE: instanceId },
  });
}

const TOKEN = 'cluster-test-token-0123456789';

/** A tape event as the store journals it (seq and time are added on append). */
const matchEvent = (n: number): Omit<TapeEvent, 'seq' | 'at'> =>
  ({
    type: 'watch.match',
    processId: 'proc_000000000001',
    data: {
      notificationId: `n${n}`,
      command: 'tail',
      lines: [`line ${n}`],
      pattern: null,
      offset: n,
      suppressed: 0,
      hit: n,
      truncated: false,
    },
  }) as Omit<TapeEvent, 'seq' | 'at'>;

describe('vigil serve --redis: a cluster of instances', () => {
  it('registers the instance with its advertised url and an expiring liveness key', async () => {
    await using redis = await startRedis();
    await using a = await instance(redis.url, 'inst-a', TOKEN);
    await using store = await storeWriter(redis.url);
    const entry = JSON.parse((await store.redis.hget(keys.instances, 'inst-a')) ?? '{}');
    expect(entry).toMatchObject({ url: a.url, pid: a.child.pid });
    const ttl = await store.redis.pttl(keys.instance('inst-a'));
    expect(ttl).toBeGreaterThan(0);
    expect(a.lines.items.some((line) => line.includes('cluster: instance inst-a'))).toBe(true);
  });

  it('reads the events, sessions and approvals of a session another instance serves', async () => {
    await using redis = await startRedis();
    const store = { kind: 'redis', url: redis.url, timeoutMs: 500 } as const;
    await using b = await startServe({
      config: { ...config, store },
      token: TOKEN,
      cluster: { redis: redis.url, instanceId: 'inst-b' },
    });
    await using writer = await storeWriter(redis.url);
    await writer.openSession('remote-1', 'inst-x');
    await writer.append('remote-1', matchEvent(1), matchEvent(2), matchEvent(3));
    const clients = async () =>
      String(await writer.redis.client('LIST'))
        .trim()
        .split('\n').length;
    const baseline = await clients();

    const page = await b.call('GET', '/v1/sessions/remote-1/events?after=1&limit=10');
    expect(page.status).toBe(200);
    expect(page.body.events.map((e: TapeEvent) => e.seq)).toEqual([2, 3]);
    expect(page.body).toMatchObject({ next: 3, lastSeq: 3, firstSeq: 1, hasMore: false, reset: false });
    const ahead = await b.call('GET', '/v1/sessions/remote-1/events?after=9');
    expect(ahead.body.error.code).toBe('ERR_INVALID_CURSOR');

    // A long-poll caught up is woken by the next entry of the stream.
    const waiting = b.call('GET', '/v1/sessions/remote-1/events?after=3&wait=20000');
    await expect.poll(() => b.call('GET', '/v1/stats').then((r) => r.body.http.waiting)).toBe(1);
    await writer.append('remote-1', matchEvent(4));
    expect((await waiting).body.events.map((e: TapeEvent) => e.seq)).toEqual([4]);

    // A quiet one waits its whole time, longer than a Redis command may take (store.timeoutMs).
    const quiet = await b.call('GET', '/v1/sessions/remote-1/events?after=4&wait=1500');
    expect(quiet.status).toBe(200);
    expect(quiet.body.events).toEqual([]);

    const info = await b.call('GET', '/v1/sessions/remote-1');
    expect(info.body).toMatchObject({ sessionId: 'remote-1', state: 'open', lastSeq: 4 });
    const list = await b.call('GET', '/v1/sessions');
    expect(list.body.sessions.map((s: { sessionId: string }) => s.sessionId)).toEqual(['remote-1']);
    const approvals = await b.call('GET', '/v1/sessions/remote-1/approvals');
    expect(approvals.body).toEqual({ sessionId: 'remote-1', head: null, count: 0, version: 0 });
    // The long-poll's own connection is gone with it.
    await expect.poll(clients).toBe(baseline);

    // Redis gone: a typed error naming it, not an empty page.
    await redis.stop();
    const away = await b.call('GET', '/v1/sessions/remote-1/events?after=0');
    expect(away.status).toBe(503);
    expect(away.body.error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(away.body.error.message).toContain(redis.url);
  });

  raceIt(
    'streams a session from one instance, then resumes on another with no gap or duplicate',
    async () => {
      await using redis = await startRedis();
      await using b = await instance(redis.url, 'inst-b', TOKEN);
      await using c = await instance(redis.url, 'inst-c', TOKEN);
      await using store = await storeWriter(redis.url);
      await store.openSession('remote-2', 'inst-x');
      await store.append('remote-2', matchEvent(1), matchEvent(2));
      const clients = async () =>
        String(await store.redis.client('LIST'))
          .trim()
          .split('\n').length;
      const baseline = await clients();

      const onB = await readSse(`${b.url}/v1/stream?sessions=remote-2`, TOKEN);
      await onB.events.next((e) => e.event === 'tape' && e.data.event.seq === 2);
      await store.append('remote-2', matchEvent(3), matchEvent(4));
      await onB.events.next((e) => e.event === 'tape' && e.data.event.seq === 4);
      onB.stop();
      await onB.ended;
      // Appended while no stream was open: the resumed one must send them.
      await store.append('remote-2', matchEvent(5));

      const onC = await readSse(`${c.url}/v1/stream?sessions=remote-2`, TOKEN, onB.lastEventId());
      await onC.events.next((e) => e.event === 'tape' && e.data.event.seq === 5);
      await store.append('remote-2', matchEvent(6), {
        type: 'session.closed',
        data: { reason: 'done', forced: false },
      } as Omit<TapeEvent, 'seq' | 'at'>);
      await onC.events.next((e) => e.event === 'end');
      await onC.ended;

      const seqs = [...onB.events.items, ...onC.events.items]
        .filter((e) => e.event === 'tape')
        .map((e) => e.data.event.seq as number);
      expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7]);
      // Each stream's blocking connection went with it.
      await expect.poll(clients).toBe(baseline);
    },
  );

  raceIt(
    'streams a real session of its owner from two other instances with no gap or duplicate',
    async () => {
      await using redis = await startRedis();
      await using a = await instance(redis.url, 'inst-a', TOKEN);
      await using b = await instance(redis.url, 'inst-b', TOKEN);
      await using c = await instance(redis.url, 'inst-c', TOKEN);
      await a.call('POST', '/v1/sessions', { body: { sessionId: 'live-1' } });
      const run = async (word: string): Promise<string> => {
        const { body } = await a.call('POST', '/v1/sessions/live-1/processes', {
          body: { command: `echo ${word}` },
        });
        await a.call('POST', `/v1/processes/${body.processId}/wait?timeoutMs=20000`);
        return body.processId as string;
      };
      const exited = (processId: string) => (e: { event: string; data: { event: TapeEvent } }) =>
        e.event === 'tape' && e.data.event.type === 'process.exited' && e.data.event.processId === processId;

      const onB = await readSse(`${b.url}/v1/stream?sessions=live-1`, TOKEN);
      await onB.events.next(exited(await run('one')));
      onB.stop();
      await onB.ended;
      await run('two');
      const onC = await readSse(`${c.url}/v1/stream?sessions=live-1`, TOKEN, onB.lastEventId());
      await onC.events.next(exited(await run('three')));
      await a.call('DELETE', '/v1/sessions/live-1');
      await onC.events.next((e) => e.event === 'end');

      const seqs = [...onB.events.items, ...onC.events.items]
        .filter((e) => e.event === 'tape')
        .map((e) => e.data.event.seq as number);
      const { lastSeq } = (await a.call('GET', '/v1/sessions/live-1')).body;
      expect(seqs).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
    },
  );

  raceIt('runs a spawn sent to another instance on the session owner', async () => {
    await using redis = await startRedis();
    await using a = await instance(redis.url, 'inst-a', TOKEN);
    await using b = await instance(redis.url, 'inst-b', TOKEN);
    await a.call('POST', '/v1/sessions', { body: { sessionId: 'owned-1' } });

    const spawned = await b.call('POST', '/v1/sessions/owned-1/processes', {
      body: { command: 'echo "ran on $VIGIL_INSTANCE_ROLE"' },
    });
    expect(spawned.status).toBe(201);
    const processId = spawned.body.processId as string;
    // The process is A's: A knows it and its output; B has no such process of its own.
    const done = await a.call('POST', `/v1/processes/${processId}/wait?timeoutMs=20000`);
    expect(done.body.process.state).toBe('exited');
    expect((await a.call('GET', `/v1/processes/${processId}/poll`)).body.tail).toContain('ran on inst-a');
    // Process routes on B go to A too: its spool is there.
    expect((await b.call('GET', `/v1/processes/${processId}/poll`)).body.tail).toContain('ran on inst-a');
  });

  raceIt('writes to and kills a process of another instance through it', async () => {
    await using redis = await startRedis();
    await using a = await instance(redis.url, 'inst-a', TOKEN);
    await using b = await instance(redis.url, 'inst-b', TOKEN);
    await a.call('POST', '/v1/sessions', { body: { sessionId: 'owned-3' } });
    const spawned = await b.call('POST', '/v1/sessions/owned-3/processes', { body: { command: 'cat' } });
    const processId = spawned.body.processId as string;

    const written = await b.call('POST', `/v1/processes/${processId}/write`, { body: { data: 'via-b\n' } });
    expect(written.body).toEqual({ processId, bytes: 6, eof: false });
    await a.outputOf(processId, 'via-b');
    const killed = await b.call('POST', `/v1/processes/${processId}/kill`, { body: { signal: 'SIGTERM' } });
    expect(killed.status).toBe(200);
    const done = await a.call('POST', `/v1/processes/${processId}/wait?timeoutMs=20000`);
    expect(done.body.process.state).toBe('killed');
    const gone = await b.call('GET', '/v1/processes/proc_000000000000');
    expect(gone.body.error.code).toBe('ERR_UNKNOWN_PROCESS');
    // Closed on its owner: the session is closed for every instance.
    expect((await b.call('DELETE', '/v1/sessions/owned-3')).status).toBe(200);
    const late = await b.call('POST', '/v1/sessions/owned-3/processes', { body: { command: 'true' } });
    expect(late.body.error.code).toBe('ERR_SESSION_CLOSED');
  });

  raceIt('runs the command of an approval answered on another instance on the owner', async () => {
    await using redis = await startRedis();
    await using a = await instance(redis.url, 'inst-a', TOKEN);
    await using b = await instance(redis.url, 'inst-b', TOKEN);
    await a.call('POST', '/v1/sessions', { body: { sessionId: 'owned-2' } });
    const spawned = await a.call('POST', '/v1/sessions/owned-2/processes', {
      body: { command: 'echo approved-here', requireApproval: true },
    });
    expect(spawned.body.state).toBe('pending_approval');
    const { approvalId } = spawned.body;
    // B reads A's session from the store: the approval, the process, the session.
    const snapshot = await b.call('GET', '/v1/sessions/owned-2/approvals');
    expect(snapshot.body).toMatchObject({ sessionId: 'owned-2', count: 1, head: { approvalId } });
    const listed = await b.call('GET', '/v1/sessions/owned-2/processes');
    expect(listed.body.processes).toMatchObject([
      { processId: spawned.body.processId, state: 'pending_approval' },
    ]);
    expect((await b.call('GET', '/v1/sessions/owned-2')).body).toMatchObject({
      state: 'open',
      activeProcesses: 1,
    });

    const answer = await b.call('POST', `/v1/sessions/owned-2/approvals/${approvalId}`, {
      body: { decision: 'approve' },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ approvalId });
    const processId = spawned.body.processId as string;
    const done = await a.call('POST', `/v1/processes/${processId}/wait?timeoutMs=20000`);
    expect(done.body.process.state).toBe('exited');
    expect((await a.call('GET', `/v1/processes/${processId}/poll`)).body.tail).toContain('approved-here');
  });

  raceIt(
    'takes over the sessions of a SIGKILLed instance, delivers their completions and ends its commands lost',
    async () => {
      await using redis = await startRedis();
      const store = { kind: 'redis', url: redis.url, leaseMs: 1_000 } as const;
      const member = (instanceId: string) =>
        startServe({ config: { ...config, store }, token: TOKEN, cluster: { redis: redis.url, instanceId } });
      await using a = await member('inst-a');
      await using b = await member('inst-b');
      const { processId } = await a.spawn('sleep 30');
      // A client of B streams the session while A serves it, and on through the takeover.
      const onB = await readSse(`${b.url}/v1/stream?sessions=stop-1`, TOKEN);

      a.child.kill('SIGKILL');
      await a.exited;
      // B's failover takes the session once A's lease expired, and opens it with its deliver.
      await b.lines.next((line) => line.startsWith('[stop-1] taken over'));
      const completion = await b.lines.next(
        (line) => line.startsWith('[stop-1]') && line.includes(processId),
      );
      expect(completion).toContain('inst-a');
      const process = await b.call('GET', `/v1/processes/${processId}`);
      expect(process.body).toMatchObject({ state: 'lost', sessionId: 'stop-1' });
      expect(process.body.reason).toContain('inst-a');
      const session = await b.call('GET', '/v1/sessions/stop-1');
      expect(session.body.poller.threadId).not.toBe(-1);
      expect(session.body.outboxDepth).toBe(0);
      const exited = await onB.events.next(
        (e) =>
          e.event === 'tape' &&
          e.data.event.type === 'process.exited' &&
          e.data.event.processId === processId,
      );
      expect(exited.data.event.data.state).toBe('lost');
      onB.stop();
      await onB.ended;
      const seqs = onB.events.items.filter((e) => e.event === 'tape').map((e) => e.data.event.seq as number);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    },
  );

  it('refuses an operation whose owner is gone or unreachable with ERR_SESSION_OWNED naming it', async () => {
    await using redis = await startRedis();
    await using b = await instance(redis.url, 'inst-b', TOKEN);
    await using store = await storeWriter(redis.url);
    await store.openSession('lost-1', 'ghost');
    await store.instance('ghost', 'http://127.0.0.1:9', false);
    const gone = await b.call('POST', '/v1/sessions/lost-1/processes', { body: { command: 'true' } });
    expect(gone.status).toBe(409);
    expect(gone.body.error).toMatchObject({ code: 'ERR_SESSION_OWNED', details: { owner: 'ghost' } });
    expect(gone.body.error.message).toMatch(/ghost.*gone/);

    await store.instance('ghost', 'http://127.0.0.1:9', true);
    const unreachable = await b.call('POST', '/v1/sessions/lost-1/processes', { body: { command: 'true' } });
    expect(unreachable.body.error.code).toBe('ERR_SESSION_OWNED');
    expect(unreachable.body.error.message).toMatch(/ghost \(http:\/\/127\.0\.0\.1:9\).*cannot be reached/);
  });

  it('exits non-zero naming the flag or the URL when Redis is unusable at start', () => {
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, VIGIL_TOKEN: TOKEN, ...env },
      });
    const unreachable = run(['--redis', 'redis://127.0.0.1:9/0']);
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toContain('redis://127.0.0.1:9/0');
    expect(unreachable.stderr).toContain('unavailable');
    const notRedis = run(['--redis', 'http://127.0.0.1:9']);
    expect(notRedis.stderr).toContain('--redis: must be a redis://');
    const badEnv = run([], { VIGIL_REDIS_URL: 'nope' });
    expect(badEnv.stderr).toContain('VIGIL_REDIS_URL: must be a redis://');
    const badId = run(['--redis', 'redis://127.0.0.1:9', '--instance-id', 'a b']);
    expect(badId.stderr).toContain('--instance-id: must be');
  });
});
