import { existsSync } from 'node:fs';
import { processName, type SpawnInput, type Vigil } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import { nextEvent } from './support/fixtures.js';
import { HOSTS, Inbox, newSessionId, readTape, tapeUntil } from './support/processes.js';
import { raceIt } from './support/race.js';

const host = HOSTS[0]!;

async function openSession(vigil: Vigil): Promise<{ sid: string; inbox: Inbox }> {
  const inbox = new Inbox();
  const sid = newSessionId('controls');
  await vigil.sessions.open(sid, { deliver: inbox.deliver });
  return { sid, inbox };
}

/** Spawns and resolves once the process ended (without reading its exit, which would consume it). */
async function runToEnd(vigil: Vigil, input: SpawnInput): Promise<string> {
  let processId = '';
  const exited = nextEvent(vigil, 'process:exited', (info) => info.processId === processId);
  processId = vigil.processes.spawn(input).processId;
  await exited;
  return processId;
}

/**
 * Resolves once every completion a process ended before now could cause was delivered: the
 * completion of a process spawned after them, delivered in tape order after any of theirs.
 */
async function barrier(vigil: Vigil, sid: string, inbox: Inbox): Promise<void> {
  const processId = await runToEnd(vigil, { sessionId: sid, command: 'echo barrier' });
  await inbox.of(processId, 'completion');
}

/** A session whose first delivery is held until `release()`: what comes after it waits undelivered. */
async function heldSession(vigil: Vigil) {
  const inbox = new Inbox();
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const sid = newSessionId('held');
  await vigil.sessions.open(sid, {
    deliver: async (notification) => {
      const first = inbox.calls.length === 0;
      await inbox.deliver(notification);
      if (first) await held;
    },
  });
  return { sid, inbox, release };
}

describe('processName', () => {
  it('names a command by its verb and first target', () => {
    expect(processName('npm test')).toBe('npm test');
    expect(processName('make build -j8')).toBe('make build');
    expect(processName('tail -f /var/log/app.log')).toBe('tail app.log');
    expect(processName('python3 -u train.py --epochs 3')).toBe('python3 train.py');
    expect(processName('cd web && CI=1 npm run build')).toBe('npm run');
    expect(processName('sudo ./scripts/deploy.sh prod')).toBe('deploy.sh prod');
    expect(processName(['node', '/srv/app/server.js'])).toBe('node server.js');
    expect(processName('sleep 30; echo done')).toBe('sleep 30');
    expect(processName(`echo ${'x'.repeat(100)}`)).toHaveLength(48);
  });
});

describe('completion policy (notifyOnComplete, notifyOnEmptySuccess)', () => {
  raceIt(
    'onFailure notifies a failure and a kill, not a success; never and false notify nothing',
    async () => {
      await using vigil = host.make();
      const { sid, inbox } = await openSession(vigil);
      const onFailure = { sessionId: sid, notifyOnComplete: 'onFailure' as const };
      const success = await runToEnd(vigil, { ...onFailure, command: 'echo fine' });
      const failure = await runToEnd(vigil, { ...onFailure, command: 'echo broken; exit 2' });
      const never = await runToEnd(vigil, { sessionId: sid, command: 'exit 3', notifyOnComplete: 'never' });
      const off = await runToEnd(vigil, { sessionId: sid, command: 'exit 4', notifyOnComplete: false });
      const killed = vigil.processes.spawn({ ...onFailure, command: 'sleep 30' }).processId;
      await vigil.processes.kill(killed);
      await barrier(vigil, sid, inbox);
      expect(inbox.ackedFor(success)).toEqual([]);
      expect(inbox.ackedFor(never)).toEqual([]);
      expect(inbox.ackedFor(off)).toEqual([]);
      expect(inbox.ackedFor(failure, 'completion').map((n) => n.data.exitCode)).toEqual([2]);
      expect(inbox.ackedFor(killed, 'completion').map((n) => n.data.state)).toEqual(['killed']);
      expect(vigil.processes.get(success).notifyOnComplete).toBe('onFailure');
      expect(vigil.processes.get(off).notifyOnComplete).toBe('never');
    },
  );

  raceIt('notifyOnEmptySuccess: false skips a successful run that printed nothing, only that', async () => {
    await using vigil = host.make();
    const { sid, inbox } = await openSession(vigil);
    const quiet = { sessionId: sid, notifyOnEmptySuccess: false };
    const silent = await runToEnd(vigil, { ...quiet, command: 'true' });
    const spoke = await runToEnd(vigil, { ...quiet, command: 'echo done' });
    const silentFailure = await runToEnd(vigil, { ...quiet, command: 'exit 1' });
    const silentDefault = await runToEnd(vigil, { sessionId: sid, command: 'true' });
    await barrier(vigil, sid, inbox);
    expect(inbox.ackedFor(silent)).toEqual([]);
    expect(inbox.ackedFor(spoke, 'completion')).toHaveLength(1);
    expect(inbox.ackedFor(silentFailure, 'completion')).toHaveLength(1);
    expect(inbox.ackedFor(silentDefault, 'completion')).toHaveLength(1);
    expect(vigil.processes.get(silent)).toMatchObject({ notifyOnEmptySuccess: false, name: 'true' });
  });

  it('rejects a policy it does not know, naming the field', async () => {
    await using vigil = host.make();
    const { sid } = await openSession(vigil);
    const bad = { sessionId: sid, command: 'true', notifyOnComplete: 'sometimes' } as unknown as SpawnInput;
    expect(() => vigil.processes.spawn(bad)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_INPUT',
        message: expect.stringContaining('notifyOnComplete'),
      }),
    );
  });
});

describe('kill with consumeCompletion', () => {
  raceIt(
    'consumes the completion of a process killed by a caller that asked to, and only of that one',
    async () => {
      await using vigil = host.make();
      const { sid, inbox } = await openSession(vigil);
      const consumed = vigil.processes.spawn({
        sessionId: sid,
        command: 'sleep 30',
        watch: ['never printed'],
      });
      const notified = vigil.processes.spawn({ sessionId: sid, command: 'sleep 30' });
      const result = await vigil.processes.kill(consumed.processId, { consumeCompletion: true });
      expect(result).toMatchObject({ state: 'killed', signal: 'SIGTERM', completionConsumed: true });
      await vigil.processes.kill(notified.processId);
      await inbox.of(notified.processId, 'completion');
      expect(inbox.ackedFor(consumed.processId)).toEqual([]);
      const exits = (await readTape(vigil, sid)).filter((event) => event.type === 'process.exited');
      expect(exits.map((event) => event.processId)).toEqual([consumed.processId, notified.processId]);
    },
  );

  raceIt('withdraws the undelivered completion of a process that already ended', async () => {
    await using vigil = host.make();
    // The first completion's delivery hangs until released: the second one waits behind it.
    const { sid, inbox, release } = await heldSession(vigil);
    const first = await runToEnd(vigil, { sessionId: sid, command: 'echo first' });
    const second = await runToEnd(vigil, { sessionId: sid, command: 'echo second' });
    await vigil.processes.kill(second, { consumeCompletion: true });
    release();
    await barrier(vigil, sid, inbox);
    expect(inbox.calls.map((n) => n.processId)).not.toContain(second);
    expect(inbox.calls[0]?.processId).toBe(first);
    const withdrawn = (await readTape(vigil, sid)).flatMap((event) =>
      event.type === 'notification.withdrawn' ? [event.data.processId] : [],
    );
    expect(withdrawn).toEqual([second]);
  });

  it('rejects a consumeCompletion that is not a boolean, naming it', async () => {
    await using vigil = host.make();
    const { sid } = await openSession(vigil);
    const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'sleep 30' });
    await expect(
      vigil.processes.kill(processId, { consumeCompletion: 'yes' } as unknown as {
        consumeCompletion: boolean;
      }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      message: expect.stringContaining('consumeCompletion'),
    });
    await vigil.processes.kill(processId);
  });
});

describe('processes.remove', () => {
  raceIt('removes a process that ended, with its spool, and refuses one that runs', async () => {
    await using vigil = host.make();
    const { sid } = await openSession(vigil);
    const running = vigil.processes.spawn({ sessionId: sid, command: 'sleep 30' });
    expect(() => vigil.processes.remove(running.processId)).toThrow(
      expect.objectContaining({
        code: 'ERR_PROCESS_RUNNING',
        message: expect.stringContaining('kill it first'),
      }),
    );
    const ended = await runToEnd(vigil, { sessionId: sid, command: 'echo gone' });
    const { outputPath } = vigil.processes.get(ended);
    expect(existsSync(outputPath)).toBe(true);
    expect(vigil.processes.remove(ended)).toMatchObject({ processId: ended, state: 'exited' });
    expect(vigil.processes.list({ sessionId: sid }).map((p) => p.processId)).toEqual([running.processId]);
    expect(() => vigil.processes.get(ended)).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_PROCESS' }),
    );
    expect(existsSync(outputPath)).toBe(false);
    expect(() => vigil.processes.remove(ended)).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_PROCESS' }),
    );
    await vigil.processes.kill(running.processId);
  });
});

describe('supersession (replaces, key)', () => {
  raceIt(
    'replaces kills the older run that still goes; neither its match nor its completion is delivered',
    async () => {
      await using vigil = host.make();
      const { sid, inbox, release } = await heldSession(vigil);
      await runToEnd(vigil, { sessionId: sid, command: 'echo hold' });
      const old = vigil.processes.spawn({ sessionId: sid, command: 'echo HIT; sleep 30', watch: ['HIT'] });
      await tapeUntil(vigil, sid, (events) => events.some((event) => event.type === 'watch.match'));
      const exited = nextEvent(vigil, 'process:exited', (info) => info.processId === old.processId);
      const fresh = vigil.processes.spawn({
        sessionId: sid,
        command: 'echo rebuilt',
        replaces: old.processId,
      });
      expect((await exited)[0]).toMatchObject({
        state: 'killed',
        supersededBy: fresh.processId,
        completionConsumed: true,
      });
      release();
      await inbox.of(fresh.processId, 'completion');
      expect(inbox.calls.filter((n) => n.processId === old.processId)).toEqual([]);
      const tape = await readTape(vigil, sid);
      const supersedes = tape.flatMap((event) =>
        event.type === 'process.supersedes' ? [{ processId: event.processId, ...event.data }] : [],
      );
      expect(supersedes).toEqual([
        { processId: fresh.processId, superseded: old.processId, key: null, killed: true },
      ]);
      const withdrawn = tape.flatMap((event) =>
        event.type === 'notification.withdrawn' ? [event.data.processId] : [],
      );
      expect(withdrawn).toEqual([old.processId]);
    },
  );

  raceIt(
    'a rerun with the same key withdraws what the ended run has not delivered, and only that run',
    async () => {
      await using vigil = host.make();
      const { sid, inbox, release } = await heldSession(vigil);
      await runToEnd(vigil, { sessionId: sid, command: 'echo hold' });
      const build = { sessionId: sid, key: 'build', watch: ['HIT'] };
      const first = await runToEnd(vigil, { ...build, command: 'echo HIT; exit 1' });
      const other = await runToEnd(vigil, { sessionId: sid, key: 'test', command: 'echo tested' });
      const second = vigil.processes.spawn({ ...build, command: 'echo built' });
      expect(vigil.processes.get(first)).toMatchObject({ key: 'build', supersededBy: second.processId });
      release();
      await inbox.of(second.processId, 'completion');
      expect(inbox.calls.filter((n) => n.processId === first)).toEqual([]);
      expect(inbox.ackedFor(other, 'completion')).toHaveLength(1);
      const withdrawn = (await readTape(vigil, sid)).flatMap((event) =>
        event.type === 'notification.withdrawn' ? [event.data.processId] : [],
      );
      expect(withdrawn).toEqual([first, first]);
    },
  );

  it('refuses a replaces that names no process of the session, and a bad key, naming the field', async () => {
    await using vigil = host.make();
    const { sid } = await openSession(vigil);
    const { sid: otherSid } = await openSession(vigil);
    const theirs = await runToEnd(vigil, { sessionId: otherSid, command: 'true' });
    for (const replaces of ['proc_000000000000', theirs]) {
      expect(() => vigil.processes.spawn({ sessionId: sid, command: 'true', replaces })).toThrow(
        expect.objectContaining({ code: 'ERR_UNKNOWN_PROCESS', details: { field: 'replaces' } }),
      );
    }
    expect(() => vigil.processes.spawn({ sessionId: sid, command: 'true', key: '' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT', message: expect.stringContaining('key') }),
    );
    expect(vigil.processes.list({ sessionId: sid })).toEqual([]);
  });
});
