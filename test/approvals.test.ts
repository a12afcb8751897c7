import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
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

describe('answering approvals without an id', () => {
  raceIt(
    'approve for this session runs a later identical command at once; a different one still asks',
    async () => {
      await using fixture = workerVigil();
      const { vigil } = fixture;
      await vigil.sessions.open('grant');
      const file = marker();
      const command = `echo ran >> ${file}`;
      const first = vigil.processes.spawn({ sessionId: 'grant', command, requireApproval: true });
      const answer = vigil.approvals.respondHead('grant', 'approve_session');
      expect(answer).toMatchObject({ approvalId: first.approvalId, outcome: 'approved' });
      await vigil.processes.wait(first.processId);
      const versionBefore = vigil.approvals.snapshot('grant').version;
      const again = vigil.processes.spawn({ sessionId: 'grant', command, requireApproval: true });
      // No pending card: it is running as it returns, and its approval took one version.
      expect(again.state).toBe('running');
      expect(vigil.approvals.snapshot('grant')).toMatchObject({
        head: null,
        count: 0,
        version: versionBefore + 1,
      });
      const { process: done } = await vigil.processes.wait(again.processId);
      expect(done).toMatchObject({ state: 'exited', exitCode: 0 });
      expect(readFileSync(file, 'utf8')).toBe('ran\nran\n');
      expect(await typesOf(vigil, 'grant', again.processId)).toEqual([
        'approval.requested',
        'approval.resolved:approved',
        'process.started',
        'process.exited',
      ]);
      const { events } = await vigil.tape.read('grant', { limit: 1000 });
      const resolved = events.filter((e) => e.type === 'approval.resolved').map((e) => e.data);
      expect(resolved).toMatchObject([
        { approvalId: first.approvalId, decision: 'approve_session' },
        { approvalId: again.approvalId, grantedBy: first.approvalId },
      ]);

      const other = vigil.processes.spawn({
        sessionId: 'grant',
        command: `${command} # other`,
        requireApproval: true,
      });
      expect(other.state).toBe('pending_approval');
      expect(vigil.approvals.snapshot('grant')).toMatchObject({
        count: 1,
        head: { processId: other.processId },
      });
      expect(vigil.approvals.respondHead('grant', 'deny').outcome).toBe('denied');
      const { process: denied } = await vigil.processes.wait(other.processId);
      expect(denied.state).toBe('denied');
      expect(readFileSync(file, 'utf8')).toBe('ran\nran\n');
    },
  );

  raceIt('answers the oldest pending command on a head response; the next one stays pending', async () => {
    await using fixture = workerVigil();
    const { vigil } = fixture;
    await vigil.sessions.open('head');
    const older = vigil.processes.spawn({ sessionId: 'head', command: 'echo older', requireApproval: true });
    const newer = vigil.processes.spawn({ sessionId: 'head', command: 'echo newer', requireApproval: true });
    const seen = vigil.approvals.snapshot('head');
    expect(vigil.approvals.respondHead('head', 'approve', { version: seen.version })).toMatchObject({
      approvalId: older.approvalId,
      snapshot: { head: { approvalId: newer.approvalId }, count: 1 },
    });
    expect((await vigil.processes.wait(older.processId)).process).toMatchObject({
      state: 'exited',
      exitCode: 0,
    });
    expect(vigil.processes.get(newer.processId).state).toBe('pending_approval');
    // The card that showed `older` cannot approve `newer`.
    expect(() => vigil.approvals.respondHead('head', 'approve', { version: seen.version })).toThrow(
      expect.objectContaining({ code: 'ERR_STALE_VERSION' }),
    );
    expect(vigil.processes.get(newer.processId).state).toBe('pending_approval');
  });

  raceIt('approves N pending commands in one version bump; every one of them runs', async () => {
    await using fixture = workerVigil();
    const { vigil } = fixture;
    await vigil.sessions.open('all');
    const spawned = Array.from({ length: 6 }, (_, i) =>
      vigil.processes.spawn({ sessionId: 'all', command: `echo step-${i}`, requireApproval: true }),
    );
    const seen: ApprovalSnapshot[] = [];
    const off = vigil.approvals.subscribe('all', (s) => void seen.push(s));
    const { resolved, snapshot } = vigil.approvals.respondAll('all', 'approve');
    off();
    expect(resolved.map((r) => r.approvalId)).toEqual(spawned.map((p) => p.approvalId));
    expect(seen.map((s) => [s.version, s.count])).toEqual([
      [6, 6],
      [7, 0],
    ]);
    expect(snapshot).toEqual(seen[1]);
    const ended = await Promise.all(spawned.map((p) => vigil.processes.wait(p.processId)));
    expect(ended.map((e) => [e.process.state, e.process.exitCode])).toEqual(Array(6).fill(['exited', 0]));
  });

  raceIt('gives a slow subscriber the latest snapshot and at most its backlog of older ones', async () => {
    await using fixture = workerVigil({ approvals: { subscriberBacklog: 3 } });
    const { vigil } = fixture;
    await vigil.sessions.open('slow');
    const received: ApprovalSnapshot[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let caughtUp!: () => void;
    const latest = new Promise<void>((resolve) => {
      caughtUp = resolve;
    });
    const target = 61; // 40 requests, 20 head answers, one resolve-all
    vigil.approvals.subscribe('slow', async (snapshot) => {
      received.push(snapshot);
      if (snapshot.version === target) caughtUp();
      await held;
    });
    for (let i = 0; i < 20; i++) {
      vigil.processes.spawn({ sessionId: 'slow', command: `echo ${i}`, requireApproval: true });
      vigil.processes.spawn({ sessionId: 'slow', command: `echo ${i}-b`, requireApproval: true });
      vigil.approvals.respondHead('slow', 'deny');
    }
    vigil.approvals.respondAll('slow', 'deny');
    expect(vigil.approvals.snapshot('slow')).toMatchObject({ count: 0, version: target });
    release();
    await latest;
    expect(received.map((s) => s.version)).toEqual([0, 59, 60, 61]);
    expect(received.at(-1)).toEqual(vigil.approvals.snapshot('slow'));
  });
});
