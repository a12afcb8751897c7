import type { Vigil } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import { nextEvent } from './support/fixtures.js';
import { isDead, procStat } from './support/proc.js';
import { diesWithin, HOSTS, newSessionId, startedPid } from './support/processes.js';
import { raceIt } from './support/race.js';

const host = HOSTS[1]!;

/** Spawns `command` and resolves with its pid, once `process.started` carries it. */
async function started(vigil: Vigil, sessionId: string, command: string) {
  const { processId } = vigil.processes.spawn({ sessionId, command });
  return { processId, pid: await startedPid(vigil, processId) };
}

describe('the spawner process (processes.spawner: helper)', () => {
  raceIt('starts each child from a small helper, in its own group, and kills the group', async () => {
    await using vigil = host.make();
    const sid = newSessionId('spawner');
    await vigil.sessions.open(sid);
    const { processId, pid } = await started(vigil, sid, 'sleep 60');
    const stat = procStat(pid);
    expect(stat).toMatchObject({ pgid: pid });
    // Forked by the helper, not by this process: this process's size does not slow the fork.
    expect(stat?.ppid).not.toBe(process.pid);
    expect(procStat(stat!.ppid)).toMatchObject({ ppid: process.pid });
    expect(vigil.processes.get(processId).pid).toBe(pid);
    await expect(vigil.processes.kill(processId)).resolves.toMatchObject({ state: 'killed' });
    expect(isDead(pid)).toBe(true);
  });

  it('ignores SIGTERM (vigil ends the groups) and exits when vigil closes', async () => {
    const vigil = host.make();
    const sid = newSessionId('spawner');
    await vigil.sessions.open(sid);
    const { processId, pid } = await started(vigil, sid, 'sleep 60');
    const helper = procStat(pid)!.ppid;
    expect(helper).not.toBe(process.pid);
    process.kill(helper, 'SIGTERM');
    // Still there to report the exit of what it runs.
    await expect(vigil.processes.kill(processId)).resolves.toMatchObject({ state: 'killed' });
    expect(isDead(helper)).toBe(false);
    await vigil.close();
    expect(isDead(helper)).toBe(true);
  });

  it('kills what a dead helper ran, says so, and starts a new helper for the next spawn', async () => {
    await using vigil = host.make();
    const sid = newSessionId('spawner');
    await vigil.sessions.open(sid);
    const { processId, pid } = await started(vigil, sid, 'sleep 60 & sleep 60');
    const helper = procStat(pid)!.ppid;
    expect(helper).not.toBe(process.pid);
    const error = nextEvent(vigil, 'error');
    process.kill(helper, 'SIGKILL');
    const [reported] = await error;
    expect(reported).toMatchObject({
      code: 'ERR_INTERNAL',
      message: expect.stringMatching(/spawner process exited/),
    });
    await expect(vigil.processes.wait(processId)).resolves.toMatchObject({
      process: { state: 'exited', signal: 'SIGKILL' },
    });
    expect(await diesWithin(pid)).toBe(true);
    const next = await started(vigil, sid, 'sleep 60');
    expect(procStat(next.pid)?.ppid).not.toBe(helper);
    await expect(vigil.processes.kill(next.processId)).resolves.toMatchObject({ state: 'killed' });
  });

  it('forks children from vigil itself with processes.spawner: direct', async () => {
    await using vigil = host.make({ processes: { spawner: 'direct' } });
    const sid = newSessionId('spawner');
    await vigil.sessions.open(sid);
    const spawned = vigil.processes.spawn({ sessionId: sid, command: 'sleep 60' });
    expect(procStat(spawned.pid!)).toMatchObject({ ppid: process.pid, pgid: spawned.pid });
    await expect(vigil.processes.kill(spawned.processId)).resolves.toMatchObject({ state: 'killed' });
  });
});
