import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApprovalSnapshot, Vigil } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import { inThreadVigil, workerVigil } from './support/fixtures.js';
import { raceIt } from './support/race.js';

function marker(): string {
  return join(mkdtempSync(join(tmpdir(), 'vigil-approval-')), 'ran');
}

async function typesOf(vigil: Vigil, sessionId: string, processId: string): Promise<string[]> {
  const { events } = await vigil.tape.read(sessionId, { limit: 1000 });
  return events
    .filter(
      (e) =>
        e.processId === processId ||
        ((e.type === 'approval.requested' || e.type === 'approval.resolved') &&
          e.data.processId === processId),
    )
    .map((e) => (e.type === 'approval.resolved' ? `${e.type}:${String(e.data.outcome)}` : e.type));
}

describe('approval-gated commands', () => {
  it('runs the command only after approval, with the approval on the tape first', async () => {
    await using fixture = workerVigil();
    const { vigil } = fixture;
    await vigil.sessions.open('gate');
    const file = marker();
    const process = vigil.processes.spawn({
      sessionId: 'gate',
      command: `touch ${file}; echo deployed`,
      requireApproval: true,
      description: 'deploy to staging',
    });
    expect(process.state).toBe('pending_approval');
    const snapshot = vigil.approvals.snapshot('gate');
    expect(snapshot).toMatchObject({
      count: 1,
      head: { processId: process.processId, description: 'deploy to staging' },
    });
    expect(existsSync(file)).toBe(false);
    expect(vigil.approvals.respond('gate', snapshot.head!.approvalId, 'approve')).toBe('approved');
    const { process: done } = await vigil.processes.wait(process.processId);
    expect(done).toMatchObject({ state: 'exited', exitCode: 0 });
    expect(existsSync(file)).toBe(true);
    expect(vigil.approvals.snapshot('gate')).toMatchObject({ head: null, count: 0 });
    expect(await typesOf(vigil, 'gate', process.processId)).toEqual([
      'approval.requested',
      'approval.resolved:approved',
      'process.started',
      'process.exited',
    ]);
  });

  for (const how of ['deny', 'expire', 'close', 'kill'] as const) {
    it(`ends as denied with its final event and never runs when the approval is ${how === 'close' ? 'cancelled by session close' : how === 'kill' ? 'killed' : how === 'deny' ? 'denied' : 'expired'}`, async () => {
      await using vigil = inThreadVigil({ approvals: { timeoutMs: how === 'expire' ? 30 : 0 } });
      const completions: string[] = [];
      await vigil.sessions.open('gate', { deliver: (n) => void completions.push(n.type) });
      const file = marker();
      const { processId } = vigil.processes.spawn({
        sessionId: 'gate',
        command: `touch ${file}`,
        requireApproval: true,
      });
      const approvalId = vigil.approvals.snapshot('gate').head!.approvalId;
      if (how === 'deny') vigil.approvals.respond('gate', approvalId, 'deny');
      if (how === 'close') await vigil.sessions.close('gate');
      if (how === 'kill') await vigil.processes.kill(processId);
      const { process } = await vigil.processes.wait(processId);
      expect(process.state).toBe('denied');
      expect(process.reason).toContain(
        { deny: 'denied', expire: 'expired', close: 'cancelled', kill: 'cancelled' }[how],
      );
      expect(existsSync(file)).toBe(false);
      const types = await typesOf(vigil, 'gate', processId);
      expect(types.at(-1)).toBe('process.exited');
      expect(types).not.toContain('process.started');
    });
  }

  it('rejects stale and unknown approval ids and bad decisions, resolving nothing', async () => {
    await using vigil = inThreadVigil();
    await vigil.sessions.open('gate');
    const first = vigil.approvals.request('gate', { command: 'rm -rf build' });
    const second = vigil.approvals.request('gate', { command: 'make release' });
    vigil.approvals.respond('gate', first.approvalId, 'approve');
    const before = vigil.approvals.snapshot('gate');
    expect(() => vigil.approvals.respond('gate', first.approvalId, 'deny')).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_APPROVAL' }),
    );
    expect(() => vigil.approvals.respond('gate', 'appr_000000000000', 'approve')).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_APPROVAL' }),
    );
    expect(() => vigil.approvals.respond('gate', second.approvalId, 'yes' as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT' }),
    );
    expect(() => vigil.approvals.snapshot('nobody')).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_SESSION' }),
    );
    expect(vigil.approvals.snapshot('gate')).toEqual(before);
    expect(before).toMatchObject({ count: 1, head: { approvalId: second.approvalId } });
  });

  raceIt('shows counts 1..8 in order to a subscriber under eight concurrent requests (G13)', async () => {
    await using vigil = inThreadVigil();
    await vigil.sessions.open('burst');
    for (let round = 0; round < 200; round++) {
      const seen: ApprovalSnapshot[] = [];
      const off = vigil.approvals.subscribe('burst', (s) => void seen.push(s));
      let go!: () => void;
      const barrier = new Promise<void>((resolve) => {
        go = resolve;
      });
      const requests = Array.from({ length: 8 }, async (_, i) => {
        await barrier;
        return vigil.approvals.request('burst', { command: `step ${i}` });
      });
      go();
      const made = await Promise.all(requests);
      expect(seen.slice(1).map((s) => s.count)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(seen.slice(1).every((s) => s.head?.approvalId === made[0]?.approvalId)).toBe(true);
      off();
      for (const { approvalId } of made) vigil.approvals.respond('burst', approvalId, 'deny');
    }
  });
});
