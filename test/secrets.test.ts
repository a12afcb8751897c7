import { createVigil, type Notification, type VigilError } from '@vigil/core';
import { startGateway } from '@vigil/gateway-plugin';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nextEvent, outputContains, record, workerVigil } from './support/fixtures.js';
import { apiClient } from './support/http.js';
import { raceIt } from './support/race.js';
import { Recorder } from './support/recorder.js';

/** Secrets the tests hand to vigil, each through another door. */
const VIGIL_TOKEN = 'vigil-token-of-this-test-0123456789';
const ENV_SECRET = 'deploy-token-from-the-environment-42';
const CONFIG_SECRET = 'configured-secret-value-77';
const API_KEY = 'sk-proj-abcdefghijklmnopqrstuvwxyz012345';
const SECRETS = [VIGIL_TOKEN, ENV_SECRET, CONFIG_SECRET, API_KEY];

/** The variables these tests add to this process's environment (restored after each). */
const ADDED = { VIGIL_TOKEN, DEPLOY_TOKEN: ENV_SECRET, ACME_CREDENTIAL: 'acme-credential-value-1' };
let saved: Record<string, string | undefined> = {};
beforeEach(() => {
  saved = Object.fromEntries(Object.keys(ADDED).map((name) => [name, process.env[name]]));
  Object.assign(process.env, ADDED);
});
afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** A child that prints every secret (given to it through its explicit env) on one line. */
const LEAKS = {
  command: 'echo "ERROR token=$T env=$E cfg=$C key=$K"',
  env: { T: VIGIL_TOKEN, E: ENV_SECRET, C: CONFIG_SECRET, K: API_KEY },
};

function expectRedacted(text: string): void {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
  expect(text).toContain('token=[REDACTED] env=[REDACTED] cfg=[REDACTED] key=[REDACTED]');
}

function inbox() {
  const recorder = new Recorder<Notification>();
  return { got: recorder.items, deliver: recorder.push, next: recorder.next.bind(recorder) };
}

describe("a child's environment", () => {
  raceIt(
    'holds neither VIGIL_TOKEN nor a denied variable, and keeps PATH, HOME and an explicit env',
    async () => {
      await using fixture = workerVigil({ secrets: { envDeny: ['ACME_*'] } });
      const { vigil } = fixture;
      await vigil.sessions.open('s');
      const { processId } = vigil.processes.spawn({
        sessionId: 's',
        command: 'env',
        env: { CHOSEN_TOKEN: 'passed-as-given' },
      });
      await vigil.processes.wait(processId);
      const { lines } = await vigil.processes.log(processId, { limit: 1000 });
      const names = lines.map((line) => line.slice(0, line.indexOf('=')));
      expect(names).not.toContain('VIGIL_TOKEN');
      expect(names).not.toContain('ACME_CREDENTIAL');
      expect(names).toEqual(expect.arrayContaining(['PATH', 'HOME', 'DEPLOY_TOKEN']));
      expect(lines).toContain('CHOSEN_TOKEN=passed-as-given');
    },
  );

  raceIt('holds no variable the default deny list names (*_TOKEN)', async () => {
    await using fixture = workerVigil();
    const { vigil } = fixture;
    await vigil.sessions.open('s');
    const { processId } = vigil.processes.spawn({ sessionId: 's', command: 'env' });
    await vigil.processes.wait(processId);
    const { lines } = await vigil.processes.log(processId, { limit: 1000 });
    const names = lines.map((line) => line.slice(0, line.indexOf('=')));
    expect(names).not.toContain('DEPLOY_TOKEN');
    expect(names).toContain('ACME_CREDENTIAL');
    expect(names).toContain('PATH');
  });
});

describe('redaction', () => {
  raceIt(
    'replaces secrets in match lines, heartbeats, live output, the completion, poll, log and the tape',
    async () => {
      await using fixture = workerVigil({ secrets: { values: [CONFIG_SECRET] } });
      const { vigil } = fixture;
      const box = inbox();
      const live = record(vigil, 'process:output');
      await vigil.sessions.open('s', { deliver: box.deliver });
      const outputSeen = nextEvent(vigil, 'process:output');
      const { processId } = vigil.processes.spawn({
        sessionId: 's',
        command: `${LEAKS.command}; read go; ${LEAKS.command}`,
        env: LEAKS.env,
        watch: ['ERROR'],
        heartbeatMs: 1_000,
      });
      await box.next((n) => n.type === 'watch_match');
      await box.next((n) => n.type === 'heartbeat');
      await outputSeen;
      await vigil.processes.write(processId, 'go\n');
      await box.next((n) => n.type === 'completion');

      const [match] = box.got.filter((n) => n.type === 'watch_match');
      expect(match?.type === 'watch_match' && match.data.lines).toEqual([
        'ERROR token=[REDACTED] env=[REDACTED] cfg=[REDACTED] key=[REDACTED]',
      ]);
      const beat = box.got.find((n) => n.type === 'heartbeat');
      expectRedacted(beat?.type === 'heartbeat' ? beat.data.output : '');
      const done = box.got.find((n) => n.type === 'completion');
      expectRedacted(done?.type === 'completion' ? done.data.outputTail : '');
      expectRedacted(live.map(([output]) => output.text).join(''));
      expectRedacted(vigil.processes.poll(processId).tail);
      const { lines } = await vigil.processes.log(processId, { ansi: true });
      expect(lines).toHaveLength(2);
      for (const line of lines) expectRedacted(line);
      const tape = JSON.stringify(await vigil.tape.read('s', { limit: 1000 }));
      for (const secret of SECRETS) expect(tape).not.toContain(secret);
      expect(JSON.stringify(box.got)).not.toContain(API_KEY);
    },
  );

  raceIt(
    'offers live output in whole lines, so a secret printed in two writes is redacted whole',
    async () => {
      await using fixture = workerVigil({ secrets: { values: [CONFIG_SECRET] } });
      const { vigil } = fixture;
      const live = record(vigil, 'process:output');
      await vigil.sessions.open('s');
      const half = CONFIG_SECRET.length / 2;
      const { processId } = vigil.processes.spawn({
        sessionId: 's',
        command: `printf 'cfg=%s' "$A"; read go; printf '%s\\n' "$B"; read done`,
        env: { A: CONFIG_SECRET.slice(0, half), B: CONFIG_SECRET.slice(half) },
      });
      await outputContains(vigil, processId, CONFIG_SECRET.slice(0, half));
      // A later process's live output comes from a tick that saw the first half alone.
      const marker = vigil.processes.spawn({ sessionId: 's', command: 'echo marker; read done' });
      await nextEvent(vigil, 'process:output', (output) => output.processId === marker.processId);
      const whole = nextEvent(vigil, 'process:output', (output) => output.processId === processId);
      await vigil.processes.write(processId, 'go\n');
      await whole;
      const text = live.flatMap(([output]) => (output.processId === processId ? [output.text] : [])).join('');
      expect(text).toBe('cfg=[REDACTED]\n');
      await Promise.all([processId, marker.processId].map((id) => vigil.processes.kill(id)));
    },
  );

  raceIt(
    'keeps the escape sequences of a secret out of the way: a split secret is still redacted in log',
    async () => {
      await using fixture = workerVigil();
      const { vigil } = fixture;
      await vigil.sessions.open('s');
      const { processId } = vigil.processes.spawn({
        sessionId: 's',
        command: `printf 'key=sk-proj-abcdefgh\\033[1mijklmnopqrstuvwxyz\\033[0m\\n'`,
      });
      await vigil.processes.wait(processId);
      const { lines } = await vigil.processes.log(processId, { ansi: true });
      expect(lines).toEqual(['key=[REDACTED]']);
    },
  );
});

describe('terminal escape sequences', () => {
  raceIt('are stripped from match lines, the completion and log, and kept in log with ansi', async () => {
    await using fixture = workerVigil();
    const { vigil } = fixture;
    const box = inbox();
    await vigil.sessions.open('s', { deliver: box.deliver });
    const colored = String.raw`\033[1;31mERROR\033[0m: \033]0;title\007disk \033[4mfull\033[0m`;
    const { processId } = vigil.processes.spawn({
      sessionId: 's',
      command: `printf '${colored}\\n'`,
      // Matches the line as it reads without its colours only.
      watch: ['ERROR: disk full'],
    });
    const done = await box.next((n) => n.type === 'completion');
    const match = box.got.find((n) => n.type === 'watch_match');
    expect(match?.type === 'watch_match' && match.data.lines).toEqual(['ERROR: disk full']);
    expect(done.type === 'completion' && done.data.outputTail).toBe('ERROR: disk full\n');
    expect(vigil.processes.poll(processId).tail).toBe('ERROR: disk full\n');
    expect((await vigil.processes.log(processId)).lines).toEqual(['ERROR: disk full']);
    expect((await vigil.processes.log(processId, { ansi: true })).lines).toEqual([
      '\u001b[1;31mERROR\u001b[0m: \u001b]0;title\u0007disk \u001b[4mfull\u001b[0m',
    ]);
  });
});

describe('secrets config', () => {
  const refused = (secrets: unknown): VigilError => {
    try {
      createVigil({ secrets } as never);
    } catch (error) {
      return error as VigilError;
    }
    throw new Error('accepted');
  };

  it('refuses a redaction pattern that cannot run in linear time, naming the field', () => {
    const error = refused({ redact: ['sk-[a-z]+', '(a+)\\1'] });
    expect(error.code).toBe('ERR_INVALID_CONFIG');
    expect(error.details?.field).toBe('secrets.redact[1]');
    expect(error.message).toContain('cannot run in linear time');
  });

  it('refuses an invalid regex, one that matches the empty string, a bad name and a short value', () => {
    expect(refused({ redact: ['a('] }).message).toMatch(/secrets\.redact\[0\]: invalid regex/);
    expect(refused({ redact: ['x*'] }).message).toMatch(/secrets\.redact\[0\]: .*matches the empty string/);
    expect(refused({ envDeny: ['A=B'] }).details?.field).toBe('secrets.envDeny[0]');
    expect(refused({ values: ['short'] }).details?.field).toBe('secrets.values[0]');
  });
});

/** The events of an SSE response, as they arrive. */
function sseEvents(response: Response): Recorder<{ event: string; data: unknown }> {
  const events = new Recorder<{ event: string; data: unknown }>();
  void (async () => {
    let text = '';
    for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const blocks = text.split('\n\n');
      text = blocks.pop() ?? '';
      for (const block of blocks) {
        const field = (name: string) =>
          block
            .split('\n')
            .find((line) => line.startsWith(`${name}: `))
            ?.slice(name.length + 2);
        const data = field('data');
        if (data !== undefined) events.push({ event: field('event') ?? 'message', data: JSON.parse(data) });
      }
    }
  })().catch(() => {});
  return events;
}

describe('the gateway', () => {
  it('redacts its own token and API keys from the HTTP API and the SSE stream, and strips escapes unless ?ansi=1', async () => {
    const token = 'gateway-token-given-as-an-option-0123';
    await using gateway = await startGateway({ port: 0, token });
    const call = apiClient(gateway.url, token);
    const abort = new AbortController();
    try {
      await call('POST', '/v1/sessions', { body: { sessionId: 'g' } });
      const response = await fetch(`${gateway.url}/v1/stream?sessions=g`, {
        headers: { authorization: `Bearer ${token}` },
        signal: abort.signal,
      });
      const stream = sseEvents(response);
      const { body: spawned } = await call('POST', '/v1/sessions/g/processes', {
        body: {
          command: `printf '\\033[32mERROR\\033[0m token=%s key=%s\\n' "$T" "$K"; read go`,
          env: { T: token, K: API_KEY },
          watch: ['ERROR token='],
        },
      });
      const processId = spawned.processId as string;
      const shown = 'ERROR token=[REDACTED] key=[REDACTED]';
      await stream.next((e) => e.event === 'output' && JSON.stringify(e.data).includes(shown));
      const { body: poll } = await call('GET', `/v1/processes/${processId}/poll`);
      expect(poll.tail).toBe(`${shown}\n`);
      const { body: log } = await call('GET', `/v1/processes/${processId}/log`);
      expect(log.lines).toEqual([shown]);
      const { body: raw } = await call('GET', `/v1/processes/${processId}/log?ansi=1`);
      expect(raw.lines).toEqual(['\u001b[32mERROR\u001b[0m token=[REDACTED] key=[REDACTED]']);
      const { status } = await call('GET', `/v1/processes/${processId}/log?ansi=yes`);
      expect(status).toBe(400);
      await call('POST', `/v1/processes/${processId}/write`, { body: { data: 'go\n' } });
      await stream.next((e) => e.event === 'tape' && JSON.stringify(e.data).includes('process.exited'));
      const sent = JSON.stringify(stream.items);
      expect(sent).toContain(shown);
      expect(sent).not.toContain(token);
      expect(sent).not.toContain(API_KEY);
      expect(sent).not.toContain('\\u001b');
    } finally {
      abort.abort();
    }
  });
});
