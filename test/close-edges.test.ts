import { describe, expect, it } from 'vitest';
import { workerVigil } from './support/fixtures.js';

describe('closing edge cases', () => {
  it('finishes a kept process that exited before its wedged poller could drain it', async () => {
    await using fixture = workerVigil({ stopTimeoutMs: 200 });
    const { vigil, faults } = fixture;
    await vigil.sessions.open('keep');
    await faults.inject('keep', 'spin');
    const { processId } = vigil.processes.spawn({
      sessionId: 'keep',
      command: 'echo WATCHED line; exit 0',
      watch: ['WATCHED'],
      keepOnSessionClose: true,
    });
    // The child ends; its output can never be drained by the stuck poller.
    await expect(vigil.processes.wait(processId, { timeoutMs: 300 })).resolves.toMatchObject({
      timedOut: true,
    });
    await vigil.sessions.close('keep');
    const { process, timedOut } = await vigil.processes.wait(processId, { timeoutMs: 5_000 });
    expect(timedOut).toBe(false);
    expect(process).toMatchObject({ state: 'exited', exitCode: 0 });
    expect(vigil.stats().processes).toBe(0);
  });

  it('kills what is left with SIGKILL at vigil.close, without waiting out a long kill grace', async () => {
    await using fixture = workerVigil({ shutdownTimeoutMs: 300, processes: { killGraceMs: 60_000 } });
    const { vigil } = fixture;
    await vigil.sessions.open('stubborn');
    const { processId } = vigil.processes.spawn({
      sessionId: 'stubborn',
      command: "trap '' TERM; echo armed; while true; do sleep 1; done",
      watch: ['armed'],
    });
    await vigil.processes.wait(processId, { timeoutMs: 200 });
    const started = Date.now();
    await vigil.close();
    // A liveness bound, not a benchmark: far below the 60 s grace the child would otherwise get.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('refuses an unknown kill signal and does not mark the process as killed', async () => {
    await using fixture = workerVigil();
    const { vigil } = fixture;
    await vigil.sessions.open('signals');
    const { processId } = vigil.processes.spawn({ sessionId: 'signals', command: 'read line; exit 0' });
    await expect(
      vigil.processes.kill(processId, { signal: 'SIGBOGUS' as NodeJS.Signals }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      message: expect.stringContaining('signal'),
    });
    await vigil.processes.write(processId, 'done\n');
    const { process } = await vigil.processes.wait(processId);
    expect(process).toMatchObject({ state: 'exited', exitCode: 0 });
  });
});
