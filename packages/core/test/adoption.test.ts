import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { liveMembers, reusePid } from '../../../test/support/proc.js';
import { raceIt } from '../../../test/support/race.js';
import { Recorder } from '../../../test/support/recorder.js';
import type { Notification } from '../src/journal/notification.js';
import type { AdoptionRecord } from '../src/process/adopted-child.js';
import { type ChildEnd, ChildRun } from '../src/process/child-run.js';
import { readExitStatus } from '../src/process/exit-status.js';
import { ManagedProcess } from '../src/process/managed-process.js';
import { identityState, readIdentity } from '../src/process/process-identity.js';
import { parseSpawn } from '../src/process/spawn-spec.js';
import { Spool } from '../src/process/spool.js';
import { createVigil } from '../src/vigil.js';

const STARTER = fileURLToPath(new URL('./fixtures/starter.mjs', import.meta.url));
const MODES = ['helper', 'direct'] as const;
/** Fast enough that a lost recorder is noticed within a test's patience; normally 1 s. */
const POLL_MS = 50;

const workDir = mkdtempSync(join(tmpdir(), 'vigil-adoption-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));
let dirs = 0;

/** No event reports a foreign process's death, so poll it: bounded to ~5 s of short awaits. */
async function until(condition: () => boolean): Promise<boolean> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return condition();
}

interface Started {
  readonly spool: string;
  readonly record: AdoptionRecord;
}

/**
 * Starts `commands` from a real Node process that does what vigil does (`fixtures/starter.mjs`),
 * then kills that process with SIGKILL: the commands run on with nobody following them.
 */
async function startAndCrash(mode: 'helper' | 'direct', commands: readonly string[]): Promise<Started[]> {
  const dir = join(workDir, `run-${++dirs}`);
  mkdirSync(dir);
  const starter: ChildProcess = spawn(process.execPath, [STARTER, mode, dir, JSON.stringify(commands)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const started: Started[] = [];
  for await (const line of createInterface({ input: starter.stdout! })) {
    const { index, spool, record } = JSON.parse(line) as Started & { index: number };
    started[index] = { spool, record };
    if (started.filter(Boolean).length === commands.length) break;
  }
  const exited = once(starter, 'exit');
  starter.kill('SIGKILL');
  await exited;
  return started;
}

/** Adopts `record` and resolves with how the run ends. */
function adopt(record: AdoptionRecord): { run: ChildRun; ended: Promise<ChildEnd> } {
  let resolve: (end: ChildEnd) => void = () => {};
  const ended = new Promise<ChildEnd>((settle) => {
    resolve = settle;
  });
  const run = ChildRun.adopt(record, { killGraceMs: 1_000, pollMs: POLL_MS }, { onEnd: resolve });
  return { run, ended };
}

describe('process identity', () => {
  it('names a running process by pid, start time and boot, and tells a reused pid apart', async () => {
    const self = readIdentity('self')!;
    expect(self.pid).toBe(process.pid);
    expect(identityState(self)).toBe('alive');
    expect(identityState({ ...self, startTicks: self.startTicks + 1 })).toBe('reused');
    expect(identityState({ ...self, bootId: 'another-boot' })).toBe('rebooted');
    const child = spawn('true');
    const identity = readIdentity(child.pid!)!;
    await once(child, 'exit');
    expect(identityState(identity)).toBe('gone');
  });
});

describe.each(MODES)('adopting a command started with spawner %s', (mode) => {
  raceIt('reports the exit code a command recorded while no vigil followed it', async () => {
    // It waits for EOF on stdin, which comes when its starter dies: it ends while nobody watches.
    const [started] = await startAndCrash(mode, ['read line; echo printed while vigil was down; exit 7']);
    const { record, spool } = started!;
    if (mode === 'helper') {
      expect(await until(() => readExitStatus(record.statusPath) !== undefined)).toBe(true);
      const spool2 = new Spool(spool, 1 << 20, { existing: true });
      const spec = parseSpawn({ sessionId: 's', command: 'read line; exit 7' });
      let exited: () => void = () => {};
      const ended = new Promise<void>((resolve) => {
        exited = resolve;
      });
      const adopted = ManagedProcess.adopt(
        'p1',
        spec,
        { spool: spool2, createdAt: 0, startedAt: 0, record, killGraceMs: 1_000, pollMs: POLL_MS },
        { started: () => {}, exited, survivors: () => {} },
      );
      expect(adopted.state).toBe('running');
      await ended;
      const exit = adopted.finish({ now: 5, tail: () => spool2.tail(100) })!;
      expect(exit).toMatchObject({
        state: 'exited',
        exitCode: 7,
        signal: null,
        reason: 'exited with code 7',
      });
      expect(exit.outputTail).toBe('printed while vigil was down\n');
      spool2.close();
    } else {
      // Forked by the starter, its status died with it: an orphan's end cannot be known.
      const { ended } = adopt(record);
      expect(await ended).toMatchObject({ kind: 'lost' });
      expect(((await ended) as { reason: string }).reason).toMatch(/no exit status was recorded/);
    }
  });

  raceIt('reports the signal that killed a command while no vigil followed it', async () => {
    const [started] = await startAndCrash(mode, ['read line; kill -KILL $$']);
    const { ended } = adopt(started!.record);
    const end = await ended;
    if (mode === 'helper') expect(end).toEqual({ kind: 'exited', exitCode: null, signal: 'SIGKILL' });
    else expect(end).toMatchObject({ kind: 'lost' });
  });

  raceIt(
    'kills and waits for a running command adopted after its starter was killed with SIGKILL',
    async () => {
      const [started] = await startAndCrash(mode, ['sleep 60 & sleep 60; wait']);
      const { record } = started!;
      // The shell forks its two sleeps a moment after it starts.
      expect(await until(() => liveMembers(record.identity.pgid).length === 3)).toBe(true);
      const { run, ended } = adopt(record);
      expect(run.running).toBe(true);
      expect(run.pid).toBe(record.identity.pid);
      await expect(run.write('x', { timeoutMs: 1_000 })).rejects.toMatchObject({
        code: 'ERR_INVALID_INPUT',
        message: expect.stringMatching(/adopted after a restart cannot be written/),
      });
      await run.kill('SIGTERM');
      expect(liveMembers(record.identity.pgid)).toEqual([]);
      const end = await ended;
      // The spawner outlived its vigil and saw the end; an orphan's parent is gone.
      if (mode === 'helper') expect(end).toEqual({ kind: 'exited', exitCode: null, signal: 'SIGTERM' });
      else expect(end).toMatchObject({ kind: 'lost' });
      expect(run.running).toBe(false);
    },
  );
});

describe('adopting a command whose pid was reused', () => {
  raceIt('ends it lost and never signals the newcomer', async () => {
    // Started and reaped here (an orphan of a killed starter stays a zombie in this sandbox, whose
    // PID 1 reaps nothing, and keeps its pid); its recorder, another reaped process, is gone too.
    const gone: AdoptionRecord = {
      identity: await identityOfReaped(),
      statusPath: join(workDir, 'never-written.exit'),
      recorder: await identityOfReaped(),
    };
    // A start time counts clock ticks (10 ms): a pid reused in the same tick would look the same.
    // The kernel hands a pid out again only after wrapping around pid_max, never within a tick;
    // this test forces the reuse, so it waits for the next tick first.
    expect(await until(() => uptimeTicks() > gone.identity.startTicks + 1)).toBe(true);
    const newcomer = await reusePid(gone.identity.pid);
    const { run, ended } = adopt(gone);
    await run.kill('SIGKILL');
    const end = await ended;
    expect(end).toMatchObject({ kind: 'lost' });
    expect((end as { reason: string }).reason).toMatch(/now names another process/);
    await run.kill('SIGKILL');
    const exited = once(newcomer, 'exit');
    newcomer.kill('SIGTERM');
    expect((await exited)[1]).toBe('SIGTERM');
  });

  /** Clock ticks since boot now (`/proc/uptime` has hundredths of a second, as USER_HZ counts). */
  function uptimeTicks(): number {
    return Math.floor(Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]) * 100);
  }

  /** The identity of a command this test started and reaped: its pid is free for reuse. */
  async function identityOfReaped(): Promise<AdoptionRecord['identity']> {
    const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    const identity = readIdentity(child.pid!)!;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    return identity;
  }
});

describe.each(MODES)('close({ keepProcesses: true }) with spawner %s', (mode) => {
  raceIt('leaves the command running and its exit status is recorded when it ends later', async () => {
    const stateDir = join(workDir, `state-${++dirs}`);
    const vigil = createVigil({ stateDir, processes: { spawner: mode } });
    await vigil.sessions.open('s', { deliver: () => {} });
    const info = vigil.processes.spawn({ sessionId: 's', command: 'sleep 60 & sleep 60; wait' });
    // A spawner reports the pid a moment later.
    expect(await until(() => vigil.processes.get(info.processId).pid !== null)).toBe(true);
    const pid = vigil.processes.get(info.processId).pid!;
    const identity = readIdentity(pid)!;
    // The shell forks its two sleeps a moment after it starts.
    expect(await until(() => liveMembers(pid).length === 3)).toBe(true);
    await vigil.close({ keepProcesses: true });
    expect(identityState(identity)).toBe('alive');
    expect(liveMembers(pid).length).toBe(3);
    const statusPath = `${info.outputPath}.exit`;
    expect(readExitStatus(statusPath)).toBeUndefined();
    process.kill(-pid, 'SIGTERM');
    expect(await until(() => readExitStatus(statusPath) !== undefined)).toBe(true);
    expect(readExitStatus(statusPath)).toEqual({ exitCode: null, signal: 'SIGTERM' });
    expect(readFileSync(info.outputPath, 'utf8')).toBe('');
    rmSync(stateDir, { recursive: true, force: true });
  });

  raceIt(
    'leaves the journal as it was: the next vigil adopts the command and keeps the pending notification and approval',
    async () => {
      const stateDir = join(workDir, `state-${++dirs}`);
      const gate = join(stateDir, 'gate');
      const options = { stateDir, processes: { spawner: mode }, watch: { cooldownMs: 0 } };
      const first = createVigil(options);
      const offered = new Recorder<Notification>();
      // Never acknowledges: the match is in flight when the stop comes, and aborted by it.
      await first.sessions.open('s', {
        deliver: (notification, { signal }) => {
          offered.push(notification);
          return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
        },
      });
      const build = first.processes.spawn({
        sessionId: 's',
        command: `echo ready; while [ ! -e ${gate} ]; do sleep 0.02; done; exit 7`,
        watch: ['ready'],
      });
      const deploy = first.processes.spawn({ sessionId: 's', command: 'exit 0', requireApproval: true });
      const match = await offered.next();
      await first.close({ keepProcesses: true });

      const second = createVigil(options);
      try {
        expect(second.processes.get(build.processId).state).toBe('running');
        const head = second.approvals.snapshot('s').head;
        expect(head?.processId).toBe(deploy.processId);
        const delivered = new Recorder<Notification>();
        await second.sessions.open('s', { deliver: (notification) => delivered.push(notification) });
        await delivered.next();
        second.approvals.respond('s', head!.approvalId, 'approve');
        await delivered.next((n) => n.id === `${deploy.processId}:completion`);
        writeFileSync(gate, '');
        const completion = await delivered.next((n) => n.id === `${build.processId}:completion`);
        expect(delivered.items.map((n) => n.id)).toEqual([
          match.id,
          `${deploy.processId}:completion`,
          `${build.processId}:completion`,
        ]);
        expect(completion.type === 'completion' && completion.data.exitCode).toBe(7);
      } finally {
        await second.close();
        rmSync(stateDir, { recursive: true, force: true });
      }
    },
  );

  raceIt(
    'waits for the pid of a command stopped right after its spawn, so the next vigil adopts it',
    async () => {
      const stateDir = join(workDir, `state-${++dirs}`);
      const gate = join(stateDir, 'gate');
      const first = createVigil({ stateDir, processes: { spawner: mode } });
      await first.sessions.open('s', { deliver: () => {} });
      const build = first.processes.spawn({
        sessionId: 's',
        command: `while [ ! -e ${gate} ]; do sleep 0.02; done; exit 4`,
      });
      // No wait for the start: the helper spawner reports the pid only a moment later.
      await first.close({ keepProcesses: true });
      const second = createVigil({ stateDir, processes: { spawner: mode } });
      try {
        expect(second.processes.get(build.processId)).toMatchObject({ state: 'running' });
        const delivered = new Recorder<Notification>();
        await second.sessions.open('s', { deliver: (notification) => delivered.push(notification) });
        writeFileSync(gate, '');
        const completion = await delivered.next((n) => n.id === `${build.processId}:completion`);
        expect(completion.type === 'completion' && completion.data.exitCode).toBe(4);
      } finally {
        await second.close();
        rmSync(stateDir, { recursive: true, force: true });
      }
    },
  );
});
