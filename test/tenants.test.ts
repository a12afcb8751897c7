import type { Notification, NotificationOf, PollerExitedInfo, PollerStartedInfo, Vigil } from '@vigil/core';
import { describe, expect } from 'vitest';
import { inThreadVigil, nextEvent, workerVigil } from './support/fixtures.js';
import { raceIt } from './support/race.js';
import { Recorder } from './support/recorder.js';

/** A deliver that records notifications and lets a test await a given one. */
function inbox() {
  const recorder = new Recorder<Notification>();
  return { got: recorder.items, deliver: recorder.push, next: recorder.next.bind(recorder) };
}

/** A watch match of the process `processId`. */
function matchOf(processId: string) {
  return (n: Notification): n is NotificationOf<'watch_match'> =>
    n.type === 'watch_match' && n.processId === processId;
}

/** Every poller start and exit, per session, from now on. */
function pollerLives(vigil: Vigil) {
  const lives = new Map<string, (PollerStartedInfo | PollerExitedInfo)[]>();
  const add = (info: PollerStartedInfo | PollerExitedInfo): void => {
    lives.set(info.sessionId, [...(lives.get(info.sessionId) ?? []), info]);
  };
  vigil.on('poller:started', add);
  vigil.on('poller:exited', add);
  return (sessionId: string) => lives.get(sessionId) ?? [];
}

/** Exits of one session's poller, from a `pollerLives` record. */
function exits(lives: readonly (PollerStartedInfo | PollerExitedInfo)[]): PollerExitedInfo[] {
  return lives.filter((info): info is PollerExitedInfo => 'reason' in info);
}

/** A line that makes `(a+)+$` backtrack for years: 40 a's and a '!'. Then waits for `go`. */
const CATASTROPHE = `printf '%s!\\n' "$(printf 'a%.0s' $(seq 1 40))"; read go; echo 'evil done'`;

/** Opens the sessions `evil` and `calm`; then records their pollers' lives. */
async function evilAndCalm(vigil: Vigil) {
  const evil = inbox();
  const calm = inbox();
  await vigil.sessions.open('evil', { deliver: evil.deliver });
  await vigil.sessions.open('calm', { deliver: calm.deliver });
  return { evil, calm, shared: vigil.sessions.get('calm').poller.threadId, lives: pollerLives(vigil) };
}

/** One shared thread for every healthy session, so neighbours share it. */
const ONE_THREAD = { pool: { minThreads: 1, maxThreads: 1 } };

describe('catastrophic watch patterns (G18)', () => {
  raceIt(
    'runs a catastrophic pattern in linear time: its neighbour on the same thread is never restarted',
    async () => {
      await using fixture = workerVigil({ watch: { cooldownMs: 0, matchTimeoutMs: 300 } }, ONE_THREAD);
      const { vigil } = fixture;
      const { evil, calm, shared, lives } = await evilAndCalm(vigil);
      expect(vigil.sessions.get('evil').poller.threadId).toBe(shared);

      const bad = vigil.processes.spawn({
        sessionId: 'evil',
        command: CATASTROPHE,
        watch: [{ regex: '(a+)+$' }, 'evil done'],
      });
      const ready = vigil.processes.spawn({ sessionId: 'calm', command: 'echo READY', watch: ['READY'] });
      await calm.next(matchOf(ready.processId));
      // The catastrophic line was matched (and did not match): the poller went past it.
      await vigil.processes.write(bad.processId, 'go\n');
      const done = await evil.next(matchOf(bad.processId));
      expect(done.data.lines).toEqual(['evil done']);

      expect(lives('calm')).toEqual([]);
      expect(lives('evil')).toEqual([]);
      expect(evil.got.filter((n) => n.type === 'watch_disabled')).toEqual([]);
    },
  );

  raceIt(
    'isolates a pattern that cannot run in linear time, and refuses it after watch.patternTimeoutLimit timeouts',
    async () => {
      await using fixture = workerVigil({ watch: { cooldownMs: 0, matchTimeoutMs: 300 } }, ONE_THREAD);
      const { vigil } = fixture;
      const { evil, calm, shared, lives } = await evilAndCalm(vigil);

      // Under `u` (Node 20) it needs backtracking: the session's poller leaves the shared thread first.
      const pattern = { regex: '(a+)+$', flags: 'u' };
      const moved = nextEvent(vigil, 'poller:started', (info) => info.sessionId === 'evil');
      const bad = vigil.processes.spawn({
        sessionId: 'evil',
        command: CATASTROPHE,
        watch: [pattern, 'evil done'],
      });
      const [isolated] = await moved;
      expect(isolated.threadId).not.toBe(shared);

      const disabled = await evil.next((n) => n.type === 'watch_disabled');
      expect(disabled.data).toMatchObject({ reason: 'pattern_timeout', pattern: '/(a+)+$/u' });
      expect(disabled.data.message).toContain('2 times');
      const ready = vigil.processes.spawn({ sessionId: 'calm', command: 'echo READY', watch: ['READY'] });
      await calm.next(matchOf(ready.processId));
      expect(() =>
        vigil.processes.spawn({ sessionId: 'evil', command: 'true', watch: ['x', pattern] }),
      ).toThrow(
        expect.objectContaining({
          code: 'ERR_INVALID_PATTERN',
          message: expect.stringMatching(
            /^watch\[1\]: watch pattern \/\(a\+\)\+\$\/u is refused in this session/,
          ),
        }),
      );
      // Its other pattern still works.
      await vigil.processes.write(bad.processId, 'go\n');
      const done = await evil.next(matchOf(bad.processId));
      expect(done.data.lines).toEqual(['evil done']);

      expect(lives('calm')).toEqual([]);
      expect(exits(lives('evil')).map((info) => info.reason)).toEqual(['moved', 'terminated', 'terminated']);
      expect(vigil.sessions.get('calm').poller.threadId).toBe(shared);
    },
  );

  raceIt('refuses a pattern that cannot run in linear time when watch.regexEngine is linear', async () => {
    await using vigil = inThreadVigil({ watch: { regexEngine: 'linear' } });
    await vigil.sessions.open('strict');
    expect(() =>
      vigil.processes.spawn({ sessionId: 'strict', command: 'true', watch: ['ok', { regex: '(a)\\1' }] }),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_PATTERN',
        message: expect.stringMatching(
          /^watch\[1\]: \/\(a\)\\1\/ cannot run in linear time .* watch.regexEngine is 'linear'$/,
        ),
      }),
    );
    expect(() =>
      vigil.processes.spawn({ sessionId: 'strict', command: 'true', watch: [{ regex: '(a+)+$' }] }),
    ).not.toThrow();
  });
});

describe('faulty pollers (G18)', () => {
  raceIt('restarts a poller that throws alone: its thread and its neighbour keep running', async () => {
    await using fixture = workerVigil({}, ONE_THREAD);
    const { vigil, faults } = fixture;
    await vigil.sessions.open('victim');
    await vigil.sessions.open('bystander');
    const thread = vigil.sessions.get('bystander').poller.threadId;
    const lives = pollerLives(vigil);
    const back = nextEvent(vigil, 'poller:started', (info) => info.sessionId === 'victim');

    await faults.inject('victim', 'throw');
    const [restarted] = await back;

    expect(restarted).toMatchObject({ restart: true, threadId: thread });
    expect(exits(lives('victim'))).toMatchObject([{ reason: 'crashed', restartInMs: 0 }]);
    expect(exits(lives('victim'))[0]?.error?.message).toContain('injected poller fault');
    await expect(vigil.sessions.probe('bystander')).resolves.toMatchObject({ threadId: thread });
    expect(lives('bystander')).toEqual([]);
  });

  raceIt(
    'ends the thread of a wedged poller: its neighbours move at once, and the wedged session is quarantined with its back-off',
    async () => {
      await using fixture = workerVigil({ watch: { matchTimeoutMs: 200 } }, ONE_THREAD);
      const { vigil, faults } = fixture;
      const ids = ['wedged', 'n1', 'n2'];
      for (const id of ids) await vigil.sessions.open(id);
      const shared = vigil.sessions.get('n1').poller.threadId;
      const lives = pollerLives(vigil);
      const moved = ids.map((id) => nextEvent(vigil, 'poller:started', (info) => info.sessionId === id));

      await faults.inject('wedged', 'wedge');
      const [[wedged], [n1], [n2]] = (await Promise.all(moved)) as [
        [PollerStartedInfo],
        [PollerStartedInfo],
        [PollerStartedInfo],
      ];

      expect(exits(lives('n1'))).toMatchObject([{ reason: 'moved', restartInMs: 0 }]);
      expect(exits(lives('n2'))).toMatchObject([{ reason: 'moved', restartInMs: 0 }]);
      expect(exits(lives('wedged'))).toMatchObject([{ reason: 'terminated' }]);
      expect(n1?.threadId).toBe(n2?.threadId);
      expect(wedged?.threadId).not.toBe(n1?.threadId);
      expect(wedged?.threadId).not.toBe(shared);

      // In quarantine, it wedges no one else; a fault loop backs off.
      const again = nextEvent(vigil, 'poller:started', (info) => info.sessionId === 'wedged');
      await faults.inject('wedged', 'wedge');
      await again;
      const [, second] = exits(lives('wedged'));
      expect(second).toMatchObject({ reason: 'terminated' });
      expect(second?.restartInMs).toBeGreaterThan(0);
      expect(lives('n1')).toHaveLength(2);
      expect(lives('n2')).toHaveLength(2);
      await expect(vigil.sessions.probe('n1')).resolves.toMatchObject({ threadId: n1?.threadId });
    },
  );
});
