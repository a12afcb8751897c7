import { describe, expect } from 'vitest';
import {
  leakedResources,
  nextEvent,
  record,
  resources,
  runNodeScript,
  settledThreads,
  workerVigil,
} from './support/fixtures.js';
import { osThreads } from './support/proc.js';
import { raceIt } from './support/race.js';

const STOP_MS = 300;

describe('worker host lifecycle', () => {
  raceIt('stops a poller cooperatively and its thread stays for the others (G1)', async () => {
    await using fixture = workerVigil({ stopTimeoutMs: STOP_MS }, { pool: { minThreads: 2, maxThreads: 2 } });
    const { vigil } = fixture;
    await vigil.sessions.open('a');
    await vigil.sessions.open('b');
    const exited = nextEvent(vigil, 'poller:exited', (info) => info.sessionId === 'a');
    await expect(vigil.sessions.close('a')).resolves.toMatchObject({ forced: false });
    const [info] = await exited;
    expect(info.reason).toBe('stopped');
    await expect(vigil.sessions.probe('b')).resolves.toMatchObject({
      runId: vigil.sessions.get('b').poller.runId,
    });
    expect(vigil.stats()).toMatchObject({ sessions: 1, pollers: 1, threads: 2 });
  });

  raceIt('terminates the thread of a poller wedged in a busy loop, within stopTimeoutMs (G1)', async () => {
    await using fixture = workerVigil({ stopTimeoutMs: STOP_MS }, { pool: { minThreads: 2, maxThreads: 2 } });
    const { vigil, faults } = fixture;
    const ids = ['s1', 's2', 's3', 's4'];
    for (const id of ids) await vigil.sessions.open(id);
    const wedged = vigil.sessions.get('s1').poller.threadId;
    const neighbours = ids.slice(1).filter((id) => vigil.sessions.get(id).poller.threadId === wedged);
    expect(neighbours.length).toBeGreaterThan(0);
    const restarted = record(vigil, 'poller:started');

    await faults.inject('s1', 'spin');
    const started = Date.now();
    const result = await vigil.sessions.close('s1');
    const elapsed = Date.now() - started;

    expect(result.forced).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(STOP_MS - 5);
    // A liveness bound, not a benchmark: the close must not wait for the busy loop.
    expect(elapsed).toBeLessThan(STOP_MS + 5_000);
    for (const id of neighbours) {
      const probe = await vigil.sessions.probe(id);
      expect(probe.threadId).not.toBe(wedged);
      expect(vigil.sessions.get(id).poller.restarts).toBe(1);
    }
    expect(restarted.map(([info]) => info.sessionId).sort()).toEqual([...neighbours].sort());
    expect(restarted.every(([info]) => info.restart)).toBe(true);
  });

  raceIt('gives each session its own thread with pollersPerThread 1, and ends it on close', async () => {
    await using fixture = workerVigil({}, { pool: { pollersPerThread: 1, minThreads: 0, maxThreads: 4 } });
    const { vigil } = fixture;
    await vigil.sessions.open('x');
    await vigil.sessions.open('y');
    const x = vigil.sessions.get('x').poller.threadId;
    const y = vigil.sessions.get('y').poller.threadId;
    expect(x).not.toBe(y);
    const before = vigil.stats().threads;
    await vigil.sessions.close('x');
    expect(vigil.stats().threads).toBe(before - 1);
    await vigil.sessions.open('z');
    expect(vigil.sessions.get('z').poller.threadId).not.toBe(x);
  });

  raceIt('refuses sessions beyond the pool capacity with ERR_CAPACITY', async () => {
    await using fixture = workerVigil({}, { pool: { pollersPerThread: 1, minThreads: 0, maxThreads: 1 } });
    const { vigil } = fixture;
    await vigil.sessions.open('only');
    await expect(vigil.sessions.open('one-too-many')).rejects.toMatchObject({ code: 'ERR_CAPACITY' });
    await vigil.sessions.close('only');
    await expect(vigil.sessions.open('one-too-many')).resolves.toMatchObject({ state: 'open' });
  });

  raceIt(
    'runs nothing for a session after its close resolves, and concurrent closes share one result (G2)',
    async () => {
      await using fixture = workerVigil({ stopTimeoutMs: STOP_MS });
      const { vigil, faults } = fixture;
      await vigil.sessions.open('gone');
      await vigil.sessions.open('stays');
      const events: string[] = [];
      for (const name of ['poller:started', 'poller:exited', 'session:closed'] as const) {
        vigil.on(name, (info) => {
          if (info.sessionId === 'gone') events.push(name);
        });
      }
      const closes = [
        vigil.sessions.close('gone'),
        vigil.sessions.close('gone'),
        vigil.sessions.close('gone'),
      ];
      expect(new Set(closes).size).toBe(1);
      await Promise.all(closes);
      expect(events).toEqual(['poller:exited', 'session:closed']);
      expect(() => vigil.sessions.probe('gone')).toThrow(
        expect.objectContaining({ code: 'ERR_SESSION_CLOSED' }),
      );
      expect(() => faults.inject('gone', 'spin')).toThrow(
        expect.objectContaining({ code: 'ERR_UNKNOWN_SESSION' }),
      );
      // Crash the neighbour's thread: restarts must not resurrect the closed session's poller.
      await faults.inject('stays', 'exit');
      await nextEvent(vigil, 'poller:started', (info) => info.sessionId === 'stays' && info.restart);
      await vigil.sessions.probe('stays');
      expect(events).toEqual(['poller:exited', 'session:closed']);
    },
  );

  for (const fault of ['exit', 'oom'] as const) {
    raceIt(`replaces a thread that dies by ${fault} and resumes its pollers (G4)`, async () => {
      await using fixture = workerVigil(
        {},
        { pool: { minThreads: 1, maxThreads: 1, resourceLimits: { maxOldGenerationSizeMb: 32 } } },
      );
      const { vigil, faults } = fixture;
      await vigil.sessions.open('victim');
      await vigil.sessions.open('bystander');
      const runs = {
        victim: vigil.sessions.get('victim').poller.runId,
        bystander: vigil.sessions.get('bystander').poller.runId,
      };
      const crashed = record(vigil, 'poller:exited');
      const back = Promise.all([
        nextEvent(vigil, 'poller:started', (info) => info.sessionId === 'victim' && info.restart),
        nextEvent(vigil, 'poller:started', (info) => info.sessionId === 'bystander' && info.restart),
      ]);
      await faults.inject('victim', fault);
      await back;
      expect(crashed.map(([info]) => info.reason)).toEqual(['crashed', 'crashed']);
      const victim = await vigil.sessions.probe('victim');
      const bystander = await vigil.sessions.probe('bystander');
      expect(victim.runId).toBeGreaterThan(runs.victim);
      expect(bystander.runId).toBeGreaterThan(runs.bystander);
    });
  }

  raceIt('keeps two instances isolated: same ids, separate pools (G5)', async () => {
    await using a = workerVigil();
    await using b = workerVigil();
    await a.vigil.sessions.open('same');
    await b.vigil.sessions.open('same');
    const aExits = record(a.vigil, 'poller:exited');
    await b.faults.inject('same', 'spin');
    await b.vigil.sessions.close('same');
    expect(aExits).toEqual([]);
    await expect(a.vigil.sessions.probe('same')).resolves.toBeDefined();
    expect(a.vigil.stats().sessions).toBe(1);
  });

  raceIt('reaps a forgotten session after sessionIdleTtlMs and stops its poller (G3)', async () => {
    await using fixture = workerVigil({ sessionIdleTtlMs: 50 });
    const { vigil } = fixture;
    const reaped = nextEvent(vigil, 'session:closed');
    await vigil.sessions.open('forgotten');
    const [info] = await reaped;
    expect(info).toMatchObject({ sessionId: 'forgotten', closeReason: 'idle', poller: { running: false } });
    expect(vigil.stats().pollers).toBe(0);
  });

  raceIt('leaves no thread, MessagePort or timer behind after vigil.close (G3)', async () => {
    const baseResources = resources();
    const baseThreads = osThreads();
    await using fixture = workerVigil({ stopTimeoutMs: STOP_MS });
    const { vigil, faults } = fixture;
    for (let i = 0; i < 20; i++) await vigil.sessions.open(`s${i}`);
    await faults.inject('s3', 'spin');
    expect(osThreads()).toBeGreaterThan(baseThreads);
    await vigil.close();
    expect(vigil.stats()).toMatchObject({ sessions: 0, pollers: 0, threads: 0 });
    expect(await settledThreads(baseThreads)).toBe(baseThreads);
    expect(await leakedResources(baseResources)).toEqual({});
  });

  raceIt('lets a Node process that creates and closes a vigil exit on its own (G3)', async () => {
    const script = `
      import { createVigil } from '@vigil/core';
      import { createWorkerHost } from '@vigil/worker';
      const vigil = createVigil({ host: createWorkerHost() });
      for (let i = 0; i < 5; i++) await vigil.sessions.open('s' + i);
      await vigil.sessions.probe('s1');
      await vigil.close();
      console.log('closed');
    `;
    expect(await runNodeScript(script)).toEqual({ code: 0, signal: null, out: 'closed' });
  });
});
