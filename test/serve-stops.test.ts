import { pathToFileURL } from 'node:url';
import { describe, expect } from 'vitest';
import { liveMembers } from './support/proc.js';
import { within } from './support/processes.js';
import { raceIt } from './support/race.js';
import { type ServeExit, type ServeProcess, startServe } from './support/serve-process.js';

const FATAL_ON_SIGNAL = pathToFileURL(new URL('fixtures/fatal-on-signal.mjs', import.meta.url).pathname).href;

/** Every member ignores SIGTERM: the leader and two children, all forked before "started". */
const TERM_IGNORING = `trap "" TERM; sleep 1000 & sleep 1000 & echo started; wait`;

/** Small bounds, so that a stop that works is quick; the test's liveness bound is well above. */
const config = { shutdownTimeoutMs: 3_000, stopTimeoutMs: 500, processes: { killGraceMs: 300 } };
/** Longer than any working stop: what the test waits before it calls the stop hung. */
const HUNG_AFTER_MS = config.shutdownTimeoutMs + 10_000;

async function exitOf(exited: Promise<ServeExit>): Promise<ServeExit | 'hung'> {
  return within(exited, HUNG_AFTER_MS, 'hung' as const);
}

/** Spawns the TERM-ignoring group in `serve` and resolves with its pgid once all of it runs. */
async function termIgnoringGroup(serve: ServeProcess): Promise<number> {
  const { processId, pgid } = await serve.spawn(TERM_IGNORING);
  await serve.outputOf(processId, 'started');
  expect(liveMembers(pgid)).toHaveLength(3);
  return pgid;
}

/** `serve` exited with `code` (not by a signal's default action), leaving no member of `pgid` alive. */
async function expectStopped(serve: ServeProcess, pgid: number, code: number): Promise<void> {
  expect(await exitOf(serve.exited)).toEqual({ code, signal: null });
  expect(liveMembers(pgid)).toEqual([]);
}

describe('vigil serve stops (G17)', () => {
  raceIt(
    'exits on SIGTERM while a 1 MB stdin write to a child that never reads is pending, ending its group',
    async () => {
      await using serve = await startServe({ config });
      // Reads one byte, says so, then never reads again: the rest of the write stays pending.
      const { processId, pgid } = await serve.spawn('head -c 1 >/dev/null; echo got; exec sleep 1000');
      const write = serve.call('POST', `/v1/processes/${processId}/write`, {
        body: { data: 'x'.repeat(1_000_000) },
      });
      await serve.outputOf(processId, 'got');
      serve.child.kill('SIGTERM');
      expect(await exitOf(serve.exited)).toEqual({ code: 0, signal: null });
      expect(liveMembers(pgid)).toEqual([]);
      // The client sees its write fail (or the connection drop): it never succeeded.
      const answer = await write.catch(() => undefined);
      expect(answer?.status).not.toBe(200);
    },
    30_000,
  );

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    raceIt(
      `ends every member of a TERM-ignoring group on ${signal}, then exits`,
      async () => {
        await using serve = await startServe({ config });
        const pgid = await termIgnoringGroup(serve);
        serve.child.kill(signal);
        await expectStopped(serve, pgid, 0);
      },
      30_000,
    );
  }

  raceIt(
    'hurries the stop on a second SIGINT (no grace) but still ends every group before exiting',
    async () => {
      // A grace and a shutdown bound longer than the test: only the hurry can end it in time.
      const slow = { ...config, shutdownTimeoutMs: 120_000, processes: { killGraceMs: 120_000 } };
      await using serve = await startServe({ config: slow });
      const pgid = await termIgnoringGroup(serve);
      serve.child.kill('SIGINT');
      await serve.lines.next((line) => line.startsWith('SIGINT: closing every session'));
      serve.child.kill('SIGINT');
      await expectStopped(serve, pgid, 0);
    },
    30_000,
  );

  raceIt(
    'ends every group on a fatal error, then exits 1',
    async () => {
      await using serve = await startServe({ config, nodeArgs: ['--import', FATAL_ON_SIGNAL] });
      const pgid = await termIgnoringGroup(serve);
      serve.child.kill('SIGUSR2');
      await expectStopped(serve, pgid, 1);
      expect(serve.lines.items.join('\n')).toContain('fatal error: Error: injected fatal error');
    },
    30_000,
  );
});

describe('vigil serve secrets', () => {
  raceIt("keeps VIGIL_TOKEN out of a spawned process's environment", async () => {
    await using serve = await startServe();
    const { processId } = await serve.spawn('printenv VIGIL_TOKEN; echo "printenv: $?"');
    const { body } = await serve.call('POST', `/v1/processes/${processId}/wait?timeoutMs=10000`);
    expect(body.process.state).toBe('exited');
    const { body: poll } = await serve.call('GET', `/v1/processes/${processId}/poll`);
    expect(poll.tail).toBe('printenv: 1\n');
    expect(poll.tail).not.toContain(serve.token);
  });

  raceIt(
    'keeps the variables of secrets.envDeny out of `env`, and VIGIL_TOKEN whatever the list',
    async () => {
      await using serve = await startServe({
        config: { secrets: { envDeny: ['ACME_*'] } },
        env: { ACME_SIGNING: 'acme-signing-value-123', PLAIN_SETTING: 'kept' },
      });
      const { processId } = await serve.spawn('env');
      await serve.call('POST', `/v1/processes/${processId}/wait?timeoutMs=10000`);
      const { body } = await serve.call('GET', `/v1/processes/${processId}/log?limit=1000`);
      const names = (body.lines as string[]).map((line) => line.slice(0, line.indexOf('=')));
      expect(names).not.toContain('VIGIL_TOKEN');
      expect(names).not.toContain('ACME_SIGNING');
      expect(names).toEqual(expect.arrayContaining(['PATH', 'HOME', 'PLAIN_SETTING']));
      expect(JSON.stringify(body)).not.toContain(serve.token);
    },
  );
});
