import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MAX_TIMEOUT_MS, MAX_YIELD_MS, type Vigil } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import { inThreadVigil } from './support/fixtures.js';
import { liveMembers } from './support/proc.js';
import { diesWithin, Inbox, newSessionId, readTape } from './support/processes.js';
import { raceIt } from './support/race.js';

const run = promisify(execFile);
const EXIT_FIXTURE = fileURLToPath(new URL('./fixtures/timeout-then-exit.mjs', import.meta.url));

/** Opens a session whose deliver is a recording `Inbox`. */
async function openSession(vigil: Vigil): Promise<{ sid: string; inbox: Inbox }> {
  const inbox = new Inbox();
  const sid = newSessionId('timeout');
  await vigil.sessions.open(sid, { deliver: inbox.deliver });
  return { sid, inbox };
}

const invalid = (field: string, text: string) =>
  expect.objectContaining({
    code: 'ERR_INVALID_INPUT',
    details: expect.objectContaining({ field }),
    message: expect.stringContaining(text),
  });

describe('timeoutMs', () => {
  for (const spawner of ['helper', 'direct'] as const) {
    raceIt(
      `kills the whole group of a command that runs longer, and its completion says it timed out (${spawner} spawner)`,
      async () => {
        await using vigil = inThreadVigil({ processes: { spawner, killGraceMs: 200 } });
        const { sid, inbox } = await openSession(vigil);
        // A grandchild in the same group: a timeout must end it too.
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: 'sleep 30 & echo $!; wait',
          timeoutMs: 300,
        });
        const completion = await inbox.of(processId, 'completion');
        expect(completion.data).toMatchObject({ state: 'killed', timedOut: true });
        // SIGKILL when the grace ran out before the child took the SIGTERM (a spawner slow to start it).
        expect(completion.data.reason).toBe(`timed out (timeoutMs 300): killed by ${completion.data.signal}`);
        expect(['SIGTERM', 'SIGKILL']).toContain(completion.data.signal);
        const info = vigil.processes.get(processId);
        expect(info).toMatchObject({ state: 'killed', timedOut: true, deadline: info.startedAt! + 300 });
        const grandchild = Number(completion.data.outputTail.trim());
        expect(grandchild).toBeGreaterThan(1);
        expect(await diesWithin(grandchild)).toBe(true);
        expect(liveMembers(info.pid!)).toEqual([]);
        const exited = (await readTape(vigil, sid)).filter((event) => event.type === 'process.exited');
        expect(exited).toMatchObject([{ processId, data: { timedOut: true } }]);
      },
    );
  }

  for (const spawner of ['helper', 'direct'] as const) {
    // Not a race: one run of a whole program says whether anything holds it.
    it(`leaves a command that ends first as it ended, and no timer behind it (${spawner} spawner)`, async () => {
      // The program ends on its own once vigil closed; the command's 10-minute timer would hold it.
      const { stdout } = await run(process.execPath, [EXIT_FIXTURE, spawner], { timeout: 20_000 });
      expect(JSON.parse(stdout)).toMatchObject({
        state: 'exited',
        exitCode: 4,
        timedOut: false,
        reason: 'exited with code 4',
      });
    });
  }

  it('takes processes.timeoutMs when a spawn names none; timeoutMs 0 means never', async () => {
    await using vigil = inThreadVigil({ processes: { timeoutMs: 300 } });
    const { sid, inbox } = await openSession(vigil);
    const never = vigil.processes.spawn({ sessionId: sid, command: 'read x', timeoutMs: 0 });
    expect(never.deadline).toBeNull();
    const { processId, startedAt, deadline } = vigil.processes.spawn({ sessionId: sid, command: 'sleep 30' });
    expect(deadline).toBe(startedAt! + 300);
    expect((await inbox.of(processId, 'completion')).data).toMatchObject({ timedOut: true });
    expect(vigil.processes.get(never.processId)).toMatchObject({ state: 'running', timedOut: false });
  });

  it('refuses a negative, fractional or too long timeoutMs, naming it', async () => {
    await using vigil = inThreadVigil();
    const { sid } = await openSession(vigil);
    for (const timeoutMs of [-1, 1.5, MAX_TIMEOUT_MS + 1]) {
      expect(() => vigil.processes.spawn({ sessionId: sid, command: 'true', timeoutMs })).toThrow(
        invalid('timeoutMs', 'timeoutMs: must'),
      );
    }
    expect(() => inThreadVigil({ processes: { timeoutMs: -5 } })).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_CONFIG',
        message: expect.stringContaining('processes.timeoutMs'),
      }),
    );
    expect(vigil.processes.list()).toEqual([]);
  });
});

describe('processes.run (yieldMs, the foreground fast path)', () => {
  raceIt(
    'returns the exit and output of a command that ends within yieldMs, and never notifies it',
    async () => {
      await using vigil = inThreadVigil();
      const { sid, inbox } = await openSession(vigil);
      const result = await vigil.processes.run({
        sessionId: sid,
        command: 'echo quick; exit 3',
        yieldMs: 60_000,
      });
      expect(result).toMatchObject({
        finished: true,
        tail: 'quick\n',
        process: { state: 'exited', exitCode: 3, completionConsumed: true },
      });
      // Completions are delivered in tape order: once a later one arrived, the first would have come before it.
      const later = vigil.processes.spawn({ sessionId: sid, command: 'echo later' });
      await inbox.of(later.processId, 'completion');
      expect(inbox.calls.filter((n) => n.processId === result.process.processId)).toEqual([]);
      const tape = await readTape(vigil, sid);
      expect(tape.filter((e) => e.type === 'process.exited').map((e) => e.processId)).toEqual([
        result.process.processId,
        later.processId,
      ]);
    },
  );

  raceIt(
    'returns a command still running after yieldMs as running; it notifies once when it ends',
    async () => {
      await using vigil = inThreadVigil();
      const { sid, inbox } = await openSession(vigil);
      // It waits for its stdin: still running whatever the machine's load when yieldMs ends.
      const result = await vigil.processes.run({
        sessionId: sid,
        command: 'read x; echo "got $x"',
        yieldMs: 50,
      });
      expect(result).toMatchObject({
        finished: false,
        process: { state: 'running', completionConsumed: false },
      });
      const { processId } = result.process;
      await vigil.processes.write(processId, 'go\n');
      const completion = await inbox.of(processId, 'completion');
      expect(completion.data).toMatchObject({ state: 'exited', exitCode: 0, outputTail: 'got go\n' });
      await vigil.sessions.close(sid);
      expect(inbox.ackedFor(processId, 'completion')).toHaveLength(1);
    },
  );

  raceIt('stops waiting when its signal aborts; the command goes on and notifies', async () => {
    await using vigil = inThreadVigil();
    const { sid, inbox } = await openSession(vigil);
    const controller = new AbortController();
    const running = vigil.processes.run(
      { sessionId: sid, command: 'read x', yieldMs: MAX_YIELD_MS },
      { signal: controller.signal },
    );
    // The spawn is done when run returns its promise.
    const [info] = vigil.processes.list({ sessionId: sid });
    controller.abort();
    await expect(running).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await vigil.processes.write(info!.processId, '\n');
    await inbox.of(info!.processId, 'completion');
  });

  it('refuses a yieldMs above its cap or negative, naming it, and starts nothing', async () => {
    await using vigil = inThreadVigil();
    const { sid } = await openSession(vigil);
    for (const yieldMs of [MAX_YIELD_MS + 1, -1, 0.5]) {
      await expect(vigil.processes.run({ sessionId: sid, command: 'true', yieldMs })).rejects.toThrow(
        invalid('yieldMs', 'yieldMs: must'),
      );
    }
    expect(vigil.processes.list()).toEqual([]);
  });
});
