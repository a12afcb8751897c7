import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkerHost } from '@vigil/worker';
import { describe, expect, it } from 'vitest';
import type { CallInit } from '../../../test/support/http.js';
import { startedPid } from '../../../test/support/processes.js';
import { serveApi } from './support/serve-api.js';

/** A raw request, so that `Host` and framing can be set freely. */
function rawRequest(
  port: number,
  options: { method: string; path: string; headers: Record<string, string>; chunks?: Buffer[] },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method: options.method,
      path: options.path,
      headers: options.headers,
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }),
      );
    });
    req.on('error', reject);
    for (const chunk of options.chunks ?? []) req.write(chunk);
    req.end();
  });
}

/** A temporary folder; `using` removes it. */
function tempDir(): Disposable & { readonly path: string } {
  const path = mkdtempSync(join(tmpdir(), 'vigil-http-'));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

describe('HTTP API security', () => {
  it('answers 401 without a token or with a wrong one, before any side effect', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    using dir = tempDir();
    const marker = join(dir.path, 'spawned');
    const spawn = { command: ['touch', marker] };

    const missing = await api.call('POST', '/v1/sessions/s1/processes', { body: spawn, token: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(missing.body.error.code).toBe('ERR_UNAUTHORIZED');

    const wrong = await api.call('POST', '/v1/sessions/s1/processes', {
      body: spawn,
      token: `${api.token}x`,
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('invalid_token');

    const basic = await api.call('POST', '/v1/sessions/s1/processes', {
      body: spawn,
      token: null,
      headers: { authorization: `Basic ${Buffer.from(`u:${api.token}`).toString('base64')}` },
    });
    expect(basic.status).toBe(401);
    const opened = await api.call('POST', '/v1/sessions', { body: { sessionId: 's2' }, token: null });
    expect(opened.status).toBe(401);

    expect(existsSync(marker)).toBe(false);
    expect(api.vigil.stats().processes).toBe(0);
    expect(api.vigil.processes.list()).toEqual([]);
    expect(api.vigil.sessions.list().map((s) => s.sessionId)).toEqual(['s1']);

    // The same request with the token does spawn: the check above would have seen it.
    const allowed = await api.call('POST', '/v1/sessions/s1/processes', { body: spawn });
    expect(allowed.status).toBe(201);
    await api.vigil.processes.wait(allowed.body.processId);
    expect(existsSync(marker)).toBe(true);
  });

  it('rejects a Host header outside the allowlist with 403, before the token is looked at', async () => {
    await using api = await serveApi();
    const auth = { authorization: `Bearer ${api.token}` };
    const evil = await rawRequest(api.port, {
      method: 'GET',
      path: '/v1/sessions',
      headers: { host: 'evil.example', ...auth },
    });
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.body).error.code).toBe('ERR_FORBIDDEN_HOST');
    const rebound = await rawRequest(api.port, {
      method: 'GET',
      path: '/v1/sessions',
      headers: { host: `evil.example:${api.port}` },
    });
    expect(rebound.status).toBe(403);
    const local = await rawRequest(api.port, {
      method: 'GET',
      path: '/v1/sessions',
      headers: { host: `localhost:${api.port}`, ...auth },
    });
    expect(local.status).toBe(200);
  });

  it('answers an unparseable request target 400, but only after the Host and token checks', async () => {
    await using api = await serveApi();
    const host = `127.0.0.1:${api.port}`;
    const target = (headers: Record<string, string>) =>
      rawRequest(api.port, { method: 'GET', path: '//[', headers });
    expect((await target({ host: 'evil.example' })).status).toBe(403);
    expect((await target({ host })).status).toBe(401);
    const authed = await target({ host, authorization: `Bearer ${api.token}` });
    expect({ status: authed.status, error: JSON.parse(authed.body).error }).toEqual({
      status: 400,
      error: {
        code: 'ERR_INVALID_INPUT',
        message: 'request target: not a valid URL path',
        details: { field: 'path' },
      },
    });
  });

  it('accepts a configured Host list or predicate instead of the loopback default', async () => {
    await using listed = await serveApi({}, { allowedHosts: ['vigil.test'] });
    const auth = { authorization: `Bearer ${listed.token}` };
    expect(
      (
        await rawRequest(listed.port, {
          method: 'GET',
          path: '/v1/stats',
          headers: { host: 'VIGIL.test', ...auth },
        })
      ).status,
    ).toBe(200);
    expect((await listed.call('GET', '/v1/stats')).status).toBe(403);

    await using predicate = await serveApi({}, { allowedHosts: (host) => host.endsWith('.internal') });
    const auth2 = { authorization: `Bearer ${predicate.token}` };
    expect(
      (
        await rawRequest(predicate.port, {
          method: 'GET',
          path: '/v1/stats',
          headers: { host: 'a.internal', ...auth2 },
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await rawRequest(predicate.port, {
          method: 'GET',
          path: '/v1/stats',
          headers: { host: 'a.external', ...auth2 },
        })
      ).status,
    ).toBe(403);
  });

  it('sends no CORS header unless configured, and answers preflights only for allowed origins', async () => {
    await using plain = await serveApi();
    const noCors = await plain.call('GET', '/v1/stats', { headers: { origin: 'http://ui.test' } });
    expect(noCors.status).toBe(200);
    expect(noCors.headers.get('access-control-allow-origin')).toBeNull();

    await using api = await serveApi({}, { cors: { origins: ['http://ui.test'] } });
    const preflight = await fetch(`${api.base}/v1/sessions`, {
      method: 'OPTIONS',
      headers: { origin: 'http://ui.test', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://ui.test');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const allowed = await api.call('GET', '/v1/stats', { headers: { origin: 'http://ui.test' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://ui.test');
    const other = await api.call('GET', '/v1/stats', { headers: { origin: 'http://evil.test' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const otherPreflight = await fetch(`${api.base}/v1/sessions`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.test', 'access-control-request-method': 'POST' },
    });
    expect(otherPreflight.status).toBe(401);
  });

  it('answers 413 for a body over the limit, declared or streamed', async () => {
    await using api = await serveApi();
    const big = JSON.stringify({ sessionId: 'x'.repeat(2 << 20) });
    const declared = await api.call('POST', '/v1/sessions', { raw: big });
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe('ERR_BODY_TOO_LARGE');

    const chunk = Buffer.alloc(256 << 10, 'x');
    const streamed = await rawRequest(api.port, {
      method: 'POST',
      path: '/v1/sessions',
      headers: {
        host: `127.0.0.1:${api.port}`,
        authorization: `Bearer ${api.token}`,
        'transfer-encoding': 'chunked',
      },
      chunks: Array.from({ length: 8 }, () => chunk),
    });
    expect(streamed.status).toBe(413);
    expect(api.vigil.sessions.list()).toEqual([]);
  });
});

describe('HTTP API validation', () => {
  const cases: { name: string; path: string; init: CallInit; code: string; field: string }[] = [
    {
      name: 'invalid JSON',
      path: '/v1/sessions/s1/processes',
      init: { raw: '{"command":' },
      code: 'ERR_INVALID_INPUT',
      field: 'body',
    },
    { name: 'a missing body', path: '/v1/sessions', init: {}, code: 'ERR_INVALID_INPUT', field: 'body' },
    {
      name: 'a body that is not an object',
      path: '/v1/sessions',
      init: { body: [1] },
      code: 'ERR_INVALID_INPUT',
      field: 'body',
    },
    {
      name: 'a wrong type',
      path: '/v1/sessions/s1/processes',
      init: { body: { command: 42 } },
      code: 'ERR_INVALID_INPUT',
      field: 'command',
    },
    {
      name: 'a wrong nested type',
      path: '/v1/sessions/s1/processes',
      init: { body: { command: 'true', env: { A: 1 } } },
      code: 'ERR_INVALID_INPUT',
      field: 'env.A',
    },
    {
      name: 'an unknown field',
      path: '/v1/sessions/s1/processes',
      init: { body: { command: 'true', colour: 'red' } },
      code: 'ERR_INVALID_INPUT',
      field: 'colour',
    },
    {
      name: 'a sessionId in a spawn body',
      path: '/v1/sessions/s1/processes',
      init: { body: { command: 'true', sessionId: 's2' } },
      code: 'ERR_INVALID_INPUT',
      field: 'sessionId',
    },
    {
      name: 'a bad regex',
      path: '/v1/sessions/s1/processes',
      init: { body: { command: 'true', watch: [{ regex: '(' }] } },
      code: 'ERR_INVALID_PATTERN',
      field: 'watch[0]',
    },
    {
      name: 'a negative timeoutMs',
      path: '/v1/sessions/s1/processes',
      init: { body: { command: 'true', timeoutMs: -1 } },
      code: 'ERR_INVALID_INPUT',
      field: 'timeoutMs',
    },
    {
      name: 'a yieldMs above its cap',
      path: '/v1/sessions/s1/processes',
      init: { body: { command: 'true', yieldMs: 120_001 } },
      code: 'ERR_INVALID_INPUT',
      field: 'yieldMs',
    },
    {
      name: 'a bad decision',
      path: '/v1/sessions/s1/approvals/appr_000000000000',
      init: { body: { decision: 'maybe' } },
      code: 'ERR_INVALID_INPUT',
      field: 'decision',
    },
    {
      name: 'a bad session id',
      path: '/v1/sessions',
      init: { body: { sessionId: 'has space' } },
      code: 'ERR_INVALID_SESSION_ID',
      field: 'sessionId',
    },
    {
      name: 'a bad signal',
      path: '/v1/processes/proc_000000000000/kill',
      init: { body: { signal: 'SIGNOPE' } },
      code: 'ERR_INVALID_INPUT',
      field: 'signal',
    },
    {
      name: 'a non-string write',
      path: '/v1/processes/proc_000000000000/write',
      init: { body: { data: 1 } },
      code: 'ERR_INVALID_INPUT',
      field: 'data',
    },
  ];

  for (const { name, path, init, code, field } of cases) {
    it(`answers 400 naming the field for ${name}`, async () => {
      await using api = await serveApi();
      await api.vigil.sessions.open('s1');
      const answer = await api.call('POST', path, init);
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe(code);
      expect(answer.body.error.message).toContain(field);
      expect(api.vigil.stats().processes).toBe(0);
    });
  }

  it('answers 400 naming the query parameter for a bad, unknown or repeated one', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    for (const [query, field] of [
      ['after=x', 'after'],
      ['after=-1', 'after'],
      ['after=99', 'after'],
      ['limit=0', 'limit'],
      ['colour=red', 'colour'],
      ['after=0&after=1', 'after'],
    ] as const) {
      const answer = await api.call('GET', `/v1/sessions/s1/events?${query}`);
      expect(answer.status, query).toBe(400);
      expect(answer.body.error.message, query).toContain(field);
    }
  });

  it('answers 404 for an unknown route or id, 405 with Allow for a wrong method', async () => {
    await using api = await serveApi();
    expect((await api.call('GET', '/v1/nothing')).status).toBe(404);
    expect((await api.call('GET', '/v1/sessions/s1/processes/extra')).status).toBe(404);
    const unknownSession = await api.call('GET', '/v1/sessions/nope');
    expect(unknownSession.status).toBe(404);
    expect(unknownSession.body.error.code).toBe('ERR_UNKNOWN_SESSION');
    const unknownProcess = await api.call('GET', '/v1/processes/proc_000000000000');
    expect(unknownProcess.body.error.code).toBe('ERR_UNKNOWN_PROCESS');
    const wrongMethod = await api.call('PUT', '/v1/sessions');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST, GET');
    expect(wrongMethod.body.error.code).toBe('ERR_METHOD_NOT_ALLOWED');
  });

  it('answers 409 for a session opened twice and for a spawn into a closed session', async () => {
    await using api = await serveApi();
    expect((await api.call('POST', '/v1/sessions', { body: { sessionId: 's1' } })).status).toBe(201);
    const twice = await api.call('POST', '/v1/sessions', { body: { sessionId: 's1' } });
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('ERR_SESSION_EXISTS');
    expect((await api.call('DELETE', '/v1/sessions/s1')).status).toBe(200);
    const closed = await api.call('POST', '/v1/sessions/s1/processes', { body: { command: 'true' } });
    expect(closed.status).toBe(409);
    expect(closed.body.error.code).toBe('ERR_SESSION_CLOSED');
  });

  it('answers 429 when the per-session process cap is reached', async () => {
    await using api = await serveApi({ processes: { maxPerSession: 1 } });
    await api.vigil.sessions.open('s1');
    expect(
      (await api.call('POST', '/v1/sessions/s1/processes', { body: { command: ['sleep', '30'] } })).status,
    ).toBe(201);
    const second = await api.call('POST', '/v1/sessions/s1/processes', {
      body: { command: ['sleep', '30'] },
    });
    expect(second.status).toBe(429);
    expect(second.body.error.code).toBe('ERR_LIMIT_EXCEEDED');
    expect(api.vigil.stats().processes).toBe(1);
  });
});

describe('HTTP API routes', () => {
  it('pages GET /v1/sessions in id order, 100 by default, with the cursor of the next page', async () => {
    await using api = await serveApi();
    const ids = Array.from({ length: 250 }, (_, i) => `s-${String(249 - i).padStart(3, '0')}`);
    await Promise.all(ids.map((id) => api.vigil.sessions.open(id)));
    const pages: string[][] = [];
    let after: string | null = '';
    while (after !== null) {
      const query: string = after === '' ? '' : `?after=${after}`;
      const page = (await api.call('GET', `/v1/sessions${query}`)).body;
      expect(page.total).toBe(250);
      pages.push(page.sessions.map((s: { sessionId: string }) => s.sessionId));
      after = page.next;
    }
    expect(pages.map((page) => page.length)).toEqual([100, 100, 50]);
    expect(pages.flat()).toEqual([...ids].sort());
    const small = (await api.call('GET', '/v1/sessions?limit=2&after=s-100')).body;
    expect(small).toMatchObject({ next: 's-102', total: 250 });
    expect(small.sessions.map((s: { sessionId: string }) => s.sessionId)).toEqual(['s-101', 's-102']);
    for (const bad of ['limit=0', 'limit=1001', 'limit=x', 'after=']) {
      const refused = await api.call('GET', `/v1/sessions?${bad}`);
      expect(refused.status).toBe(400);
      expect(refused.body.error.details.field).toBe(bad.split('=')[0]);
    }
  });

  it('opens, lists and reads sessions, spawns, waits, and reads the output', async () => {
    await using api = await serveApi();
    const opened = await api.call('POST', '/v1/sessions', { body: { sessionId: 's1' } });
    expect(opened.status).toBe(201);
    expect(opened.body).toMatchObject({ sessionId: 's1', state: 'open' });
    expect(
      (await api.call('GET', '/v1/sessions')).body.sessions.map((s: { sessionId: string }) => s.sessionId),
    ).toEqual(['s1']);

    const spawned = await api.call('POST', '/v1/sessions/s1/processes', {
      body: { command: "printf 'one\\ntwo\\n'" },
    });
    expect(spawned.status).toBe(201);
    const pid: string = spawned.body.processId;
    const waited = await api.call('POST', `/v1/processes/${pid}/wait?timeoutMs=20000`);
    expect(waited.body).toMatchObject({
      timedOut: false,
      process: { processId: pid, state: 'exited', exitCode: 0 },
    });
    expect((await api.call('GET', `/v1/processes/${pid}`)).body.completionConsumed).toBe(true);
    expect((await api.call('GET', `/v1/processes/${pid}/log?offset=1&limit=1`)).body).toMatchObject({
      processId: pid,
      lines: ['two'],
    });
    expect((await api.call('GET', `/v1/processes/${pid}/poll`)).body.tail).toBe('one\ntwo\n');
    const listed = await api.call('GET', '/v1/sessions/s1/processes');
    expect(listed.body.processes.map((p: { processId: string }) => p.processId)).toEqual([pid]);

    const page = await api.call('GET', '/v1/sessions/s1/events?after=0&limit=1000');
    expect(page.body).toEqual(JSON.parse(JSON.stringify(await api.vigil.tape.read('s1', { limit: 1000 }))));
    expect(page.body.events.map((e: { type: string }) => e.type)).toContain('process.exited');
    const stats = await api.call('GET', '/v1/stats');
    expect(stats.body).toMatchObject({ sessions: 1, processes: 0, http: { streams: 0, waiting: 0 } });
  });

  it('spawns with yieldMs: a quick command answers with its exit and output, a slow one as running', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    const quick = await api.call('POST', '/v1/sessions/s1/processes', {
      body: { command: 'echo fast; exit 2', yieldMs: 60_000 },
    });
    expect(quick.status).toBe(201);
    expect(quick.body).toMatchObject({
      finished: true,
      tail: 'fast\n',
      process: { state: 'exited', exitCode: 2, completionConsumed: true },
    });
    const slow = await api.call('POST', '/v1/sessions/s1/processes', {
      body: { command: ['sleep', '30'], yieldMs: 10, timeoutMs: 100 },
    });
    expect(slow.body).toMatchObject({ finished: false, process: { state: 'running', timedOut: false } });
    const waited = await api.call(
      'POST',
      `/v1/processes/${slow.body.process.processId}/wait?timeoutMs=20000`,
    );
    expect(waited.body).toMatchObject({ process: { state: 'killed', timedOut: true } });
  });

  it('caps a wait at timeoutMs and answers timedOut', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    const { processId } = api.vigil.processes.spawn({ sessionId: 's1', command: ['sleep', '30'] });
    const waited = await api.call('POST', `/v1/processes/${processId}/wait?timeoutMs=10`);
    expect(waited.body).toMatchObject({ timedOut: true, process: { state: 'running' } });
  });

  it('writes to stdin and kills with a signal', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    const cat = api.vigil.processes.spawn({ sessionId: 's1', command: ['head', '-n', '1'] });
    const written = await api.call('POST', `/v1/processes/${cat.processId}/write`, {
      body: { data: 'hello\n' },
    });
    expect(written.body).toEqual({ processId: cat.processId, bytes: 6, eof: false });
    const done = await api.vigil.processes.wait(cat.processId);
    expect(api.vigil.processes.poll(done.process.processId).tail).toBe('hello\n');

    const sleeper = api.vigil.processes.spawn({ sessionId: 's1', command: ['sleep', '30'] });
    const killed = await api.call('POST', `/v1/processes/${sleeper.processId}/kill`, {
      body: { signal: 'SIGKILL' },
    });
    expect(killed.body).toMatchObject({ state: 'killed', signal: 'SIGKILL' });
    const other = api.vigil.processes.spawn({ sessionId: 's1', command: ['sleep', '30'] });
    expect((await api.call('POST', `/v1/processes/${other.processId}/kill`)).body.state).toBe('killed');
  });

  it('removes a process that ended with DELETE (409 while it runs), and lists names and completion policies', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    const spawned = await api.call('POST', '/v1/sessions/s1/processes', {
      body: { command: 'sleep 30', notifyOnComplete: 'onFailure', notifyOnEmptySuccess: false },
    });
    const { processId } = spawned.body;
    const listed = await api.call('GET', '/v1/sessions/s1/processes');
    expect(listed.body.processes).toEqual([
      expect.objectContaining({
        processId,
        name: 'sleep 30',
        notifyOnComplete: 'onFailure',
        notifyOnEmptySuccess: false,
      }),
    ]);
    const running = await api.call('DELETE', `/v1/processes/${processId}`);
    expect(running.status).toBe(409);
    expect(running.body.error).toMatchObject({
      code: 'ERR_PROCESS_RUNNING',
      details: { field: 'processId' },
    });
    await api.call('POST', `/v1/processes/${processId}/kill`);
    const removed = await api.call('DELETE', `/v1/processes/${processId}`);
    expect(removed.body).toMatchObject({ processId, state: 'killed' });
    expect((await api.call('GET', `/v1/processes/${processId}`)).status).toBe(404);
    expect((await api.call('GET', '/v1/sessions/s1/processes')).body.processes).toEqual([]);
  });

  it('writes with eof, closes stdin and resizes a terminal', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    const cat = api.vigil.processes.spawn({ sessionId: 's1', command: 'cat' });
    const written = await api.call('POST', `/v1/processes/${cat.processId}/write`, {
      body: { data: 'last', eof: true },
    });
    expect(written.body).toEqual({ processId: cat.processId, bytes: 4, eof: true });
    expect((await api.vigil.processes.wait(cat.processId)).process).toMatchObject({ exitCode: 0 });
    expect(api.vigil.processes.poll(cat.processId).tail).toBe('last');

    const reader = api.vigil.processes.spawn({ sessionId: 's1', command: 'wc -c' });
    const closed = await api.call('POST', `/v1/processes/${reader.processId}/close-stdin`);
    expect(closed).toMatchObject({ status: 200, body: { processId: reader.processId } });
    await api.vigil.processes.wait(reader.processId);
    expect(api.vigil.processes.poll(reader.processId).tail).toBe('0\n');

    const terminal = api.vigil.processes.spawn({ sessionId: 's1', command: 'read line', pty: true });
    const resized = await api.call('POST', `/v1/processes/${terminal.processId}/resize`, {
      body: { cols: 120, rows: 40 },
    });
    expect(resized.body).toMatchObject({ terminal: { cols: 120, rows: 40 } });
    const refused = await api.call('POST', `/v1/processes/${terminal.processId}/resize`, {
      body: { cols: 0, rows: 40 },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'ERR_INVALID_INPUT', details: { field: 'cols' } });
    const notTerminal = await api.call('POST', `/v1/processes/${reader.processId}/resize`, {
      body: { cols: 100, rows: 40 },
    });
    expect(notTerminal.body.error).toMatchObject({ code: 'ERR_INVALID_INPUT' });
    await api.vigil.processes.kill(terminal.processId);
  });

  it('shows the approval snapshot and applies a decision', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    const spawned = await api.call('POST', '/v1/sessions/s1/processes', {
      body: { command: 'true', requireApproval: true, description: 'runs true' },
    });
    expect(spawned.body.state).toBe('pending_approval');
    const snapshot = await api.call('GET', '/v1/sessions/s1/approvals');
    expect(snapshot.body).toMatchObject({
      count: 1,
      head: { processId: spawned.body.processId, description: 'runs true' },
    });
    const approvalId: string = snapshot.body.head.approvalId;
    const decided = await api.call('POST', `/v1/sessions/s1/approvals/${approvalId}`, {
      body: { decision: 'approve' },
    });
    expect(decided.body).toEqual({ approvalId, outcome: 'approved' });
    const again = await api.call('POST', `/v1/sessions/s1/approvals/${approvalId}`, {
      body: { decision: 'deny' },
    });
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('ERR_UNKNOWN_APPROVAL');
    expect((await api.call('GET', '/v1/sessions/s1/approvals')).body).toMatchObject({ count: 0, head: null });
  });

  it('long-polls the tape and answers with the next event', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    const { lastSeq } = api.vigil.sessions.get('s1');
    const polled = api.call('GET', `/v1/sessions/s1/events?after=${lastSeq}&wait=30000`);
    api.vigil.approvals.request('s1', { command: 'deploy' });
    const page = await polled;
    expect(page.body.events).toMatchObject([{ seq: lastSeq + 1, type: 'approval.requested' }]);
  });

  it('ends a long-poll and a wait when the client disconnects, leaving nothing waiting', async () => {
    const reads: Promise<unknown>[] = [];
    const waits: Promise<unknown>[] = [];
    let started!: () => void;
    const twoStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    await using api = await serveApi({}, {}, (vigil) => ({
      ...vigil,
      tape: {
        ...vigil.tape,
        read: (sessionId, options) => {
          const read = vigil.tape.read(sessionId, options);
          reads.push(read);
          if (reads.length + waits.length === 2) started();
          return read;
        },
      },
      processes: {
        ...vigil.processes,
        wait: (processId, options) => {
          const wait = vigil.processes.wait(processId, options);
          waits.push(wait);
          if (reads.length + waits.length === 2) started();
          return wait;
        },
      },
    }));
    await api.vigil.sessions.open('s1');
    const { processId } = api.vigil.processes.spawn({ sessionId: 's1', command: ['sleep', '30'] });
    const client = new AbortController();
    // Past its process.started (the spawner's report comes a moment later), the tape is quiet.
    await startedPid(api.vigil, processId);
    const lastSeq = api.vigil.sessions.get('s1').lastSeq;
    const calls = [
      api.call('GET', `/v1/sessions/s1/events?after=${lastSeq}&wait=60000`, { signal: client.signal }),
      api.call('POST', `/v1/processes/${processId}/wait`, { signal: client.signal }),
    ];
    await twoStarted;
    expect(api.handler.stats().waiting).toBe(2);
    client.abort();
    await Promise.all(calls.map((call) => expect(call).rejects.toThrow()));
    await expect(reads[0]).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await expect(waits[0]).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(api.handler.stats()).toMatchObject({ waiting: 0 });
    expect(api.vigil.processes.get(processId)).toMatchObject({ state: 'running', completionConsumed: false });
  });

  it('answers DELETE only after the session poller is gone (worker host)', async () => {
    const host = createWorkerHost({ pool: { minThreads: 0, maxThreads: 2, pollersPerThread: 1 } });
    await using api = await serveApi({ host });
    const order: string[] = [];
    api.vigil.on('poller:exited', (info) => {
      if (info.sessionId === 's1') order.push('poller:exited');
    });
    expect((await api.call('POST', '/v1/sessions', { body: { sessionId: 's1' } })).status).toBe(201);
    const running = await api.call('POST', '/v1/sessions/s1/processes', {
      body: { command: ['sleep', '30'] },
    });
    expect(api.vigil.stats()).toMatchObject({ pollers: 1, threads: 1, processes: 1 });

    const closed = await api.call('DELETE', '/v1/sessions/s1?reason=done');
    order.push('response');
    expect(closed.status).toBe(200);
    expect(closed.body).toEqual({ sessionId: 's1', reason: 'done', forced: false });
    expect(order).toEqual(['poller:exited', 'response']);
    expect(api.vigil.stats()).toMatchObject({ sessions: 0, pollers: 0, threads: 0, processes: 0 });
    expect(api.vigil.processes.get(running.body.processId).state).toBe('killed');
    const tape = await api.vigil.tape.read('s1', { limit: 1000 });
    expect(tape.events.at(-1)?.type).toBe('session.closed');
  });

  it('answers 503 once closed, and close ends what is in flight', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('s1');
    let opened!: () => void;
    const streamOpened = new Promise<void>((resolve) => {
      opened = resolve;
    });
    api.handler.on('stream:opened', () => opened());
    const stream = fetch(`${api.base}/v1/stream?sessions=s1`, {
      headers: { authorization: `Bearer ${api.token}` },
    });
    await streamOpened;
    await api.handler.close();
    expect(await (await stream).text()).toMatch(/^retry: 2000\n\n/);
    const after = await api.call('GET', '/v1/stats');
    expect(after.status).toBe(503);
    expect(after.body.error.code).toBe('ERR_CLOSED');
    expect(api.handler.stats()).toMatchObject({ streams: 0, waiting: 0 });
  });
});
