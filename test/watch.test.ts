import { createVigil, type Notification, type NotificationOf, type Vigil } from '@vigil/core';
import { createWorkerHost } from '@vigil/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { nextEvent, workerVigil } from './support/fixtures.js';
import { raceIt } from './support/race.js';
import { Recorder } from './support/recorder.js';

/** A deliver that records notifications and lets a test await a given one. */
function inbox() {
  const recorder = new Recorder<Notification>();
  return { got: recorder.items, deliver: recorder.push, next: recorder.next.bind(recorder) };
}

const leaked: Vigil[] = [];
afterAll(async () => {
  await Promise.all(leaked.map((vigil) => vigil.close()));
});

describe('a delivered completion is final for its process', () => {
  raceIt('delivers matches before the completion and nothing for the process after it', async () => {
    await using fixture = workerVigil({ watch: { cooldownMs: 0, lifetimeMaxHits: 1000 } });
    const { vigil } = fixture;
    const box = inbox();
    await vigil.sessions.open('s', { deliver: box.deliver });
    // Matching lines right before the exit: the race that delivered a match after the completion.
    const { processId } = vigil.processes.spawn({
      sessionId: 's',
      command: 'for i in 1 2 3; do echo "ERROR $i"; done; printf \'ERROR last\'; exit 1',
      watch: ['ERROR'],
    });
    const completion = await box.next((n) => n.type === 'completion');
    await vigil.processes.wait(processId);
    expect(vigil.processes.get(processId).completionConsumed).toBe(true);
    const types = box.got.filter((n) => n.processId === processId).map((n) => n.type);
    expect(types.at(-1)).toBe('completion');
    expect(types.filter((t) => t === 'watch_match').length).toBeGreaterThanOrEqual(1);
    const lines = box.got.filter((n) => n.type === 'watch_match').flatMap((n) => n.data.lines);
    expect(lines).toEqual(['ERROR 1', 'ERROR 2', 'ERROR 3', 'ERROR last']);
    const { events } = await vigil.tape.read('s', { limit: 1000 });
    const own = events.filter((e) => e.processId === processId);
    expect(own.at(-1)?.type).toBe('process.exited');
    expect(own.at(-1)?.seq).toBe(completion.seq);
  });
});

describe('no leaked poller, no global queue, dedup in the session outbox', () => {
  it('leaves sessions open on purpose, as an earlier test that forgot its cleanup would', async () => {
    const earlier = createVigil({ host: createWorkerHost(), watch: { cooldownMs: 0 } });
    leaked.push(earlier);
    for (const id of ['0abe5e79', 'ec783fb7', 'sid_watch_dedup']) {
      await earlier.sessions.open(id, {
        deliver: (n) => {
          throw new Error(`leaked session ${id} received ${n.id}`);
        },
      });
      earlier.processes.spawn({ sessionId: id, command: 'read line; echo "$line"', watch: ['app.log'] });
    }
    expect(earlier.stats().sessions).toBe(3);
  });

  raceIt(
    'delivers two distinct matches and one exact replay exactly twice, across a thread restart',
    async () => {
      await using fixture = workerVigil(
        { watch: { cooldownMs: 0 } },
        { pool: { minThreads: 1, maxThreads: 1 } },
      );
      const { vigil, faults } = fixture;
      const box = inbox();
      const foreign: string[] = [];
      for (const other of leaked)
        other.on('delivery:failed', ({ notification }) => foreign.push(notification.id));
      await vigil.sessions.open('sid_watch_dedup', { deliver: box.deliver });
      const { processId } = vigil.processes.spawn({
        sessionId: 'sid_watch_dedup',
        command: "read go; echo 'tail -f app.log: match one'; echo 'tail -f app.log: match two'; read done",
        watch: ['app.log'],
      });
      // The poller detects both matches, then its thread dies before committing them, so the
      // restarted poller detects the same two again: an exact replay of the batch.
      await faults.inject('sid_watch_dedup', 'exit-before-commit');
      const restarted = nextEvent(
        vigil,
        'poller:started',
        (info) => info.sessionId === 'sid_watch_dedup' && info.restart,
      );
      await vigil.processes.write(processId, 'go\n');
      await restarted;
      await box.next((n) => n.type === 'watch_match' && n.data.lines.includes('tail -f app.log: match two'));
      await vigil.processes.write(processId, 'done\n');
      await box.next((n) => n.type === 'completion');
      const matches = box.got.filter((n) => n.type === 'watch_match');
      expect(matches.flatMap((n) => n.data.lines)).toEqual([
        'tail -f app.log: match one',
        'tail -f app.log: match two',
      ]);
      expect(new Set(box.got.map((n) => n.id)).size).toBe(box.got.length);
      expect(box.got.every((n) => n.sessionId === 'sid_watch_dedup')).toBe(true);
      expect(foreign).toEqual([]);
    },
  );
});

describe('catastrophic regex', () => {
  raceIt(
    'terminates the stuck thread, disables that pattern with a reason, and keeps everything else going',
    async () => {
      await using fixture = workerVigil(
        { watch: { cooldownMs: 0, matchTimeoutMs: 300, patternTimeoutLimit: 1 } },
        { pool: { pollersPerThread: 1, minThreads: 0, maxThreads: 4 } },
      );
      const { vigil } = fixture;
      const victim = inbox();
      const bystander = inbox();
      await vigil.sessions.open('victim', { deliver: victim.deliver });
      await vigil.sessions.open('bystander', { deliver: bystander.deliver });
      let ticks = 0;
      let ticking = true;
      const tick = (): void => {
        ticks++;
        if (ticking) setImmediate(tick);
      };
      tick();
      const evil = vigil.processes.spawn({
        sessionId: 'victim',
        command: `printf '%s\\n' "$(printf 'a%.0s' $(seq 1 40))b"; read go; echo 'still watched'`,
        // Under `u` it cannot run in linear time (Node 20), so it backtracks.
        watch: [{ regex: '^(a+)+$', flags: 'u' }, 'still watched'],
      });
      const disabled = await victim.next((n) => n.type === 'watch_disabled');
      expect(disabled.data.reason).toBe('pattern_timeout');
      expect(disabled.data.message).toContain('/^(a+)+$/u');
      expect(ticks).toBeGreaterThan(10);

      const calm = vigil.processes.spawn({ sessionId: 'bystander', command: 'echo READY', watch: ['READY'] });
      await bystander.next((n) => n.type === 'watch_match' && n.processId === calm.processId);

      await vigil.processes.write(evil.processId, 'go\n');
      const later = await victim.next((n) => n.type === 'watch_match');
      expect(later.data.lines).toEqual(['still watched']);
      await victim.next((n) => n.type === 'completion');
      ticking = false;
      expect(vigil.sessions.get('victim').poller.restarts).toBeGreaterThanOrEqual(1);
    },
  );
});

describe('grandchild holding the pipe (G6)', () => {
  it('completes from the child exit, not from end-of-pipe', async () => {
    await using fixture = workerVigil();
    const { vigil } = fixture;
    const box = inbox();
    await vigil.sessions.open('g', { deliver: box.deliver });
    const { processId } = vigil.processes.spawn({ sessionId: 'g', command: 'sleep 60 & echo $!' });
    const completion = await box.next((n) => n.type === 'completion');
    expect(completion.data).toMatchObject({ exitCode: 0, state: 'exited' });
    // End-of-pipe would come only when the grandchild dies: it is still alive at the completion.
    const grandchild = Number(String(completion.data.outputTail).trim());
    expect(() => process.kill(grandchild, 0)).not.toThrow();
    expect(vigil.processes.get(processId).state).toBe('exited');
  });
});

describe('a child faster than its poller', () => {
  raceIt('matches every line of a child that writes faster than its poller, from the spool', async () => {
    await using fixture = workerVigil({
      watch: {
        cooldownMs: 0,
        lifetimeMaxHits: 1_000_000,
        maxLinesPerMatch: 1000,
        breaker: { maxMatches: 1_000_000 },
      },
    });
    const { vigil } = fixture;
    const box = inbox();
    await vigil.sessions.open('fast', { deliver: box.deliver });
    // 4 MB of output, written at the child's own speed; every 2,000th line matches.
    const { processId } = vigil.processes.spawn({
      sessionId: 'fast',
      command: `awk 'BEGIN { for (i = 1; i <= 40000; i++) { if (i % 2000 == 0) print "HIT " i; else printf "%0100d\\n", i } }'`,
      watch: ['HIT'],
    });
    await box.next((n) => n.type === 'completion' && n.processId === processId);
    const hits = box.got.filter((n) => n.type === 'watch_match').flatMap((n) => n.data.lines);
    expect(hits).toEqual(Array.from({ length: 20 }, (_, i) => `HIT ${(i + 1) * 2000}`));
    expect(vigil.processes.get(processId).outputBytes).toBeGreaterThan(4_000_000);
  });
});

describe('truncation is not suppression', () => {
  it('delivers four 30-line bursts in four windows, each cut to 20 lines, with no drop and no strike', async () => {
    const cooldownMs = 200;
    await using fixture = workerVigil({ watch: { cooldownMs, strikeLimit: 3, maxLinesPerMatch: 20 } });
    const { vigil } = fixture;
    const box = inbox();
    await vigil.sessions.open('bursts', { deliver: box.deliver });
    // Each burst is one write of 30 matching lines; the next waits for a line on stdin.
    const burst = (b: number) => `printf 'ERROR ${b}.%s\\n' $(seq 1 30); read x`;
    const { processId } = vigil.processes.spawn({
      sessionId: 'bursts',
      command: [1, 2, 3, 4].map(burst).join('; '),
      watch: ['ERROR'],
    });
    for (let b = 1; b <= 4; b++) {
      const match = await box.next(
        (n): n is NotificationOf<'watch_match'> => n.type === 'watch_match' && n.data.hit === b,
      );
      expect(match.data.lines).toEqual(Array.from({ length: 20 }, (_, i) => `ERROR ${b}.${i + 1}`));
      expect(match.data).toMatchObject({ truncated: true, suppressed: 0 });
      // The next burst comes in a window of its own: wait this one out (it opened by the match's event).
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, match.at + cooldownMs + 20 - Date.now())),
      );
      await vigil.processes.write(processId, '\n');
    }
    await box.next((n) => n.type === 'completion');
    expect(box.got.filter((n) => n.type === 'watch_match')).toHaveLength(4);
    expect(box.got.filter((n) => n.type === 'watch_disabled')).toEqual([]);
  });
});

describe('the global breaker tells the agents', () => {
  raceIt(
    'notifies each affected session once when it trips and once when it releases, with the drops',
    async () => {
      const pauseMs = 3_000;
      await using fixture = workerVigil({
        watch: { cooldownMs: 0, breaker: { maxMatches: 2, windowMs: 60_000, pauseMs } },
      });
      const { vigil } = fixture;
      const boxes = { a: inbox(), b: inbox(), quiet: inbox() };
      for (const [sid, box] of Object.entries(boxes))
        await vigil.sessions.open(sid, { deliver: box.deliver });
      // Three matches in session a: the third trips the breaker (more than 2 in the window).
      for (let i = 1; i <= 3; i++)
        vigil.processes.spawn({ sessionId: 'a', command: `echo HIT a${i}`, watch: ['HIT'] });
      const pausedA = await boxes.a.next((n) => n.type === 'watch_paused');
      // A match of session b inside the pause: b is affected too, and hears of it at its first drop.
      vigil.processes.spawn({ sessionId: 'b', command: 'echo HIT b1', watch: ['HIT'] });
      const pausedB = await boxes.b.next((n) => n.type === 'watch_paused');
      expect(pausedB.id).toBe(pausedA.id);
      expect(pausedA.processId).toBeNull();
      expect(pausedA.data.message).toContain('paused');
      const resumedA = await boxes.a.next((n) => n.type === 'watch_resumed');
      const resumedB = await boxes.b.next((n) => n.type === 'watch_resumed');
      expect(resumedA.data).toMatchObject({ suppressed: 1, pausedMs: pauseMs });
      expect(resumedB.data).toMatchObject({ suppressed: 1, pausedMs: pauseMs });
      for (const box of [boxes.a, boxes.b]) {
        const kinds = box.got.filter((n) => n.processId === null).map((n) => n.type);
        expect(kinds).toEqual(['watch_paused', 'watch_resumed']);
      }
      expect(boxes.a.got.filter((n) => n.type === 'watch_match')).toHaveLength(2);
      expect(boxes.b.got.filter((n) => n.type === 'watch_match')).toEqual([]);
      expect(boxes.quiet.got).toEqual([]);
    },
  );
});
