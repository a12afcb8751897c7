import { describe, expect, it } from 'vitest';
import { outputContains } from '../../../test/support/fixtures.js';
import { raceIt } from '../../../test/support/race.js';
import { createVigil, type Vigil, VigilError, type VigilOptions } from '../src/index.js';

/** A vigil on the in-thread host; `await using` closes it. */
function vigilOf(options: VigilOptions = {}): Vigil {
  return createVigil(options);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(VigilError);
  return (error as VigilError).code;
}

function syncCodeOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(VigilError);
    return (error as VigilError).code;
  }
  throw new Error('expected a VigilError');
}

describe('sessions (in-thread host)', () => {
  it('opens a session whose poller answers probes, and lists it', async () => {
    await using vigil = vigilOf();
    const info = await vigil.sessions.open('agent:1');
    expect(info).toMatchObject({ sessionId: 'agent:1', state: 'open', poller: { running: true } });
    await expect(vigil.sessions.probe('agent:1')).resolves.toMatchObject({ runId: info.poller.runId });
    expect(vigil.sessions.list().map((s) => s.sessionId)).toEqual(['agent:1']);
    expect(vigil.stats()).toMatchObject({ sessions: 1, pollers: 1, threads: 0 });
  });

  it('pages sessions in id order without describing the others', async () => {
    await using vigil = vigilOf();
    for (const id of ['c', 'a', 'e', 'b', 'd']) await vigil.sessions.open(id);
    const first = vigil.sessions.page({ limit: 2 });
    expect(first).toMatchObject({ next: 'b', total: 5 });
    expect(first.sessions.map((s) => s.sessionId)).toEqual(['a', 'b']);
    const rest = vigil.sessions.page({ after: 'b', limit: 3 });
    expect(rest.sessions.map((s) => s.sessionId)).toEqual(['c', 'd', 'e']);
    expect(rest.next).toBeNull();
    expect(vigil.sessions.page({ after: 'bb' }).sessions.map((s) => s.sessionId)).toEqual(['c', 'd', 'e']);
    expect(syncCodeOf(() => vigil.sessions.page({ limit: 1001 }))).toBe('ERR_INVALID_INPUT');
  });

  it.each(['', 'a b', 'x'.repeat(129), 'semi;colon', 'ünï'])('rejects the session id %j', async (id) => {
    await using vigil = vigilOf();
    expect(await codeOf(vigil.sessions.open(id))).toBe('ERR_INVALID_SESSION_ID');
  });

  it('rejects a non-function deliver naming the field', async () => {
    await using vigil = vigilOf();
    await expect(vigil.sessions.open('s', { deliver: 'nope' as never })).rejects.toThrow(/deliver/);
  });

  it('refuses to open an id that is already open', async () => {
    await using vigil = vigilOf();
    await vigil.sessions.open('s');
    expect(await codeOf(vigil.sessions.open('s'))).toBe('ERR_SESSION_EXISTS');
  });

  it('answers unknown sessions with ERR_UNKNOWN_SESSION', async () => {
    await using vigil = vigilOf();
    expect(syncCodeOf(() => vigil.sessions.get('ghost'))).toBe('ERR_UNKNOWN_SESSION');
    expect(await codeOf(vigil.sessions.close('ghost'))).toBe('ERR_UNKNOWN_SESSION');
  });

  it('stops the poller before close resolves and refuses work afterwards', async () => {
    await using vigil = vigilOf();
    const exited: string[] = [];
    vigil.on('poller:exited', (info) => exited.push(info.reason));
    await vigil.sessions.open('s');
    const result = await vigil.sessions.close('s', { reason: 'done' });
    expect(result).toEqual({ sessionId: 's', reason: 'done', forced: false });
    expect(exited).toEqual(['stopped']);
    expect(vigil.sessions.get('s')).toMatchObject({
      state: 'closed',
      closeReason: 'done',
      poller: { running: false },
    });
    expect(syncCodeOf(() => vigil.sessions.probe('s'))).toBe('ERR_SESSION_CLOSED');
  });

  raceIt('resolves close only after the deliver in flight settled, its signal aborted (G2)', async () => {
    await using vigil = vigilOf();
    const order: string[] = [];
    let called!: () => void;
    const inFlight = new Promise<void>((resolve) => {
      called = resolve;
    });
    await vigil.sessions.open('s', {
      deliver: (_notification, { signal }) =>
        new Promise<void>((resolve) => {
          called();
          // Settles a macrotask after the close aborted it, as a gateway finishing an injection would.
          signal.addEventListener('abort', () =>
            setImmediate(() => {
              order.push('deliver settled');
              resolve();
            }),
          );
        }),
    });
    vigil.processes.spawn({ sessionId: 's', command: 'true' });
    await inFlight;
    await vigil.sessions.close('s');
    order.push('closed');
    expect(order).toEqual(['deliver settled', 'closed']);
  });

  raceIt(
    'resolves close after stopTimeoutMs when the deliver in flight ignores its aborted signal',
    async () => {
      await using vigil = vigilOf({ stopTimeoutMs: 100 });
      let seen: AbortSignal | undefined;
      let called!: () => void;
      const inFlight = new Promise<void>((resolve) => {
        called = resolve;
      });
      await vigil.sessions.open('s', {
        deliver: (_notification, { signal }) => {
          seen = signal;
          called();
          return new Promise<void>(() => undefined);
        },
      });
      vigil.processes.spawn({ sessionId: 's', command: 'true' });
      await inFlight;
      await expect(vigil.sessions.close('s')).resolves.toMatchObject({ sessionId: 's' });
      expect(seen?.aborted).toBe(true);
    },
  );

  raceIt(
    'bounds stdin writes in size and in unread bytes per session, and fails the pending ones on close',
    async () => {
      await using vigil = vigilOf({ stdin: { maxWriteBytes: 300_000, maxPendingBytes: 400_000 } });
      await vigil.sessions.open('s');
      const spawnReader = async (): Promise<string> => {
        // Reads one byte, says so, then never reads again.
        const { processId } = vigil.processes.spawn({
          sessionId: 's',
          command: 'head -c 1 >/dev/null; echo got; exec sleep 1000',
        });
        return processId;
      };
      const [a, b] = [await spawnReader(), await spawnReader()];
      expect(await codeOf(vigil.processes.write(a, 'x'.repeat(300_001)))).toBe('ERR_INVALID_INPUT');
      const pending = vigil.processes.write(a, 'x'.repeat(300_000));
      // Until the child took its first byte and the pipe filled, part of it may still be in flight.
      await outputContains(vigil, a, 'got');
      const refused = vigil.processes.write(b, 'y'.repeat(300_000));
      await expect(refused).rejects.toMatchObject({
        code: 'ERR_LIMIT_EXCEEDED',
        message: /stdin\.maxPendingBytes \(400000\)/,
      });
      const closing = vigil.sessions.close('s');
      await expect(pending).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
      await closing;
    },
  );

  it('shares one result between concurrent and repeated closes', async () => {
    await using vigil = vigilOf();
    const closed: string[] = [];
    vigil.on('session:closed', (info) => closed.push(info.sessionId));
    await vigil.sessions.open('s');
    const first = vigil.sessions.close('s');
    const second = vigil.sessions.close('s', { reason: 'other' });
    expect(second).toBe(first);
    await first;
    expect(vigil.sessions.close('s')).toBe(first);
    expect(closed).toEqual(['s']);
  });

  it('closes a session that is closed while it is still opening', async () => {
    await using vigil = vigilOf();
    const opening = vigil.sessions.open('s');
    const closing = vigil.sessions.close('s');
    await opening;
    await expect(closing).resolves.toMatchObject({ forced: false });
    expect(vigil.sessions.get('s').state).toBe('closed');
  });

  it('reaps a session nobody touched for sessionIdleTtlMs', async () => {
    await using vigil = vigilOf({ sessionIdleTtlMs: 40 });
    const reaped = new Promise<string | null>((resolve) => {
      vigil.on('session:closed', (info) => resolve(info.closeReason));
    });
    await vigil.sessions.open('forgotten');
    await expect(reaped).resolves.toBe('idle');
  });

  it('keeps two instances apart: same ids, separate sessions and pollers', async () => {
    await using a = vigilOf();
    await using b = vigilOf();
    await a.sessions.open('shared-id');
    await b.sessions.open('shared-id');
    const seenByA: string[] = [];
    a.on('session:closed', (info) => seenByA.push(info.sessionId));
    await b.sessions.close('shared-id');
    expect(seenByA).toEqual([]);
    expect(a.sessions.get('shared-id').state).toBe('open');
    await expect(a.sessions.probe('shared-id')).resolves.toBeDefined();
    expect(a.stats().sessions).toBe(1);
    expect(b.stats().sessions).toBe(0);
  });

  it('refuses a host that already serves another instance', async () => {
    await using a = vigilOf();
    expect(syncCodeOf(() => createVigil({ host: a.host }))).toBe('ERR_INVALID_CONFIG');
  });

  it('closes every session on vigil.close and refuses new ones', async () => {
    await using vigil = vigilOf();
    await vigil.sessions.open('a');
    await vigil.sessions.open('b');
    await vigil[Symbol.asyncDispose]();
    expect(vigil.stats()).toMatchObject({ sessions: 0, pollers: 0 });
    expect(await codeOf(vigil.sessions.open('c'))).toBe('ERR_CLOSED');
  });

  it('keeps only the newest tape.maxClosedSessions closed sessions; older ones are unknown', async () => {
    await using vigil = vigilOf({ tape: { maxClosedSessions: 3 } });
    await vigil.sessions.open('live');
    for (let i = 0; i < 10; i++) {
      await vigil.sessions.open(`cycle-${i}`);
      await vigil.sessions.close(`cycle-${i}`);
    }
    const listed = vigil.sessions.list().map((s) => s.sessionId);
    expect(listed.sort()).toEqual(['cycle-7', 'cycle-8', 'cycle-9', 'live']);
    expect(vigil.sessions.get('cycle-9')).toMatchObject({ state: 'closed', closeReason: 'closed' });
    await expect(vigil.tape.read('cycle-7')).resolves.toMatchObject({ closed: true });
    for (let i = 0; i < 7; i++) {
      expect(syncCodeOf(() => vigil.sessions.get(`cycle-${i}`))).toBe('ERR_UNKNOWN_SESSION');
      expect(await codeOf(vigil.tape.read(`cycle-${i}`))).toBe('ERR_UNKNOWN_SESSION');
    }
    // Reopening a retained id replaces its closed record rather than holding a place in the cap.
    await vigil.sessions.open('cycle-8');
    await vigil.sessions.close('cycle-8');
    expect(vigil.sessions.list().map((s) => s.sessionId)).toEqual(['live', 'cycle-7', 'cycle-9', 'cycle-8']);
  });

  it('keeps a session that opened closable when a session:opened listener throws', async () => {
    await using vigil = vigilOf();
    vigil.on('session:opened', () => {
      throw new Error('a listener fails');
    });
    await expect(vigil.sessions.open('listened')).rejects.toThrow('a listener fails');
    expect(vigil.sessions.get('listened')).toMatchObject({ state: 'open', poller: { running: true } });
    await expect(vigil.sessions.close('listened')).resolves.toMatchObject({ forced: false });
    expect(vigil.stats()).toMatchObject({ sessions: 0, pollers: 0 });
  });
});
