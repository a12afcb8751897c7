import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workerVigil } from './support/fixtures.js';
import {
  childHandles,
  diesWithin,
  HOSTS,
  Inbox,
  newSessionId,
  untilChildHandles,
} from './support/processes.js';
import { raceIt } from './support/race.js';

/** Quiet watch limits: every match delivered, nothing disabled. */
const OPEN_WATCH = { cooldownMs: 0, lifetimeMaxHits: 1_000_000, breaker: { maxMatches: 1_000_000 } };

for (const host of HOSTS) {
  describe(`spooled output on the ${host.name}`, () => {
    it('matches the line after a \\r progress bar of several MB, and completes', async () => {
      await using vigil = host.make({ watch: OPEN_WATCH });
      const inbox = new Inbox();
      const sid = newSessionId('spool');
      await vigil.sessions.open(sid, { deliver: inbox.deliver });
      const { processId } = vigil.processes.spawn({
        sessionId: sid,
        // 4 MB of progress without a newline, then the line that matters.
        command: `awk 'BEGIN { for (i = 0; i < 100000; i++) printf "\\rprogress %5d of 100000 ......", i; print ""; print "DONE building" }'`,
        watch: ['DONE'],
      });
      const match = await inbox.of(processId, 'watch_match');
      expect(match.data.lines).toEqual(['DONE building']);
      const completion = await inbox.of(processId, 'completion');
      expect(completion.data).toMatchObject({ state: 'exited', exitCode: 0 });
      expect(completion.data.outputBytes).toBeGreaterThan(3_000_000);
    });

    it('completes a process that prints a 3 MB line without a newline, with a heartbeat of its end', async () => {
      await using vigil = host.make();
      const inbox = new Inbox();
      const sid = newSessionId('spool');
      await vigil.sessions.open(sid, { deliver: inbox.deliver });
      const { processId } = vigil.processes.spawn({
        sessionId: sid,
        command: `head -c 3145728 /dev/zero | tr '\\0' 'z'; read x`,
        watch: ['never there'],
        heartbeatMs: 1_000,
      });
      // The heartbeat carries the end of what was read: the poller got through the whole line.
      const beat = await inbox.of(processId, 'heartbeat', (n) => n.data.toOffset === 3145728);
      expect(beat.data.output).toBe('z'.repeat(2000));
      await vigil.processes.write(processId, '\n');
      const completion = await inbox.of(processId, 'completion');
      expect(completion.data).toMatchObject({ state: 'exited', exitCode: 0, outputBytes: 3145728 });
      expect(inbox.ackedFor(processId, 'watch_match')).toEqual([]);
    });

    it('keeps the head and the tail of a process past output.maxBytes, and counts what it dropped', async () => {
      await using vigil = host.make({ output: { maxBytes: 1 << 20 }, watch: OPEN_WATCH });
      const inbox = new Inbox();
      const sid = newSessionId('spool');
      await vigil.sessions.open(sid, { deliver: inbox.deliver });
      const { processId } = vigil.processes.spawn({
        sessionId: sid,
        command: `echo FIRST line; head -c 8388608 /dev/zero | tr '\\0' '.' | fold -w 99; echo; echo LAST line`,
        watch: ['FIRST', 'LAST'],
      });
      const completion = await inbox.of(processId, 'completion');
      const lines = inbox.ackedFor(processId, 'watch_match').flatMap((n) => n.data.lines);
      expect(lines[0]).toBe('FIRST line');
      expect(lines.at(-1)).toBe('LAST line');
      expect(completion.data.outputDropped).toBeGreaterThan(7 << 20);
      const info = vigil.processes.get(processId);
      expect(info.outputDropped).toBe(completion.data.outputDropped);
      expect(info.outputBytes - info.outputDropped).toBeLessThanOrEqual((1 << 20) + (1 << 16));
      const page = await vigil.processes.log(processId, { limit: 1000 });
      expect(page.droppedBytes).toBe(info.outputDropped);
      expect(page.lines.at(-1)).toBe('LAST line');
      expect((await vigil.processes.log(processId, { offset: 0, limit: 1 })).lines).toEqual(['FIRST line']);
    });

    it('deletes the spool of a forgotten process, and keeps only the newest finished processes', async () => {
      await using vigil = host.make({ processes: { maxFinishedPerSession: 2 } });
      const inbox = new Inbox();
      const sid = newSessionId('spool');
      await vigil.sessions.open(sid, { deliver: inbox.deliver });
      const spawned = [];
      for (let i = 0; i < 4; i++) {
        const info = vigil.processes.spawn({ sessionId: sid, command: `echo run ${i}` });
        spawned.push(info);
        await inbox.of(info.processId, 'completion');
      }
      expect(vigil.processes.list({ sessionId: sid }).map((p) => p.processId)).toEqual(
        spawned.slice(2).map((p) => p.processId),
      );
      expect(spawned.map((p) => existsSync(p.outputPath))).toEqual([false, false, true, true]);
    });

    it('removes every spool and its temporary directory at vigil.close()', async () => {
      const vigil = host.make();
      const inbox = new Inbox();
      const sid = newSessionId('spool');
      await vigil.sessions.open(sid, { deliver: inbox.deliver });
      const running = vigil.processes.spawn({
        sessionId: sid,
        command: 'echo started; sleep 30',
        keepOnSessionClose: true,
      });
      const done = vigil.processes.spawn({ sessionId: sid, command: 'echo done' });
      await inbox.of(done.processId, 'completion');
      const folder = dirname(done.outputPath);
      // An ended process's exit status lies next to its spool (see Re-adoption in the README).
      expect(readdirSync(folder).sort()).toEqual(
        [`${done.processId}.out`, `${done.processId}.out.exit`, `${running.processId}.out`].sort(),
      );
      await vigil.close();
      expect(existsSync(folder)).toBe(false);
    });
  });
}

describe('spooled output on the worker host', () => {
  raceIt(
    'never stops a child, even while its poller is wedged: 200 MB with a watch pattern are written and the child exits',
    async () => {
      await using fixture = workerVigil({ stopTimeoutMs: 200, output: { maxBytes: 8 << 20 } });
      const { vigil, faults } = fixture;
      const sid = newSessionId('spool');
      await vigil.sessions.open(sid);
      const baseline = childHandles();
      await faults.inject(sid, 'spin');
      const { processId, outputPath } = vigil.processes.spawn({
        sessionId: sid,
        command: `head -c 209715200 /dev/zero | tr '\\0' 'x'`,
        watch: ['ERROR'],
      });
      const exited = vigil.processes.wait(processId, { timeoutMs: 20_000 });
      // With pause-based backpressure the child would block after a few hundred KB: it writes it all.
      const watcher = watch(outputPath);
      try {
        while (vigil.processes.get(processId).outputBytes < 209715200) await once(watcher, 'change');
      } finally {
        watcher.close();
      }
      // It wrote everything, so it started: its pid is known.
      expect(await diesWithin(vigil.processes.get(processId).pid!)).toBe(true);
      // vigil saw the exit (the child's handle is gone); only the wedged poller's drain is missing.
      await untilChildHandles(baseline);
      expect(vigil.processes.get(processId)).toMatchObject({ outputBytes: 209715200, state: 'running' });
      // Its poller is stuck, so the process waits for the drain: the close ends it.
      await vigil.sessions.close(sid);
      const { process: ended } = await exited;
      expect(ended).toMatchObject({ state: 'exited', exitCode: 0 });
    },
  );

  raceIt(
    'resumes from the committed cursor when its thread dies mid-stream: no match lost or repeated',
    async () => {
      await using fixture = workerVigil({ watch: OPEN_WATCH }, { pool: { minThreads: 1, maxThreads: 1 } });
      const { vigil, faults } = fixture;
      const inbox = new Inbox();
      const sid = newSessionId('spool');
      await vigil.sessions.open(sid, { deliver: inbox.deliver });
      const { processId } = vigil.processes.spawn({
        sessionId: sid,
        command: `for i in $(seq 1 400); do echo "HIT $i"; if [ $i -eq 200 ]; then read x; fi; done`,
        watch: ['HIT'],
      });
      await inbox.of(processId, 'watch_match', (n) => n.data.lines.includes('HIT 200'));
      await faults.inject(sid, 'exit');
      await vigil.processes.write(processId, 'go\n');
      await inbox.of(processId, 'completion');
      const hits = inbox.ackedFor(processId, 'watch_match').flatMap((n) => n.data.lines);
      expect(hits).toEqual(Array.from({ length: 400 }, (_, i) => `HIT ${i + 1}`));
      expect(vigil.sessions.get(sid).poller.restarts).toBe(1);
    },
  );
});

describe('a state directory', () => {
  it('keeps spools in <stateDir>/spool, refuses a spawn naming the path when it cannot write there, and loses no running output', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'vigil-state-'));
    try {
      await using vigil = HOSTS[1]!.make({ stateDir, watch: OPEN_WATCH });
      const inbox = new Inbox();
      const sid = newSessionId('state');
      await vigil.sessions.open(sid, { deliver: inbox.deliver });
      const running = vigil.processes.spawn({
        sessionId: sid,
        command: 'echo BEFORE; read x; echo AFTER the loss',
        watch: ['BEFORE', 'AFTER'],
      });
      expect(dirname(running.outputPath)).toBe(join(stateDir, 'spool'));
      // Its poller reads the spool: the folder goes away under a running process.
      await inbox.of(running.processId, 'watch_match');
      rmSync(stateDir, { recursive: true, force: true });
      expect(() => vigil.processes.spawn({ sessionId: sid, command: 'echo never' })).toThrow(
        expect.objectContaining({
          code: 'ERR_SPOOL',
          message: expect.stringContaining(join(stateDir, 'spool')),
        }),
      );
      await vigil.processes.write(running.processId, '\n');
      const match = await inbox.of(running.processId, 'watch_match', (n) => n.data.lines[0] !== 'BEFORE');
      expect(match.data.lines).toEqual(['AFTER the loss']);
      const completion = await inbox.of(running.processId, 'completion');
      expect(completion.data.outputTail).toBe('BEFORE\nAFTER the loss\n');
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('frees the disk of what a process dropped', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'vigil-state-'));
    try {
      await using vigil = HOSTS[1]!.make({ stateDir, output: { maxBytes: 1 << 20 } });
      const inbox = new Inbox();
      const sid = newSessionId('state');
      await vigil.sessions.open(sid, { deliver: inbox.deliver });
      const { processId, outputPath } = vigil.processes.spawn({
        sessionId: sid,
        command: 'head -c 16777216 /dev/zero',
      });
      await inbox.of(processId, 'completion');
      expect(vigil.processes.get(processId).outputDropped).toBeGreaterThanOrEqual(15 << 20);
      // The punch runs a small program: the blocks go once it is done.
      for (let i = 0; i < 200 && statSync(outputPath).blocks * 512 > 2 << 20; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(statSync(outputPath).blocks * 512).toBeLessThanOrEqual(2 << 20);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
