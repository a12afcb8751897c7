import type { TapeEvent, Vigil } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import { inThreadVigil, workerVigil } from './support/fixtures.js';
import { raceIt } from './support/race.js';

async function readAll(vigil: Vigil, sessionId: string, after = 0): Promise<TapeEvent[]> {
  const events: TapeEvent[] = [];
  let cursor = after;
  for (;;) {
    const page = await vigil.tape.read(sessionId, { after: cursor, limit: 1000 });
    events.push(...page.events);
    cursor = page.next;
    if (!page.hasMore) return events;
  }
}

/** Like a status poller: resolves on the first turn of the event loop that sees a terminal state. */
async function untilTerminal(vigil: Vigil, processId: string): Promise<void> {
  const terminal = new Set(['exited', 'killed', 'failed_start', 'denied', 'lost']);
  while (!terminal.has(vigil.processes.get(processId).state)) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('tape: the terminal state and its final event', () => {
  it('shows process.exited as the last event of a process whose terminal status a reader saw, 1,000 times', async () => {
    await using vigil = inThreadVigil({
      watch: { cooldownMs: 0, lifetimeMaxHits: 1_000_000 },
      processes: { maxPerSession: 64 },
    });
    await vigil.sessions.open('tape');
    const noisy = vigil.processes.spawn({
      sessionId: 'tape',
      command: 'i=0; while read line; do i=$((i+1)); echo "tick $i"; done',
      watch: ['tick'],
      heartbeatMs: 1_000,
    });
    let checked = 0;
    const rounds = 1000;
    const batch = 20;
    for (let start = 0; start < rounds; start += batch) {
      await Promise.all(
        Array.from({ length: batch }, async (_, i) => {
          // A concurrent writer: output and watch matches of another process keep landing on the tape.
          await vigil.processes.write(noisy.processId, `${start + i}\n`);
          const { processId } = vigil.processes.spawn({
            sessionId: 'tape',
            command: `echo "line of ${start + i}"; echo FINAL`,
            watch: ['FINAL'],
          });
          await untilTerminal(vigil, processId);
          const events = (await readAll(vigil, 'tape')).filter((e) => e.processId === processId);
          expect(events.at(-1)?.type).toBe('process.exited');
          checked++;
        }),
      );
    }
    expect(checked).toBe(rounds);
    await vigil.processes.kill(noisy.processId);
  }, 120_000);

  raceIt('resumes from every cursor with exactly the tail, and pages reassemble the tape', async () => {
    await using fixture = workerVigil();
    const { vigil } = fixture;
    await vigil.sessions.open('resume');
    const { processId } = vigil.processes.spawn({
      sessionId: 'resume',
      command: 'seq 1 30',
      watch: [{ regex: '^[0-9]*5$' }],
    });
    await vigil.processes.wait(processId);
    await vigil.sessions.close('resume');
    const all = await readAll(vigil, 'resume');
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    expect(all.at(-1)?.type).toBe('session.closed');
    for (let after = 0; after <= all.length; after++) {
      expect(await readAll(vigil, 'resume', after)).toEqual(all.slice(after));
    }
    const small: TapeEvent[] = [];
    let cursor = 0;
    for (;;) {
      const page = await vigil.tape.read('resume', { after: cursor, limit: 2 });
      small.push(...page.events);
      cursor = page.next;
      if (!page.hasMore) break;
    }
    expect(small).toEqual(all);
  });

  raceIt(
    'wakes a long-poll reader on the next append and ends a subscription at session.closed',
    async () => {
      await using fixture = workerVigil();
      const { vigil } = fixture;
      await vigil.sessions.open('wake');
      const { lastSeq } = await vigil.tape.read('wake');
      const waiting = vigil.tape.read('wake', { after: lastSeq, waitMs: 30_000 });
      const { processId } = vigil.processes.spawn({ sessionId: 'wake', command: 'true' });
      const page = await waiting;
      expect(page.events[0]).toMatchObject({ seq: lastSeq + 1, type: 'process.started', processId });
      const seen: string[] = [];
      const reading = (async () => {
        for await (const event of vigil.tape.subscribe('wake', { after: 0 })) seen.push(event.type);
      })();
      await vigil.processes.wait(processId);
      await vigil.sessions.close('wake');
      await reading;
      expect(seen.at(0)).toBe('session.opened');
      expect(seen.at(-1)).toBe('session.closed');
    },
  );

  it('reads a closed session up to session.closed and rejects bad cursors with typed errors', async () => {
    await using vigil = inThreadVigil();
    await vigil.sessions.open('closed');
    await vigil.sessions.close('closed');
    const page = await vigil.tape.read('closed');
    expect(page.events.map((e) => e.type)).toEqual(['session.opened', 'session.closed']);
    expect(page.closed).toBe(true);
    await expect(vigil.tape.read('closed', { after: 5 })).rejects.toMatchObject({
      code: 'ERR_INVALID_CURSOR',
    });
    await expect(vigil.tape.read('closed', { after: -1 })).rejects.toMatchObject({
      code: 'ERR_INVALID_CURSOR',
    });
    await expect(vigil.tape.read('closed', { after: 0.5 })).rejects.toMatchObject({
      code: 'ERR_INVALID_CURSOR',
    });
    await expect(vigil.tape.read('closed', { limit: 1001 })).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
    });
    await expect(vigil.tape.read('never-opened')).rejects.toMatchObject({ code: 'ERR_UNKNOWN_SESSION' });
  });
});
