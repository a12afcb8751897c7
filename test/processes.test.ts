import { HEARTBEAT_FLOOR_MS, type NotificationOf, type TapeEvent, type Vigil } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import {
  leakedResources,
  nextEvent,
  record,
  resources,
  settledThreads,
  workerVigil,
} from './support/fixtures.js';
import { isDead, osThreads } from './support/proc.js';
import {
  childHandles,
  diesWithin,
  HOSTS,
  Inbox,
  newSessionId,
  readTape,
  tapeUntil,
  turns,
  untilChildHandles,
  within,
} from './support/processes.js';
import { raceIt } from './support/race.js';

/** Opens a session whose deliver is a recording `Inbox`. */
async function openSession(vigil: Vigil): Promise<{ sid: string; inbox: Inbox }> {
  const inbox = new Inbox();
  const sid = newSessionId();
  await vigil.sessions.open(sid, { deliver: inbox.deliver });
  return { sid, inbox };
}

const linesOf = (matches: readonly NotificationOf<'watch_match'>[]): string[] =>
  matches.flatMap((n) => n.data.lines);
const expectCode = (code: string, text?: string) =>
  expect.objectContaining({
    code,
    ...(text === undefined ? {} : { message: expect.stringContaining(text) }),
  });

for (const host of HOSTS) {
  describe(`processes on the ${host.name}`, () => {
    describe('completion', () => {
      it('ends in exited with one completion carrying the output, and process.exited as its last event (G7)', async () => {
        await using vigil = host.make();
        const { sid, inbox } = await openSession(vigil);
        // What a reader sees at the moment the exit is announced.
        const atExit: { state: string; lastSeq: number }[] = [];
        vigil.on('process:exited', (info) => {
          if (info.sessionId !== sid) return;
          atExit.push({
            state: vigil.processes.get(info.processId).state,
            lastSeq: vigil.sessions.get(sid).lastSeq,
          });
        });
        const exited = nextEvent(vigil, 'process:exited', (info) => info.sessionId === sid);

        const { processId, state } = vigil.processes.spawn({
          sessionId: sid,
          command: 'echo hello; echo oops >&2; exit 3',
        });
        expect(state).toBe('running');
        const [info] = await exited;
        expect(info).toMatchObject({ processId, state: 'exited', exitCode: 3, signal: null });
        expect(atExit).toHaveLength(1);
        expect(atExit[0]!.state).toBe('exited');

        const completion = await inbox.of(processId, 'completion');
        expect(completion.data).toMatchObject({ state: 'exited', exitCode: 3 });
        expect(completion.data.outputTail).toEqual(expect.stringContaining('hello'));
        expect(completion.data.outputTail).toEqual(expect.stringContaining('oops'));
        expect(completion.id).toBe(`${processId}:completion`);

        await vigil.sessions.close(sid);
        expect(inbox.ackedFor(processId)).toEqual([completion]);
        const tape = await readTape(vigil, sid);
        const own = tape.filter((event) => event.processId === processId);
        expect(own[0]?.type).toBe('process.started');
        expect(own.at(-1)?.type).toBe('process.exited');
        expect(own.filter((event) => event.type === 'process.exited')).toHaveLength(1);
        // The terminal state and the final tape event became visible together.
        const final = tape.find((event) => event.seq === atExit[0]!.lastSeq);
        expect(final).toMatchObject({ type: 'process.exited', processId, seq: completion.seq });
      });

      raceIt('completes at the exit of the child even while a grandchild holds stdout (G6)', async () => {
        await using vigil = host.make();
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'sleep 60 & echo $!' });
        const completion = await inbox.of(processId, 'completion');
        const { process: info } = await vigil.processes.wait(processId);
        expect(info).toMatchObject({ state: 'exited', exitCode: 0 });
        const grandchild = Number(String(completion.data.outputTail).trim());
        expect(grandchild).toBeGreaterThan(1);
        try {
          expect(isDead(grandchild)).toBe(false);
          // The child exited, but its group lives on in the grandchild: closing the session ends it.
          await vigil.sessions.close(sid);
          expect(await diesWithin(grandchild, 2_000)).toBe(true);
        } finally {
          try {
            process.kill(grandchild, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      });
    });

    describe('kill', () => {
      it('kills a running process: state killed and exactly one completion', async () => {
        await using vigil = host.make();
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'sleep 60' });
        const info = await vigil.processes.kill(processId);
        expect(info).toMatchObject({ state: 'killed', signal: 'SIGTERM', exitCode: null });
        expect(info.reason).toContain('SIGTERM');
        const completion = await inbox.of(processId, 'completion');
        expect(completion.data).toMatchObject({ state: 'killed', signal: 'SIGTERM' });
        await vigil.sessions.close(sid);
        expect(inbox.ackedFor(processId, 'completion')).toHaveLength(1);
      });

      it('escalates to SIGKILL after killGraceMs for a shell that ignores SIGTERM', async () => {
        await using vigil = host.make({ processes: { killGraceMs: 200 } });
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: "trap '' TERM; echo armed; sleep 60",
          watch: ['armed'],
        });
        // The trap is set once "armed" is printed.
        await inbox.of(processId, 'watch_match');
        const started = Date.now();
        const info = await vigil.processes.kill(processId);
        expect(Date.now() - started).toBeGreaterThanOrEqual(190);
        expect(info).toMatchObject({ state: 'killed', signal: 'SIGKILL' });
        await inbox.of(processId, 'completion');
      });

      raceIt('a kill racing the natural exit yields one process.exited and one completion', async () => {
        await using vigil = host.make();
        const { sid, inbox } = await openSession(vigil);
        const exits = record(vigil, 'process:exited');
        const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'exit 0' });
        const info = await vigil.processes.kill(processId);
        expect(['killed', 'exited']).toContain(info.state);
        await inbox.of(processId, 'completion');
        await vigil.sessions.close(sid);
        expect(exits.filter(([exit]) => exit.processId === processId)).toHaveLength(1);
        expect(inbox.ackedFor(processId, 'completion')).toHaveLength(1);
        const tape = await readTape(vigil, sid);
        expect(tape.filter((e) => e.type === 'process.exited' && e.processId === processId)).toHaveLength(1);
      });
    });

    describe('wait and poll (G10)', () => {
      it('poll never consumes; wait times out on a running process and consumes after the exit', async () => {
        await using vigil = host.make();
        const sid = newSessionId();
        await vigil.sessions.open(sid); // no deliver: the completion stays undelivered
        const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'read x; echo done' });

        const timedOut = await vigil.processes.wait(processId, { timeoutMs: 30 });
        expect(timedOut.timedOut).toBe(true);
        expect(timedOut.process).toMatchObject({ state: 'running', completionConsumed: false });

        const exited = nextEvent(vigil, 'process:exited', (info) => info.processId === processId);
        await vigil.processes.write(processId, 'go\n');
        await exited;
        for (let i = 0; i < 2; i++) {
          const polled = vigil.processes.poll(processId);
          expect(polled.process).toMatchObject({ state: 'exited', exitCode: 0, completionConsumed: false });
          expect(polled.tail).toContain('done');
        }
        expect(vigil.processes.get(processId).completionConsumed).toBe(false);

        const waited = await vigil.processes.wait(processId, { timeoutMs: 5_000 });
        expect(waited).toMatchObject({
          timedOut: false,
          process: { state: 'exited', completionConsumed: true },
        });
        expect(vigil.processes.get(processId).completionConsumed).toBe(true);
      });

      raceIt('wait withdraws a completion whose delivery has not succeeded yet', async () => {
        await using vigil = host.make({ delivery: { retry: { initialDelayMs: 200 } } });
        const { sid, inbox } = await openSession(vigil);
        let waited = false;
        // Every attempt before the wait fails, so the completion is still undelivered when wait reads the exit.
        inbox.failWhen = (n) => (n.type === 'completion' && !waited ? 'reject' : undefined);
        const failed = nextEvent(vigil, 'delivery:failed');
        const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'echo out' });
        const [failure] = await failed;
        expect(failure.notification).toMatchObject({ processId, type: 'completion' });

        const { process: info } = await vigil.processes.wait(processId);
        waited = true;
        const callsAtWait = inbox.calls.length;
        expect(info.completionConsumed).toBe(true);

        const id = `${processId}:completion`;
        const tape = await tapeUntil(vigil, sid, (events) =>
          events.some((e) => e.type === 'notification.withdrawn' && e.data.notificationId === id),
        );
        expect(tape.some((e) => e.type === 'notification.delivered' && e.data.notificationId === id)).toBe(
          false,
        );
        await vigil.sessions.close(sid);
        expect(inbox.calls.length).toBe(callsAtWait);
        expect(inbox.acked.filter((n) => n.id === id)).toEqual([]);
      });
    });

    describe('delivery (G9)', () => {
      raceIt(
        'delivers every notification exactly once, in tape order, while a third of deliver calls fail',
        async () => {
          await using vigil = host.make({
            delivery: { retry: { initialDelayMs: 1, maxDelayMs: 4 } },
            watch: { cooldownMs: 0 },
          });
          const { sid, inbox } = await openSession(vigil);
          inbox.failWhen = (_n, call) => (call % 3 !== 0 ? undefined : call % 6 === 0 ? 'throw' : 'reject');
          const failures = record(vigil, 'delivery:failed');
          const ids = Array.from(
            { length: 5 },
            (_, i) =>
              vigil.processes.spawn({
                sessionId: sid,
                command: `echo 'tick ${i}'; echo 'tock ${i}'; exit ${i}`,
                watch: ['tick'],
              }).processId,
          );
          await Promise.all(ids.map((id) => inbox.of(id, 'completion')));
          await vigil.sessions.close(sid);

          const tape = await readTape(vigil, sid);
          const expected = tape
            .filter(
              (e) => e.type === 'watch.match' || (e.type === 'process.exited' && ids.includes(e.processId!)),
            )
            .map((e) => e.seq);
          const acked = inbox.acked;
          expect(new Set(acked.map((n) => n.id)).size).toBe(acked.length);
          expect(acked.map((n) => n.seq)).toEqual(expected); // each once, in tape order
          expect(acked.filter((n) => n.type === 'watch_match')).toHaveLength(ids.length);
          const failedCalls = inbox.calls.length - acked.length;
          expect(failedCalls).toBeGreaterThan(0);
          expect(failures).toHaveLength(failedCalls);
          const ackedIds = new Set(acked.map((n) => n.id));
          for (const [failure] of failures) expect(ackedIds.has(failure.notification.id)).toBe(true);
          const delivered = tape.filter((e) => e.type === 'notification.delivered').map((e) => e.data.seqOf);
          expect(delivered).toEqual(expected);
        },
      );
    });

    describe('watch patterns (G8)', () => {
      it('matches substrings and regexes with flags on whole lines', async () => {
        await using vigil = host.make({ watch: { cooldownMs: 0 } });
        const { sid, inbox } = await openSession(vigil);
        const { processId, watch } = vigil.processes.spawn({
          sessionId: sid,
          command:
            "printf 'boot\\nserver READY on 8080\\nnoise\\nLISTENING on Port 80\\nlistening on port 80 (again)\\n'",
          watch: ['READY', { regex: '^listening on port \\d+$', flags: 'i' }],
        });
        expect(watch).toEqual(['READY', '/^listening on port \\d+$/i']);
        await inbox.of(processId, 'completion');
        const matches = inbox.ackedFor(processId, 'watch_match');
        expect(matches.length).toBeGreaterThan(0);
        expect(linesOf(matches)).toEqual(['server READY on 8080', 'LISTENING on Port 80']);
        expect(matches[0]!.data.pattern).toBe('"READY"');
      });

      it('assembles a line split across two writes before matching', async () => {
        await using vigil = host.make();
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: "printf 'RE'; read x; printf 'ADY\\n'",
          watch: ['READY'],
          heartbeatMs: 1_000,
        });
        // The heartbeat proves the poller has already consumed the first half on its own.
        await inbox.of(processId, 'heartbeat', (n) => n.data.output === 'RE');
        expect(inbox.ackedFor(processId, 'watch_match')).toEqual([]);
        await vigil.processes.write(processId, 'go\n');
        await inbox.of(processId, 'completion');
        const matches = inbox.ackedFor(processId, 'watch_match');
        expect(matches).toHaveLength(1);
        expect(matches[0]!.data).toMatchObject({ lines: ['READY'], hit: 1, suppressed: 0 });
      });

      it('delivers each match with cooldownMs 0', async () => {
        await using vigil = host.make({ watch: { cooldownMs: 0 } });
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: "echo 'HIT 1'; read a; echo 'HIT 2'; read b",
          watch: ['HIT'],
        });
        await inbox.of(processId, 'watch_match');
        await vigil.processes.write(processId, '\n');
        const second = await inbox.of(processId, 'watch_match', (n) => linesOf([n]).includes('HIT 2'));
        expect(second.data).toMatchObject({ lines: ['HIT 2'], suppressed: 0, hit: 2 });
        await vigil.processes.write(processId, '\n');
        await inbox.of(processId, 'completion');
      });

      it('drops a match inside the cooldown window and reports it as suppressed on the next one', async () => {
        const cooldownMs = 1_000;
        await using vigil = host.make({ watch: { cooldownMs } });
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: "echo 'HIT 1'; read a; echo 'HIT 2'; read b; echo 'HIT 3'; read c",
          watch: ['HIT'],
          heartbeatMs: 1_000,
        });
        const first = await inbox.of(processId, 'watch_match');
        expect(first.data).toMatchObject({ lines: ['HIT 1'], suppressed: 0, hit: 1 });
        await vigil.processes.write(processId, '\n');
        // A heartbeat carrying "HIT 2" proves the poller has offered that line to the rate limiter.
        await inbox.of(processId, 'heartbeat', (n) => String(n.data.output).includes('HIT 2'));
        expect(inbox.ackedFor(processId, 'watch_match')).toHaveLength(1);
        // The window is the thing under test: wait it out (it opened no later than the match's event).
        await new Promise((resolve) =>
          setTimeout(resolve, Math.max(0, first.at + cooldownMs + 20 - Date.now())),
        );
        await vigil.processes.write(processId, '\n');
        const third = await inbox.of(processId, 'watch_match', (n) => linesOf([n]).includes('HIT 3'));
        expect(third.data).toMatchObject({ lines: ['HIT 3'], suppressed: 1, hit: 2 });
        await vigil.processes.write(processId, '\n');
        await inbox.of(processId, 'completion');
      });

      it('disables watching at the first strike with strikeLimit 1, and falls back to notify-on-exit', async () => {
        await using vigil = host.make({ watch: { cooldownMs: 60_000, strikeLimit: 1 } });
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: "echo 'HIT 1'; read a; echo 'HIT 2'; read b",
          watch: ['HIT'],
          notifyOnComplete: false,
        });
        await inbox.of(processId, 'watch_match');
        await vigil.processes.write(processId, '\n');
        const disabled = await inbox.of(processId, 'watch_disabled');
        expect(disabled.data).toMatchObject({ reason: 'strikes', suppressed: 1 });
        expect(vigil.processes.get(processId).watching).toBe(false);
        await vigil.processes.write(processId, '\n');
        const completion = await inbox.of(processId, 'completion');
        expect(completion.data).toMatchObject({ state: 'exited', exitCode: 0 });
        await vigil.sessions.close(sid);
        expect(inbox.ackedFor(processId).map((n) => n.type)).toEqual([
          'watch_match',
          'watch_disabled',
          'completion',
        ]);
      });

      it('disables watching after lifetimeMaxHits delivered matches', async () => {
        await using vigil = host.make({ watch: { cooldownMs: 0, lifetimeMaxHits: 2 } });
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: "echo 'HIT 1'; read a; echo 'HIT 2'; read b; echo 'HIT 3'",
          watch: ['HIT'],
        });
        await inbox.of(processId, 'watch_match');
        await vigil.processes.write(processId, '\n');
        const disabled = await inbox.of(processId, 'watch_disabled');
        expect(disabled.data).toMatchObject({ reason: 'lifetime' });
        await vigil.processes.write(processId, '\n');
        const completion = await inbox.of(processId, 'completion');
        expect(completion.data.outputTail).toEqual(expect.stringContaining('HIT 3'));
        await vigil.sessions.close(sid);
        expect(inbox.ackedFor(processId).map((n) => n.type)).toEqual([
          'watch_match',
          'watch_match',
          'watch_disabled',
          'completion',
        ]);
        expect(linesOf(inbox.ackedFor(processId, 'watch_match'))).toEqual(['HIT 1', 'HIT 2']);
      });
    });

    describe('heartbeats', () => {
      it('sends the output since the last heartbeat, and nothing while there is none', async () => {
        await using vigil = host.make();
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: 'echo first; read a; echo second; read b',
          heartbeatMs: 1_000,
        });
        const first = await inbox.of(processId, 'heartbeat');
        expect(first.data.output).toBe('first\n');
        // The heartbeat timer is under test: two periods pass without output.
        await new Promise((resolve) => setTimeout(resolve, 2_200));
        expect(inbox.ackedFor(processId, 'heartbeat')).toHaveLength(1);
        await vigil.processes.write(processId, '\n');
        const second = await inbox.of(processId, 'heartbeat', (n) => n.id !== first.id);
        expect(second.data.output).toBe('second\n');
        await vigil.processes.write(processId, '\n');
        await inbox.of(processId, 'completion');
      });
    });

    describe('log', () => {
      it('pages the output by lines', async () => {
        await using vigil = host.make();
        const { sid } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'seq 1 200' });
        await vigil.processes.wait(processId);
        const lines: string[] = [];
        for (let offset = 0; offset < 200; offset += 50) {
          const page = await vigil.processes.log(processId, { offset, limit: 50 });
          expect(page).toMatchObject({ processId, offset, totalLines: 200, hasMore: offset + 50 < 200 });
          lines.push(...page.lines);
        }
        expect(lines).toEqual(Array.from({ length: 200 }, (_, i) => String(i + 1)));
        await expect(vigil.processes.log(processId, { offset: 200, limit: 50 })).resolves.toMatchObject({
          lines: [],
          hasMore: false,
        });
        await expect(vigil.processes.log(processId, { limit: 0 })).rejects.toThrow(
          expectCode('ERR_INVALID_INPUT', 'limit'),
        );
      });

      it('keeps matching and logging through binary output and invalid UTF-8', async () => {
        await using vigil = host.make();
        const { sid, inbox } = await openSession(vigil);
        const { processId } = vigil.processes.spawn({
          sessionId: sid,
          command: "head -c 2048 /dev/urandom; printf '\\n\\377\\376 READY\\n'",
          watch: ['READY'],
        });
        const match = await inbox.of(processId, 'watch_match');
        expect(match.data.lines).toEqual(['\uFFFD\uFFFD READY']);
        await inbox.of(processId, 'completion');
        expect(vigil.processes.get(processId).outputBytes).toBe(2048 + 10);
        const log = await vigil.processes.log(processId, { limit: 1000 });
        expect(log.lines.at(-1)).toBe('\uFFFD\uFFFD READY');
      });
    });

    describe('bad input', () => {
      it('ends a command that cannot start in failed_start, naming the command or cwd, with a completion', async () => {
        await using vigil = host.make();
        const { sid, inbox } = await openSession(vigil);
        const cases = [
          { input: { command: ['/nonexistent/bin'] }, names: '/nonexistent/bin' },
          { input: { command: 'true', cwd: '/nonexistent/dir' }, names: '/nonexistent/dir' },
        ];
        for (const { input, names } of cases) {
          const { processId } = vigil.processes.spawn({ sessionId: sid, ...input });
          const completion = await inbox.of(processId, 'completion');
          expect(completion.data).toMatchObject({ state: 'failed_start' });
          const info = vigil.processes.get(processId);
          expect(info.state).toBe('failed_start');
          expect(info.reason).toContain(names);
        }
      });
    });
  });
}

describe('spawn input and process errors', () => {
  it('refuses invalid patterns with ERR_INVALID_PATTERN naming them', async () => {
    await using vigil = HOSTS[1]!.make();
    const { sid } = await openSession(vigil);
    expect(() =>
      vigil.processes.spawn({ sessionId: sid, command: 'true', watch: [{ regex: 'a(b' }] }),
    ).toThrow(expectCode('ERR_INVALID_PATTERN', 'a(b'));
    expect(() =>
      vigil.processes.spawn({ sessionId: sid, command: 'true', watch: ['ok', { regex: 'x', flags: 'gq' }] }),
    ).toThrow(expectCode('ERR_INVALID_PATTERN', 'watch[1]'));
    expect(vigil.processes.list({ sessionId: sid })).toEqual([]);
  });

  it('refuses malformed input with ERR_INVALID_INPUT naming the field', async () => {
    await using vigil = HOSTS[1]!.make();
    const { sid } = await openSession(vigil);
    expect(() => vigil.processes.spawn({ sessionId: sid, command: 'true', bogus: 1 } as never)).toThrow(
      expectCode('ERR_INVALID_INPUT', 'bogus'),
    );
    expect(() => vigil.processes.spawn({ sessionId: sid, command: '' })).toThrow(
      expectCode('ERR_INVALID_INPUT', 'command'),
    );
    expect(() => vigil.processes.spawn({ sessionId: sid, command: [] })).toThrow(
      expectCode('ERR_INVALID_INPUT', 'command'),
    );
    expect(vigil.processes.list({ sessionId: sid })).toEqual([]);
  });

  it('refuses a heartbeat shorter than its floor, naming heartbeatMs', async () => {
    await using vigil = HOSTS[1]!.make();
    const { sid } = await openSession(vigil);
    expect(() =>
      vigil.processes.spawn({ sessionId: sid, command: 'true', heartbeatMs: HEARTBEAT_FLOOR_MS - 1 }),
    ).toThrow(expectCode('ERR_INVALID_INPUT', 'heartbeatMs'));
    expect(vigil.processes.list({ sessionId: sid })).toEqual([]);
    const { processId } = vigil.processes.spawn({
      sessionId: sid,
      command: 'true',
      heartbeatMs: HEARTBEAT_FLOOR_MS,
    });
    await vigil.processes.wait(processId);
  });

  it('refuses unknown and closed sessions, unknown processes and spawns beyond maxPerSession', async () => {
    await using vigil = HOSTS[1]!.make({ processes: { maxPerSession: 2 } });
    const { sid } = await openSession(vigil);
    expect(() => vigil.processes.spawn({ sessionId: 'no-such-session', command: 'true' })).toThrow(
      expectCode('ERR_UNKNOWN_SESSION'),
    );
    expect(() => vigil.processes.get('proc_000000000000')).toThrow(expectCode('ERR_UNKNOWN_PROCESS'));
    await expect(vigil.processes.kill('proc_000000000000')).rejects.toThrow(
      expectCode('ERR_UNKNOWN_PROCESS'),
    );
    await expect(vigil.processes.write('proc_000000000000', 'x')).rejects.toThrow(
      expectCode('ERR_UNKNOWN_PROCESS'),
    );

    const a = vigil.processes.spawn({ sessionId: sid, command: 'read x' });
    vigil.processes.spawn({ sessionId: sid, command: 'read x' });
    expect(() => vigil.processes.spawn({ sessionId: sid, command: 'read x' })).toThrow(
      expectCode('ERR_LIMIT_EXCEEDED', 'maxPerSession'),
    );
    await vigil.processes.write(a.processId, '\n');
    await vigil.processes.wait(a.processId);
    // A finished process frees its slot, and its stdin is closed.
    vigil.processes.spawn({ sessionId: sid, command: 'read x' });
    await expect(vigil.processes.write(a.processId, 'late\n')).rejects.toThrow(
      expectCode('ERR_INVALID_INPUT'),
    );

    await vigil.sessions.close(sid);
    expect(() => vigil.processes.spawn({ sessionId: sid, command: 'true' })).toThrow(
      expectCode('ERR_SESSION_CLOSED'),
    );
  });
});

for (const host of HOSTS) {
  describe(`session close on the ${host.name} (G2)`, () => {
    raceIt(
      'kills running processes, ends the tape with session.closed and delivers nothing after',
      async () => {
        await using vigil = host.make({ processes: { killGraceMs: 200 } });
        const { sid, inbox } = await openSession(vigil);
        const plain = vigil.processes.spawn({ sessionId: sid, command: 'sleep 60' }).processId;
        const watched = vigil.processes.spawn({
          sessionId: sid,
          command: 'echo up; read x',
          watch: ['up'],
          heartbeatMs: 1_000,
        }).processId;
        await inbox.of(watched, 'watch_match');

        await vigil.sessions.close(sid);
        const callsAtClose = inbox.calls.length;
        for (const processId of [plain, watched]) {
          expect(vigil.processes.get(processId).state).toBe('killed');
        }
        const tape = await readTape(vigil, sid);
        const last = tape.at(-1)!;
        expect(last.type).toBe('session.closed');
        expect(tape.filter((e) => e.type === 'session.closed')).toHaveLength(1);
        const exits = tape.filter((e: TapeEvent) => e.type === 'process.exited');
        expect(exits.map((e) => e.processId).sort()).toEqual([plain, watched].sort());

        await turns(10);
        expect(inbox.calls.length).toBe(callsAtClose);
      },
    );

    raceIt('keeps a keepOnSessionClose process running until vigil.close()', async () => {
      await using vigil = host.make();
      const { sid } = await openSession(vigil);
      const kept = vigil.processes.spawn({ sessionId: sid, command: 'sleep 60', keepOnSessionClose: true });
      const killed = vigil.processes.spawn({ sessionId: sid, command: 'sleep 60' });
      await vigil.sessions.close(sid);
      // Their pids are known by now: the spawner reported `kept`'s start before `killed`'s exit.
      const keptPid = vigil.processes.get(kept.processId).pid!;
      const killedPid = vigil.processes.get(killed.processId).pid!;
      expect(vigil.processes.get(kept.processId).state).toBe('running');
      expect(vigil.processes.get(killed.processId).state).toBe('killed');
      expect(isDead(keptPid)).toBe(false);
      await vigil.close();
      expect(isDead(keptPid)).toBe(true);
      expect(isDead(killedPid)).toBe(true);
    });
  });
}

describe('session close with a wedged poller (worker host)', () => {
  // A watched process that exited while its poller had not yet reported `drained` is finished by
  // the close itself, not awaited forever.
  raceIt('resolves even when a watched process exited before its output was drained (G1, G2)', async () => {
    await using fixture = workerVigil({ stopTimeoutMs: 300, shutdownTimeoutMs: 1_000 });
    const { vigil, faults } = fixture;
    const { sid } = await openSession(vigil);
    const baseline = childHandles();
    await faults.inject(sid, 'spin');
    const { processId } = vigil.processes.spawn({ sessionId: sid, command: 'read x', watch: ['never'] });
    await vigil.processes.write(processId, '\n');
    // The child exited and its pipes closed; only the wedged poller's drain is missing.
    await untilChildHandles(baseline);
    const closed = await within(vigil.sessions.close(sid), 3_000, 'still closing after 3 s' as const);
    expect(closed).toMatchObject({ forced: true });
    expect(['exited', 'killed']).toContain(vigil.processes.get(processId).state);
  });
});

describe('resources', () => {
  for (const host of HOSTS) {
    raceIt(
      `leaves no child process, pipe or thread behind after vigil.close() on the ${host.name}`,
      async () => {
        const baseResources = resources();
        const baseThreads = osThreads();
        await using vigil = host.make({ processes: { killGraceMs: 200 } });
        const ids: string[] = [];
        for (let s = 0; s < 2; s++) {
          const { sid } = await openSession(vigil);
          const spawn = (input: object) =>
            vigil.processes.spawn({ sessionId: sid, ...input } as never).processId;
          const done = spawn({ command: 'echo a; exit 1' });
          spawn({ command: 'sleep 60' });
          spawn({ command: 'echo up; read x', watch: ['up'], heartbeatMs: 1_000 });
          spawn({ command: ['/nonexistent/bin'] });
          spawn({ command: 'sleep 60', keepOnSessionClose: true });
          const killed = spawn({ command: 'sleep 60' });
          await vigil.processes.wait(done);
          await vigil.processes.kill(killed);
          ids.push(sid);
        }
        // Children run (started by the spawner process, whose handle is the one this process holds).
        expect(vigil.stats().processes).toBeGreaterThan(0);
        expect(resources().ProcessWrap ?? 0).toBeGreaterThanOrEqual(1);
        await vigil.sessions.close(ids[0]!);
        await vigil.close();
        expect(vigil.stats()).toMatchObject({ processes: 0, sessions: 0 });
        expect(await settledThreads(baseThreads)).toBe(baseThreads);
        expect(await leakedResources(baseResources)).toEqual({});
      },
    );
  }
});
