import type { Vigil } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import { inThreadVigil, outputContains, workerVigil } from './support/fixtures.js';
import { isDead, liveMembers, procStat, terminalMasters } from './support/proc.js';
import { HOSTS, Inbox, newSessionId, startedPid } from './support/processes.js';
import { raceIt } from './support/race.js';

/** Opens a session whose deliver is a recording `Inbox`. */
async function openSession(vigil: Vigil): Promise<{ sid: string; inbox: Inbox }> {
  const inbox = new Inbox();
  const sid = newSessionId('t');
  await vigil.sessions.open(sid, { deliver: inbox.deliver });
  return { sid, inbox };
}

/** The output's lines, as `log` pages them. */
async function lines(vigil: Vigil, processId: string): Promise<string[]> {
  return (await vigil.processes.log(processId, { offset: 0, limit: 1000 })).lines;
}

const workerHost = (options = {}) => workerVigil(options, { pool: { minThreads: 1, maxThreads: 2 } }).vigil;

for (const host of HOSTS) {
  describe(`a command with pty: true on the ${host.name}`, () => {
    it('sees a terminal (tty names a /dev/pts device, isTTY is true) and its output is watched', async () => {
      await using vigil = host.make();
      const { sid, inbox } = await openSession(vigil);
      const { processId, terminal } = vigil.processes.spawn({
        sessionId: sid,
        command: 'tty; node -e "console.log(process.stdout.isTTY)"; echo terminal-ready',
        pty: true,
        watch: ['terminal-ready'],
      });
      expect(terminal).toEqual({ cols: 80, rows: 24 });
      const match = await inbox.of(processId, 'watch_match');
      expect(match.data.lines).toEqual(['terminal-ready']);
      const completion = await inbox.of(processId, 'completion');
      expect(completion.data).toMatchObject({ state: 'exited', exitCode: 0 });
      const output = await lines(vigil, processId);
      expect(output[0]).toMatch(/^\/dev\/pts\/\d+$/);
      // Node colours a boolean on a terminal.
      expect(output[1]).toMatch(/true/);
    });
  });
}

describe('a terminal (pty: true)', () => {
  raceIt('reports the size it was given, and the new size after resize', async () => {
    await using vigil = workerHost();
    const { sid } = await openSession(vigil);
    const { processId } = vigil.processes.spawn({
      sessionId: sid,
      command: 'stty size; read line; stty size',
      pty: true,
      cols: 100,
      rows: 30,
    });
    await outputContains(vigil, processId, '30 100');
    vigil.processes.resize(processId, { cols: 132, rows: 50 });
    expect(vigil.processes.get(processId).terminal).toEqual({ cols: 132, rows: 50 });
    await vigil.processes.write(processId, '\n');
    const { process } = await vigil.processes.wait(processId);
    expect(process).toMatchObject({ state: 'exited', exitCode: 0 });
    expect((await lines(vigil, processId)).filter((line) => /^\d+ \d+$/.test(line))).toEqual([
      '30 100',
      '50 132',
    ]);
    expect(() => vigil.processes.resize(processId, { cols: 80, rows: 24 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT', message: expect.stringMatching(/exited/) }),
    );
  });

  raceIt('ends cat at eof (^D) with exit 0, after echoing the data', async () => {
    await using vigil = workerHost();
    const { sid } = await openSession(vigil);
    const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'cat', pty: true });
    // No newline: the first ^D ends the line, the second is the end of file.
    await vigil.processes.write(processId, 'one\ntwo', { eof: true });
    const { process } = await vigil.processes.wait(processId);
    expect(process).toMatchObject({ state: 'exited', exitCode: 0, signal: null });
    const output = (await vigil.processes.log(processId)).lines.join('\n');
    // The terminal echoes what is typed; cat prints it again.
    expect(output.match(/one/g)).toHaveLength(2);
    expect(output.match(/two/g)).toHaveLength(2);
  });

  raceIt('releases its terminal and its process when it ends, killed or not', async () => {
    await using vigil = workerHost();
    const { sid } = await openSession(vigil);
    // A plain command keeps the spawner (the terminals' holder) running through the test.
    const holder = vigil.processes.spawn({ sessionId: sid, command: 'read line' });
    const spawner = procStat(await startedPid(vigil, holder.processId))!.ppid;
    const before = terminalMasters(spawner);
    const ended = vigil.processes.spawn({ sessionId: sid, command: 'echo short', pty: true });
    const killed = vigil.processes.spawn({
      sessionId: sid,
      command: 'sleep 60 & echo started; wait',
      pty: true,
    });
    await outputContains(vigil, killed.processId, 'started');
    expect(terminalMasters(spawner)).toBeGreaterThan(before);
    const pid = await startedPid(vigil, killed.processId);
    await expect(vigil.processes.kill(killed.processId)).resolves.toMatchObject({ state: 'killed' });
    await vigil.processes.wait(ended.processId);
    expect(liveMembers(pid)).toEqual([]);
    expect(terminalMasters(spawner)).toBe(before);
    await vigil.processes.write(holder.processId, '\n');
    await vigil.processes.wait(holder.processId);
  });

  it('rejects bad sizes, a size without pty, and a resize of a command without a terminal', async () => {
    await using vigil = inThreadVigil();
    const { sid } = await openSession(vigil);
    for (const [input, field] of [
      [{ pty: true, cols: 0 }, 'cols'],
      [{ pty: true, rows: 1001 }, 'rows'],
      [{ pty: true, cols: 1.5 }, 'cols'],
      [{ cols: 100 }, 'cols'],
      [{ pty: false, rows: 40 }, 'rows'],
    ] as const) {
      expect(() => vigil.processes.spawn({ sessionId: sid, command: 'true', ...input })).toThrow(
        expect.objectContaining({
          code: 'ERR_INVALID_INPUT',
          message: expect.stringContaining(field),
          details: { field },
        }),
      );
    }
    const piped = vigil.processes.spawn({ sessionId: sid, command: 'read line' });
    expect(() => vigil.processes.resize(piped.processId, { cols: 100, rows: 40 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT', message: expect.stringMatching(/without pty/) }),
    );
    const terminal = vigil.processes.spawn({ sessionId: sid, command: 'read line', pty: true });
    expect(() => vigil.processes.resize(terminal.processId, { cols: 0, rows: 40 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT', details: { field: 'cols' } }),
    );
    await vigil.processes.kill(piped.processId);
    await vigil.processes.kill(terminal.processId);
  });

  it("is refused with processes.spawner 'direct', which has no process to hold it", async () => {
    await using vigil = inThreadVigil({ processes: { spawner: 'direct' } });
    const { sid } = await openSession(vigil);
    expect(() => vigil.processes.spawn({ sessionId: sid, command: 'true', pty: true })).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_INPUT',
        details: { field: 'pty' },
        message: expect.stringMatching(/processes\.spawner is 'direct'/),
      }),
    );
  });
});

describe('stdin', () => {
  raceIt('ends cat with write + eof: exit 0, the data echoed', async () => {
    await using vigil = workerHost();
    const { sid } = await openSession(vigil);
    const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'cat' });
    await vigil.processes.write(processId, 'hello\nworld', { eof: true });
    const { process } = await vigil.processes.wait(processId);
    expect(process).toMatchObject({ state: 'exited', exitCode: 0 });
    expect(await lines(vigil, processId)).toEqual(['hello', 'world']);
    await expect(vigil.processes.write(processId, 'late')).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
    });
  });

  raceIt('closes stdin on its own (EOF), idempotently; a later write is refused', async () => {
    await using vigil = workerHost();
    const { sid } = await openSession(vigil);
    const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'cat; echo cat-ended' });
    await vigil.processes.write(processId, 'data\n');
    vigil.processes.closeStdin(processId);
    vigil.processes.closeStdin(processId);
    await expect(vigil.processes.write(processId, 'more\n')).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      message: expect.stringMatching(/stdin is closed/),
    });
    const { process } = await vigil.processes.wait(processId);
    expect(process).toMatchObject({ state: 'exited', exitCode: 0 });
    expect(await lines(vigil, processId)).toEqual(['data', 'cat-ended']);
    expect(() => vigil.processes.closeStdin(processId)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT', message: expect.stringMatching(/exited/) }),
    );
  });

  for (const pty of [false, true]) {
    raceIt(
      `holds neither a kill nor another process's write while a command never reads (pty: ${pty})`,
      async () => {
        await using vigil = workerHost({ stdin: { maxPendingBytes: 2.5 * (1 << 20) } });
        const { sid } = await openSession(vigil);
        // A terminal in raw mode takes a few KiB, then refuses more (in line mode it discards them).
        const command = pty
          ? 'stty raw -echo; echo never-reads; exec sleep 60'
          : 'echo never-reads; exec sleep 60';
        const sleeper = vigil.processes.spawn({ sessionId: sid, command, pty });
        const cat = vigil.processes.spawn({ sessionId: sid, command: 'cat', pty });
        await outputContains(vigil, sleeper.processId, 'never-reads');
        // More than a pipe (64 KiB) or a terminal holds: neither write can complete.
        const payload = 'x'.repeat(1 << 20);
        const pending = Promise.allSettled([
          vigil.processes.write(sleeper.processId, payload),
          vigil.processes.write(sleeper.processId, payload),
        ]);
        await expect(vigil.processes.write(sleeper.processId, payload)).rejects.toMatchObject({
          code: 'ERR_LIMIT_EXCEEDED',
          message: expect.stringMatching(/stdin\.maxPendingBytes/),
          details: { field: 'data' },
        });
        await vigil.processes.write(cat.processId, 'through\n');
        await outputContains(vigil, cat.processId, 'through');
        const pid = await startedPid(vigil, sleeper.processId);
        await expect(vigil.processes.kill(sleeper.processId)).resolves.toMatchObject({ state: 'killed' });
        expect(isDead(pid)).toBe(true);
        for (const write of await pending) {
          expect(write).toMatchObject({
            status: 'rejected',
            reason: { code: 'ERR_INVALID_INPUT', message: expect.stringMatching(/being killed/) },
          });
        }
        await vigil.processes.write(cat.processId, '', { eof: true });
        await expect(vigil.processes.wait(cat.processId)).resolves.toMatchObject({
          process: { state: 'exited', exitCode: 0 },
        });
      },
    );
  }
});
