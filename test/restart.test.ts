import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createVigil,
  type Notification,
  type ProcessInfo,
  type SessionInfo,
  type TapeEvent,
} from '@vigil/core';
import Database from 'better-sqlite3';
import { afterEach, describe, expect } from 'vitest';
import {
  completionIds,
  type Delivery,
  deliversTheOtherSeven,
  JournalChild,
  killedAfterThreeOfTen,
  runInTurn,
} from './support/journal-child.js';
import { liveMembers } from './support/proc.js';
import { raceIt } from './support/race.js';

const dirs: string[] = [];
function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-restart-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Nothing reports the end of a command no vigil follows: poll, bounded to ~10 s of short awaits. */
async function until(condition: () => boolean): Promise<boolean> {
  for (let i = 0; i < 1_000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return condition();
}

const OPTIONS = { processes: { spawner: 'direct' as const } };

describe('a vigil restarted on the same stateDir after SIGKILL', () => {
  raceIt('delivers exactly the unacknowledged completions, once each and in order', async () => {
    const dir = stateDir();
    const ids = await killedAfterThreeOfTen({ ...OPTIONS, stateDir: dir });
    await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
    await deliversTheOtherSeven(second, ids);
  });

  raceIt(
    'delivers exactly the unacknowledged completions in batch mode, once each and in order',
    async () => {
      const dir = stateDir();
      const { ids, acked } = await (async () => {
        await using first = await JournalChild.start({ ...OPTIONS, stateDir: dir });
        await first.call('open', { sessionId: 'agent', ackFirst: 3, batch: true });
        const ids = await runInTurn(
          first,
          'agent',
          Array.from({ length: 10 }, (_, i) => `exit ${i}`),
        );
        // Three batches acknowledged; the 4th call hangs with what was ready, the rest waits.
        const hanging = () => first.deliveries.some((delivery) => !delivery.acked);
        while (!hanging() && first.deliveries.length < ids.length) {
          await first.next((message) => message.event === 'deliver');
        }
        if (!hanging()) {
          // Three calls took all ten (a loaded machine): the last acknowledgement is made durable first.
          const notificationId = `${ids.at(-1)}:completion`;
          await first.call('tapeEvent', {
            sessionId: 'agent',
            type: 'notification.delivered',
            notificationId,
          });
        }
        const acked = completionIds(first.deliveries.filter((delivery) => delivery.acked));
        await first.kill();
        return { ids: ids.map((id) => `${id}:completion`), acked };
      })();
      expect(acked).toEqual(ids.slice(0, acked.length));
      await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await second.call('open', { sessionId: 'agent', batch: true });
      await second.deliveredCount(ids.length - acked.length);
      const info = await second.call<SessionInfo>('session', { sessionId: 'agent' });
      expect(info.outboxDepth).toBe(0);
      expect(completionIds(second.deliveries)).toEqual(ids.slice(acked.length));
    },
  );

  raceIt('continues the tape with the same seqs and no gap', async () => {
    const dir = stateDir();
    const before = await (async () => {
      await using first = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await first.call('open', { sessionId: 'agent' });
      await runInTurn(first, 'agent', ['echo one', 'echo two']);
      await first.deliveredCount(2);
      const tape = await first.call<TapeEvent[]>('tape', { sessionId: 'agent' });
      await first.kill();
      return tape;
    })();
    await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
    await second.call('open', { sessionId: 'agent' });
    const restored = await second.call<TapeEvent[]>('tape', { sessionId: 'agent' });
    // The acknowledgement of the last delivery may be recorded after the first tape read.
    expect(restored.slice(0, before.length)).toEqual(before);
    await runInTurn(second, 'agent', ['echo three']);
    const after = await second.call<TapeEvent[]>('tape', { sessionId: 'agent' });
    expect(after.map(({ seq }) => seq)).toEqual(after.map((_, index) => index + 1));
    const exits = after.slice(before.length).filter((event) => event.type === 'process.exited');
    expect(exits.map((event) => event.data.outputTail)).toEqual(['three\n']);
  });

  raceIt('keeps a pending approval; approving it after the restart runs the command', async () => {
    const dir = stateDir();
    const approvalId = await (async () => {
      await using first = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await first.call('open', { sessionId: 'agent' });
      await first.call('spawn', {
        input: { sessionId: 'agent', command: 'echo approved-run', requireApproval: true },
      });
      const snapshot = await first.call<{ head: { approvalId: string } | null; count: number }>('approvals', {
        sessionId: 'agent',
      });
      expect(snapshot.count).toBe(1);
      await first.kill();
      return snapshot.head!.approvalId;
    })();
    await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
    await second.call('open', { sessionId: 'agent' });
    const snapshot = await second.call<{ head: { approvalId: string } | null; count: number }>('approvals', {
      sessionId: 'agent',
    });
    expect(snapshot).toMatchObject({ count: 1, head: { approvalId, command: 'echo approved-run' } });
    await second.call('respond', { sessionId: 'agent', approvalId, decision: 'approve' });
    await second.deliveredCount(1);
    const [{ notification }] = second.deliveries as [Delivery];
    expect(notification).toMatchObject({ type: 'completion', data: { state: 'exited', exitCode: 0 } });
    expect((notification as Notification & { type: 'completion' }).data.outputTail).toContain('approved-run');
  });

  raceIt(
    'keeps an approve-for-session grant: after a SIGKILL the same command runs without asking',
    async () => {
      const dir = stateDir();
      const command = 'echo granted-run';
      await (async () => {
        await using first = await JournalChild.start({ ...OPTIONS, stateDir: dir });
        await first.call('open', { sessionId: 'agent' });
        const pending = await first.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command, requireApproval: true },
        });
        await first.call('respondHead', { sessionId: 'agent', decision: 'approve_session' });
        await first.call('wait', { processId: pending.processId });
        await first.kill();
      })();
      await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await second.call('open', { sessionId: 'agent' });
      const again = await second.call<ProcessInfo>('spawn', {
        input: { sessionId: 'agent', command, requireApproval: true },
      });
      expect(again.state).toBe('running');
      const { process: done } = await second.call<{ process: ProcessInfo }>('wait', {
        processId: again.processId,
      });
      expect(done).toMatchObject({ state: 'exited', exitCode: 0 });
      const other = await second.call<ProcessInfo>('spawn', {
        input: { sessionId: 'agent', command: 'echo not-granted', requireApproval: true },
      });
      expect(other.state).toBe('pending_approval');
      expect(await second.call('approvals', { sessionId: 'agent' })).toMatchObject({
        count: 1,
        head: { processId: other.processId },
      });
    },
  );

  raceIt('ends a command it cannot take back as lost, with a completion that says so', async () => {
    const dir = stateDir();
    const pid = await (async () => {
      await using first = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await first.call('open', { sessionId: 'agent' });
      const started = await first.call<ProcessInfo>('spawn', {
        input: { sessionId: 'agent', command: 'sleep 600' },
      });
      const info = await first.call<ProcessInfo>('get', { processId: started.processId });
      await first.kill();
      return info.pid!;
    })();
    try {
      await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await second.call('open', { sessionId: 'agent' });
      await second.deliveredCount(1);
      const [{ notification }] = second.deliveries as [Delivery];
      expect(notification).toMatchObject({ type: 'completion', data: { state: 'lost', exitCode: null } });
      expect((notification as Notification & { type: 'completion' }).data.reason).toMatch(/^vigil restarted/);
    } finally {
      // With `direct` the killed vigil was its recorder: nothing adopts it, the orphan is this test's to end.
      process.kill(-pid, 'SIGKILL');
    }
  });

  raceIt(
    'delivers the match and the exit code 7 of a command that ended while no vigil ran, once and in order',
    async () => {
      const dir = stateDir();
      const gate = join(dir, 'gate');
      const command = `echo mark-ready; while [ ! -e ${gate} ]; do sleep 0.02; done; echo mark-done; exit 7`;
      // No cooldown: the rate limiter, restored with the journal, lets the second match through.
      const options = { stateDir: dir, watch: { cooldownMs: 0 } };
      const { processId, outputPath } = await (async () => {
        await using first = await JournalChild.start(options);
        await first.call('open', { sessionId: 'agent' });
        const info = await first.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command, watch: ['mark'] },
        });
        // The first match is delivered and its acknowledgement journaled (else it may come once more):
        // the command runs, and its cursor is journaled past that line.
        await first.call('tapeEvent', { sessionId: 'agent', type: 'notification.delivered' });
        await first.kill();
        return info;
      })();
      // While no vigil runs, the command prints its second line and exits; its spawner records the status.
      writeFileSync(gate, '');
      expect(await until(() => existsSync(`${outputPath}.exit`))).toBe(true);
      await using second = await JournalChild.start(options);
      await second.call('open', { sessionId: 'agent' });
      await second.deliveredCount(2);
      const [match, completion] = second.deliveries.map(({ notification }) => notification);
      expect(match).toMatchObject({ type: 'watch_match', processId, data: { lines: ['mark-done'] } });
      expect(completion).toMatchObject({
        type: 'completion',
        processId,
        data: { state: 'exited', exitCode: 7 },
      });
      const tape = await second.call<TapeEvent[]>('tape', { sessionId: 'agent' });
      expect(tape.filter((event) => event.type === 'watch.match')).toHaveLength(2);
      expect(tape.filter((event) => event.type === 'process.exited')).toHaveLength(1);
      const info = await second.call<SessionInfo>('session', { sessionId: 'agent' });
      expect(info).toMatchObject({ outboxDepth: 0, activeProcesses: 0 });
    },
  );

  raceIt(
    'adopts a command still running: kill ends its group, wait returns, its completion arrives',
    async () => {
      const dir = stateDir();
      const { processId, pid } = await (async () => {
        await using first = await JournalChild.start({ stateDir: dir });
        await first.call('open', { sessionId: 'agent' });
        const command = 'sleep 600 & echo mark-ready; wait';
        const info = await first.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command, watch: ['mark'] },
        });
        await first.call('tapeEvent', { sessionId: 'agent', type: 'notification.delivered' });
        const started = await first.call<ProcessInfo>('get', { processId: info.processId });
        await first.kill();
        return { processId: info.processId, pid: started.pid! };
      })();
      try {
        await using second = await JournalChild.start({ stateDir: dir });
        await second.call('open', { sessionId: 'agent' });
        expect(await second.call<SessionInfo>('session', { sessionId: 'agent' })).toMatchObject({
          activeProcesses: 1,
        });
        expect(await second.call<ProcessInfo>('get', { processId })).toMatchObject({ state: 'running', pid });
        const waited = second.call<{ process: ProcessInfo; timedOut: boolean }>('wait', { processId });
        const killed = await second.call<ProcessInfo>('kill', { processId });
        expect(killed).toMatchObject({ state: 'killed', signal: 'SIGTERM' });
        expect(liveMembers(pid)).toEqual([]);
        expect(await waited).toMatchObject({ timedOut: false, process: { state: 'killed' } });
        await second.deliveredCount(1);
        expect(second.deliveries[0]?.notification).toMatchObject({
          type: 'completion',
          processId,
          data: { state: 'killed' },
        });
      } finally {
        // Without re-adoption nothing would end it: never leave the group behind.
        if (liveMembers(pid).length > 0) process.kill(-pid, 'SIGKILL');
      }
    },
  );

  raceIt(
    'adopts a command in a terminal: the spawner keeps spooling its output; its stdin and size are refused',
    async () => {
      const dir = stateDir();
      const gate = join(dir, 'gate');
      const command = `echo mark-ready; while [ ! -e ${gate} ]; do sleep 0.02; done; echo mark-done; exit 5`;
      // The watch's cooldown window survives the restart: without cooldownMs 0 it would drop mark-done.
      const options = { stateDir: dir, watch: { cooldownMs: 0 } };
      const { processId, pid } = await (async () => {
        await using first = await JournalChild.start(options);
        await first.call('open', { sessionId: 'agent' });
        const info = await first.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command, watch: ['mark'], pty: true },
        });
        await first.call('tapeEvent', { sessionId: 'agent', type: 'notification.delivered' });
        const started = await first.call<ProcessInfo>('get', { processId: info.processId });
        await first.kill();
        return { processId: info.processId, pid: started.pid! };
      })();
      try {
        await using second = await JournalChild.start(options);
        await second.call('open', { sessionId: 'agent' });
        expect(await second.call<ProcessInfo>('get', { processId })).toMatchObject({ state: 'running', pid });
        const refused = (op: string, args: Record<string, unknown>, done: string) =>
          expect(second.call(op, { processId, ...args })).rejects.toMatchObject({
            code: 'ERR_INVALID_INPUT',
            message: expect.stringContaining(`adopted after a restart cannot be ${done}`),
          });
        await refused('write', { data: 'x\n' }, 'written');
        await refused('closeStdin', {}, 'closed');
        await refused('resize', { size: { cols: 100, rows: 30 } }, 'resized');
        // Printed after the restart, through the terminal the first vigil's spawner still holds.
        writeFileSync(gate, '');
        await second.deliveredCount(2);
        const [match, completion] = second.deliveries.map(({ notification }) => notification);
        expect(match).toMatchObject({ type: 'watch_match', processId, data: { lines: ['mark-done'] } });
        expect(completion).toMatchObject({
          type: 'completion',
          processId,
          data: { state: 'exited', exitCode: 5 },
        });
      } finally {
        if (liveMembers(pid).length > 0) process.kill(-pid, 'SIGKILL');
      }
    },
  );

  raceIt(
    'kills an adopted command at the deadline its first vigil journaled, and says it timed out',
    async () => {
      const dir = stateDir();
      const { processId, pid, deadline } = await (async () => {
        await using first = await JournalChild.start({ stateDir: dir });
        await first.call('open', { sessionId: 'agent' });
        const info = await first.call<ProcessInfo>('spawn', {
          input: {
            sessionId: 'agent',
            command: 'sleep 600 & echo mark-ready; wait',
            watch: ['mark'],
            timeoutMs: 3_000,
          },
        });
        await first.call('tapeEvent', { sessionId: 'agent', type: 'notification.delivered' });
        const started = await first.call<ProcessInfo>('get', { processId: info.processId });
        await first.kill();
        return { processId: info.processId, pid: started.pid!, deadline: started.deadline! };
      })();
      try {
        // The first vigil died before the deadline: only the restarted one can end the command.
        expect(liveMembers(pid).length).toBeGreaterThan(0);
        await using second = await JournalChild.start({ stateDir: dir });
        await second.call('open', { sessionId: 'agent' });
        await second.deliveredCount(1);
        expect(second.deliveries[0]?.notification).toMatchObject({
          type: 'completion',
          processId,
          data: { state: 'killed', signal: 'SIGTERM', timedOut: true },
        });
        expect(await second.call<ProcessInfo>('get', { processId })).toMatchObject({
          deadline,
          timedOut: true,
        });
        expect(await until(() => liveMembers(pid).length === 0)).toBe(true);
      } finally {
        if (liveMembers(pid).length > 0) process.kill(-pid, 'SIGKILL');
      }
    },
  );

  raceIt(
    'keeps a consumed completion consumed, a removed process removed, supersession, and the completion policy',
    async () => {
      const dir = stateDir();
      const { killed, removed, old, fresh } = await (async () => {
        await using first = await JournalChild.start({ ...OPTIONS, stateDir: dir });
        await first.call('open', { sessionId: 'agent' });
        const input = {
          sessionId: 'agent',
          command: 'sleep 30',
          notifyOnComplete: 'onFailure',
          notifyOnEmptySuccess: false,
        };
        const { processId: killed } = await first.call<ProcessInfo>('spawn', { input });
        await first.call('kill', { processId: killed, options: { consumeCompletion: true } });
        const task = { sessionId: 'agent', key: 'task' };
        const { processId: old } = await first.call<ProcessInfo>('spawn', {
          input: { ...task, command: 'sleep 30' },
        });
        const oldExited = first.next(
          (message) => message.event === 'process:exited' && (message.info as ProcessInfo).processId === old,
        );
        const { processId: fresh } = await first.call<ProcessInfo>('spawn', {
          input: { ...task, command: 'true', notifyOnComplete: 'never' },
        });
        await oldExited;
        const [removed] = await runInTurn(first, 'agent', ['echo gone']);
        await first.deliveredCount(1);
        await first.call('remove', { processId: removed });
        await first.kill();
        return { killed, removed: removed!, old, fresh };
      })();
      await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await second.call('open', { sessionId: 'agent' });
      expect(await second.call<ProcessInfo>('get', { processId: killed })).toMatchObject({
        state: 'killed',
        completionConsumed: true,
        notifyOnComplete: 'onFailure',
        notifyOnEmptySuccess: false,
        name: 'sleep 30',
      });
      expect(await second.call<ProcessInfo>('get', { processId: old })).toMatchObject({
        state: 'killed',
        key: 'task',
        supersededBy: fresh,
        completionConsumed: true,
      });
      await expect(second.call('get', { processId: removed })).rejects.toMatchObject({
        code: 'ERR_UNKNOWN_PROCESS',
      });
      const [later] = await runInTurn(second, 'agent', ['exit 3']);
      await second.deliveredCount(1);
      expect(completionIds(second.deliveries)).toEqual([`${later}:completion`]);
    },
  );

  raceIt('closes a restored session nobody opens again after sessionIdleTtlMs', async () => {
    const dir = stateDir();
    await (async () => {
      await using first = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await first.call('open', { sessionId: 'forgotten' });
      await first.kill();
    })();
    await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir, sessionIdleTtlMs: 50 });
    const closed = await second.pushed('session:closed');
    expect(closed.info).toMatchObject({ sessionId: 'forgotten', state: 'closed', closeReason: 'idle' });
  });
});

/** A command that prints `lines[0]`, then each next line once the test creates the gate file of its index. */
function gatedCommand(dir: string, lines: readonly string[], exitCode: number): string {
  const steps = lines.map((line, index) =>
    index === 0
      ? `echo ${line}`
      : `while [ ! -e ${join(dir, `gate${index}`)} ]; do sleep 0.02; done; echo ${line}`,
  );
  return `${steps.join('; ')}; exit ${exitCode}`;
}

const openGate = (dir: string, index: number): void => writeFileSync(join(dir, `gate${index}`), '');

describe('the watch rate limits of a command adopted after SIGKILL', () => {
  raceIt('keep a watch disabled for strikes disabled, and report it so', async () => {
    const dir = stateDir();
    const options = { stateDir: dir, watch: { cooldownMs: 600_000, strikeLimit: 1 } };
    // Each line in a batch of its own: a second match inside the window is dropped, a strike.
    const command = gatedCommand(dir, ['MATCH-1', 'MATCH-2', 'MATCH-3', 'MATCH-4'], 0);
    const { processId, outputPath } = await (async () => {
      await using first = await JournalChild.start(options);
      await first.call('open', { sessionId: 'agent' });
      const info = await first.call<ProcessInfo>('spawn', {
        input: { sessionId: 'agent', command, watch: ['MATCH'], notifyOnComplete: false },
      });
      await first.deliveredCount(1);
      openGate(dir, 1);
      await first.call('tapeEvent', {
        sessionId: 'agent',
        type: 'notification.delivered',
        notificationId: `${info.processId}:watch_disabled`,
      });
      expect(first.deliveries.map(({ notification }) => notification.type)).toEqual([
        'watch_match',
        'watch_disabled',
      ]);
      await first.kill();
      return info;
    })();
    // While no vigil runs, the command prints two more matching lines and exits.
    openGate(dir, 2);
    openGate(dir, 3);
    expect(await until(() => existsSync(`${outputPath}.exit`))).toBe(true);
    await using second = await JournalChild.start(options);
    await second.call('open', { sessionId: 'agent' });
    expect(await second.call<ProcessInfo>('get', { processId })).toMatchObject({ watching: false });
    while (!second.deliveries.some(({ notification }) => notification.type === 'completion')) {
      await second.next((message) => message.event === 'deliver');
    }
    // Watching stays disabled: its completion is delivered instead (notifyOnComplete was false).
    expect(second.deliveries.map(({ notification }) => notification.type)).toEqual(['completion']);
    const tape = await second.call<TapeEvent[]>('tape', { sessionId: 'agent' });
    expect(tape.filter((event) => event.type === 'watch.match')).toHaveLength(1);
  });

  raceIt(
    'keep the cooldown window open: matches printed while no vigil ran are dropped and strike',
    async () => {
      const dir = stateDir();
      const options = { stateDir: dir, watch: { cooldownMs: 600_000, strikeLimit: 1 } };
      const burst = Array.from({ length: 5 }, (_, i) => `MATCH-burst-${i}`);
      const command = gatedCommand(dir, ['MATCH-1', burst.join(' && echo ')], 7);
      const { processId, outputPath } = await (async () => {
        await using first = await JournalChild.start(options);
        await first.call('open', { sessionId: 'agent' });
        const info = await first.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command, watch: ['MATCH'] },
        });
        await first.call('tapeEvent', { sessionId: 'agent', type: 'notification.delivered' });
        await first.kill();
        return info;
      })();
      // While no vigil runs, inside the window the first match opened, the command prints a burst of matches.
      openGate(dir, 1);
      expect(await until(() => existsSync(`${outputPath}.exit`))).toBe(true);
      await using second = await JournalChild.start(options);
      await second.call('open', { sessionId: 'agent' });
      await second.deliveredCount(2);
      const [disabled, completion] = second.deliveries.map(({ notification }) => notification);
      // The burst's first match is dropped inside the restored window: the strike that disables watching.
      expect(disabled).toMatchObject({
        type: 'watch_disabled',
        processId,
        data: { reason: 'strikes', suppressed: 1 },
      });
      expect(completion).toMatchObject({
        type: 'completion',
        processId,
        data: { state: 'exited', exitCode: 7 },
      });
      const tape = await second.call<TapeEvent[]>('tape', { sessionId: 'agent' });
      expect(tape.filter((event) => event.type === 'watch.match')).toHaveLength(1);
    },
  );
});

/** Runs commands in turn until a spawn fails (a full journal): the ones that ran, and that failure. */
async function fillJournal(
  child: JournalChild,
  sessionId: string,
): Promise<{ spawned: string[]; failure: unknown }> {
  const spawned: string[] = [];
  while (spawned.length < 200) {
    try {
      spawned.push(...(await runInTurn(child, sessionId, [`echo ${spawned.length}-${'x'.repeat(500)}`])));
    } catch (failure) {
      return { spawned, failure };
    }
  }
  return { spawned, failure: undefined };
}

const FULL_AT = { ...OPTIONS, journal: { maxBytes: 128 << 10 } };

describe('the journal of a stateDir', () => {
  raceIt('refuses a second vigil at once; a SIGKILLed holder blocks no restart', async () => {
    const dir = stateDir();
    await using first = await JournalChild.start({ ...OPTIONS, stateDir: dir });
    expect(() => createVigil({ stateDir: dir })).toThrow(
      expect.objectContaining({
        code: 'ERR_STATE_LOCKED',
        message: expect.stringContaining(`pid ${first.pid}`),
      }),
    );
    await first.kill();
    await using vigil = createVigil({ ...OPTIONS, stateDir: dir });
    expect(vigil.sessions.list()).toEqual([]);
  });

  raceIt(
    'fails the spawn a full journal cannot record, naming it; nothing journaled before is lost',
    async () => {
      const dir = stateDir();
      const file = join(dir, 'journal.db');
      await using first = await JournalChild.start({ ...FULL_AT, stateDir: dir });
      await first.call('open', { sessionId: 'agent' });
      const { spawned, failure } = await fillJournal(first, 'agent');
      expect(failure).toMatchObject({ code: 'ERR_JOURNAL_FULL', message: expect.stringContaining(file) });
      // The failed spawn started nothing and left no trace.
      const listed = await first.call<ProcessInfo[]>('list', { sessionId: 'agent' });
      expect(listed.map(({ processId }) => processId)).toEqual(spawned);
      const before = await first.call<TapeEvent[]>('tape', { sessionId: 'agent' });
      const deliveredBefore = completionIds(first.deliveries);
      await first.kill();

      // The disk has room again (no cap): the next vigil has everything that was journaled, and goes on.
      await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await second.call('open', { sessionId: 'agent' });
      const restored = await second.call<TapeEvent[]>('tape', { sessionId: 'agent' });
      expect(restored.slice(0, before.length)).toEqual(before);
      const [after] = await runInTurn(second, 'agent', ['echo after']);
      while (!completionIds(second.deliveries).includes(`${after}:completion`)) {
        await second.next((message) => message.event === 'deliver');
      }
      const tape = await second.call<TapeEvent[]>('tape', { sessionId: 'agent' });
      expect(tape.map(({ seq }) => seq)).toEqual(tape.map((_, index) => index + 1));
      // Each completion once, across both runs (the last acknowledged one may come again, with its id).
      const deliveredAfter = completionIds(second.deliveries);
      const repeated = deliveredAfter.filter((id) => deliveredBefore.includes(id));
      expect(repeated.length).toBeLessThanOrEqual(1);
      if (repeated.length === 1) expect(repeated).toEqual(deliveredBefore.slice(-1));
      expect(new Set([...deliveredBefore, ...deliveredAfter])).toEqual(
        new Set([...spawned, after].map((id) => `${id}:completion`)),
      );
    },
  );

  raceIt(
    'fails an approval a full journal cannot record; the command runs once, after it is journaled',
    async () => {
      const dir = stateDir();
      const processId = await (async () => {
        await using first = await JournalChild.start({ ...FULL_AT, stateDir: dir });
        await first.call('open', { sessionId: 'agent' });
        const info = await first.call<ProcessInfo>('spawn', {
          input: { sessionId: 'agent', command: 'echo approved-run', requireApproval: true },
        });
        expect((await fillJournal(first, 'agent')).failure).toMatchObject({ code: 'ERR_JOURNAL_FULL' });
        await expect(
          first.call('respond', { sessionId: 'agent', approvalId: info.approvalId, decision: 'approve' }),
        ).rejects.toMatchObject({ code: 'ERR_JOURNAL_FULL' });
        // Not journaled, so not acted on: the command does not start.
        expect(await first.call<ProcessInfo>('get', { processId: info.processId })).toMatchObject({
          state: 'pending_approval',
          pid: null,
        });
        await first.kill();
        return info.processId;
      })();
      await using second = await JournalChild.start({ ...OPTIONS, stateDir: dir });
      await second.call('open', { sessionId: 'agent' });
      const snapshot = await second.call<{ head: { approvalId: string } | null }>('approvals', {
        sessionId: 'agent',
      });
      expect(snapshot.head).toMatchObject({ processId });
      const exited = second.next((message) => message.event === 'process:exited');
      await second.call('respond', {
        sessionId: 'agent',
        approvalId: snapshot.head!.approvalId,
        decision: 'approve',
      });
      expect((await exited).info).toMatchObject({ processId, state: 'exited', exitCode: 0 });
    },
  );

  raceIt('refuses a corrupt journal, naming the file, and leaves it as it was', async () => {
    const dir = stateDir();
    const file = join(dir, 'journal.db');
    writeFileSync(file, 'not a database, '.repeat(512));
    expect(() => createVigil({ stateDir: dir })).toThrow(
      expect.objectContaining({ code: 'ERR_JOURNAL', message: expect.stringContaining(file) }),
    );
    expect(execFileSync('head', ['-c', '16', file], { encoding: 'utf8' })).toBe('not a database, ');
  });

  raceIt('refuses a journal of a newer schema, naming the file and the versions', async () => {
    const dir = stateDir();
    await createVigil({ stateDir: dir }).close();
    const file = join(dir, 'journal.db');
    const db = new Database(file);
    const current = db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number;
    db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (99, 0)').run();
    db.close();
    expect(() => createVigil({ stateDir: dir })).toThrow(
      expect.objectContaining({
        code: 'ERR_JOURNAL',
        message: expect.stringMatching(
          new RegExp(`${file}.*schema version 99.*newer vigil.*up to version ${current}`),
        ),
      }),
    );
  });
});
