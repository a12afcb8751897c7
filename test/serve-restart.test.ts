import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TapeEvent } from '@vigil/core';
import { afterEach, describe, expect } from 'vitest';
import { liveMembers } from './support/proc.js';
import { raceIt } from './support/race.js';
import { type ServeProcess, type ServeProcessOptions, startServe } from './support/serve-process.js';
import { readSse, type SseEvent } from './support/sse-reader.js';

const dirs: string[] = [];
const groups: number[] = [];
afterEach(() => {
  // A failed test leaves no command behind (they are meant to outlive a serve here).
  for (const pgid of groups.splice(0)) if (liveMembers(pgid).length > 0) process.kill(-pgid, 'SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-serve-state-'));
  dirs.push(dir);
  return dir;
}

/** Small bounds, so that a stop is quick; matches are not rate-limited. */
const config = {
  shutdownTimeoutMs: 3_000,
  stopTimeoutMs: 500,
  processes: { killGraceMs: 300 },
  watch: { cooldownMs: 0 },
};

/** A `vigil serve --state-dir dir` with the same token as the one before it on `dir`. */
function serveOn(dir: string, token: string, args: readonly string[] = []): Promise<ServeProcess> {
  const options: ServeProcessOptions = { config, token, args: ['--state-dir', dir, ...args] };
  return startServe(options);
}

/** A shell command that prints `name` once the file `gate` exists. */
const waitFor = (gate: string): string => `while [ ! -e ${gate} ]; do sleep 0.02; done`;

/** Resolves once the file at `path` holds `needle` (woken by inotify on each write). */
async function fileContains(path: string, needle: string): Promise<void> {
  let wake = (): void => {};
  // Watching from before the first read: no write can fall between the read and the wait.
  const watcher = watch(path, () => wake());
  try {
    for (;;) {
      const changed = new Promise<void>((resolve) => {
        wake = resolve;
      });
      if (readFileSync(path, 'utf8').includes(needle)) return;
      await changed;
    }
  } finally {
    watcher.close();
  }
}

/** Opens `sessionId`, spawns `command` in it, and resolves with its id and pgid once it started. */
async function spawnIn(
  serve: ServeProcess,
  sessionId: string,
  body: Record<string, unknown>,
): Promise<{ processId: string; pgid: number }> {
  await serve.call('POST', '/v1/sessions', { body: { sessionId } });
  const spawned = await serve.call('POST', `/v1/sessions/${sessionId}/processes`, { body });
  expect(spawned.status).toBe(201);
  const processId = spawned.body.processId as string;
  // The spawner reports the pid a moment later: the tape's process.started carries it.
  const page = await serve.call('GET', `/v1/sessions/${sessionId}/events?after=0&wait=10000`);
  let events = page.body.events as TapeEvent[];
  while (!events.some((e) => e.type === 'process.started')) {
    const after = events.at(-1)?.seq ?? 0;
    events = (await serve.call('GET', `/v1/sessions/${sessionId}/events?after=${after}&wait=10000`)).body
      .events;
  }
  const started = events.find((e) => e.type === 'process.started')!;
  const pgid = (started.data as { pid: number }).pid;
  groups.push(pgid);
  return { processId, pgid };
}

const tapeSeqs = (events: readonly SseEvent[]): number[] =>
  events.filter((e) => e.event === 'tape').map((e) => (e.data.event as TapeEvent).seq);

describe('vigil serve --state-dir: restart safety', () => {
  raceIt(
    'SIGTERM leaves the command running; the next serve on the directory adopts it and delivers its completion',
    async () => {
      const dir = stateDir();
      const gate = join(dir, 'gate');
      const token = randomBytes(24).toString('base64url');
      const first = await serveOn(dir, token);
      const command = `echo started; ${waitFor(gate)}; echo finished; exit 3`;
      const { processId, pgid } = await spawnIn(first, 'build', { command });
      await first.outputOf(processId, 'started');
      first.child.kill('SIGTERM');
      expect(await first.exited).toEqual({ code: 0, signal: null });
      expect(first.lines.items).toContain('SIGTERM: stopping; running commands go on for the next start…');
      expect(liveMembers(pgid)).not.toEqual([]);
      await first[Symbol.asyncDispose]();

      await using second = await serveOn(dir, token);
      await second.lines.next((line) => line === `  state: ${dir} (from --state-dir); 1 session restored`);
      const adopted = await second.call('GET', `/v1/processes/${processId}`);
      expect(adopted.body).toMatchObject({ processId, sessionId: 'build', state: 'running', pid: pgid });
      writeFileSync(gate, '');
      const waited = await second.call('POST', `/v1/processes/${processId}/wait?timeoutMs=20000`);
      expect(waited.body.process).toMatchObject({ state: 'exited', exitCode: 3 });
      const printed = await second.lines.next(
        (line) => line.includes(`${processId}`) && line.includes('exited'),
      );
      expect(printed).toContain('exited with code 3');
      expect(second.lines.items.filter((line) => line.startsWith('[build] [vigil] Background'))).toHaveLength(
        1,
      );
      expect(liveMembers(pgid)).toEqual([]);
    },
    60_000,
  );

  raceIt(
    'with --stop-processes-on-exit, SIGTERM ends every command and closes every session, as without a state directory',
    async () => {
      const dir = stateDir();
      const token = randomBytes(24).toString('base64url');
      const first = await serveOn(dir, token, ['--stop-processes-on-exit']);
      await first.lines.next((line) => line === '  stop with Ctrl-C: every running command is ended');
      const { processId, pgid } = await spawnIn(first, 'build', { command: 'echo started; exec sleep 1000' });
      await first.outputOf(processId, 'started');
      first.child.kill('SIGTERM');
      expect(await first.exited).toEqual({ code: 0, signal: null });
      expect(liveMembers(pgid)).toEqual([]);
      await first[Symbol.asyncDispose]();

      await using second = await serveOn(dir, token);
      await second.lines.next((line) => line === `  state: ${dir} (from --state-dir); 0 sessions restored`);
      expect((await second.call('GET', '/v1/sessions')).body.total).toBe(0);
    },
    60_000,
  );

  raceIt(
    'an SSE client resuming with its Last-Event-ID after a SIGKILL and a restart gets every later event once, and the API answers the same',
    async () => {
      const dir = stateDir();
      const [gate1, gate2] = [join(dir, 'gate-1'), join(dir, 'gate-2')];
      const token = randomBytes(24).toString('base64url');
      const first = await serveOn(dir, token);
      const command = `echo 'tick 1'; ${waitFor(gate1)}; echo 'tick 2'; ${waitFor(gate2)}; echo 'tick 3'; exit 5`;
      const { processId, pgid } = await spawnIn(first, 'feed', { command, watch: ['tick'] });
      const stream = await readSse(`${first.url}/v1/stream?sessions=feed`, token);
      await stream.events.next((e) => e.event === 'tape' && e.data.event.type === 'notification.delivered');
      const before = {
        session: (await first.call('GET', '/v1/sessions/feed')).body,
        processes: (await first.call('GET', '/v1/sessions/feed/processes')).body,
        events: (await first.call('GET', '/v1/sessions/feed/events?after=0')).body.events as TapeEvent[],
      };
      // The gateway dies with the client connected; the command prints a watched line meanwhile.
      first.child.kill('SIGKILL');
      await first.exited;
      await stream.ended;
      const lastEventId = stream.lastEventId()!;
      writeFileSync(gate1, '');
      await fileContains(before.processes.processes[0].outputPath, 'tick 2');
      await first[Symbol.asyncDispose]();

      await using second = await serveOn(dir, token);
      expect(second.url).not.toBe(first.url);
      const resumed = await readSse(`${second.url}/v1/stream?sessions=feed`, token, lastEventId);
      writeFileSync(gate2, '');
      await resumed.events.next(
        (e) => e.event === 'tape' && e.data.event.data?.notificationId === `${processId}:completion`,
      );
      resumed.stop();

      // The two connections together: every seq from 1 on, once, in order.
      const seqs = [...tapeSeqs(stream.events.items), ...tapeSeqs(resumed.events.items)];
      expect(seqs).toEqual(seqs.map((_, index) => index + 1));
      const tape = (await second.call('GET', '/v1/sessions/feed/events?after=0')).body.events as TapeEvent[];
      const received = [...stream.events.items, ...resumed.events.items]
        .filter((e) => e.event === 'tape')
        .map((e) => e.data.event as TapeEvent);
      expect(received).toEqual(tape.slice(0, received.length));
      const matches = tape
        .filter((e) => e.type === 'watch.match')
        .map((e) => (e.data as { readonly lines: readonly string[] }).lines);
      expect(matches).toEqual([['tick 1'], ['tick 2'], ['tick 3']]);
      expect(tape.find((e) => e.type === 'process.exited')?.data).toMatchObject({ exitCode: 5 });

      // The API answers the same for what happened before the restart.
      expect(tape.slice(0, before.events.length)).toEqual(before.events);
      const session = (await second.call('GET', '/v1/sessions/feed')).body;
      expect(session).toMatchObject({
        sessionId: 'feed',
        state: 'open',
        openedAt: before.session.openedAt,
        closedAt: null,
      });
      const processes = (await second.call('GET', '/v1/sessions/feed/processes')).body.processes;
      expect(processes).toHaveLength(1);
      const unchanged = before.processes.processes[0];
      const same = [
        'processId',
        'sessionId',
        'command',
        'pid',
        'createdAt',
        'startedAt',
        'watch',
        'outputPath',
      ];
      expect(Object.fromEntries(same.map((key) => [key, processes[0][key]]))).toEqual(
        Object.fromEntries(same.map((key) => [key, unchanged[key]])),
      );
      expect(processes[0]).toMatchObject({ state: 'exited', exitCode: 5 });
      expect(liveMembers(pgid)).toEqual([]);
    },
    60_000,
  );

  raceIt(
    'a second serve on a directory in use fails at once, naming the journal and its holder',
    async () => {
      const dir = stateDir();
      const token = randomBytes(24).toString('base64url');
      await using first = await serveOn(dir, token);
      const second = serveOn(dir, token);
      await expect(second).rejects.toThrow(
        `vigil: the journal ${join(dir, 'journal.db')} is in use by another vigil (pid ${first.child.pid})`,
      );
      expect(existsSync(join(dir, 'journal.db'))).toBe(true);
      // The first one still serves.
      expect((await first.call('GET', '/v1/sessions')).status).toBe(200);
    },
  );
});
