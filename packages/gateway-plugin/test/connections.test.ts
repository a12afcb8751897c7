import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { apiClient } from '../../../test/support/http.js';
import { raceIt } from '../../../test/support/race.js';
import { startGateway } from '../src/cli/gateway.js';
import { serveApi } from './support/serve-api.js';

const TOKEN = 'connections-test-token-0123456789';

/** A raw connection that records everything the server sends; `closed` resolves with it once the server closed. */
function rawConnection(port: number): { socket: Socket; closed: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  // A reset after the answer (the server closed with our bytes unread) is a close too.
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => text);
  return { socket, closed };
}

/** The status code and lower-cased headers of the first response in `text`. */
function head(text: string): { status: number; headers: Map<string, string> } {
  const [statusLine = '', ...lines] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
  const headers = new Map(
    lines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers };
}

describe('HTTP connections', () => {
  raceIt(
    'closes the connection after an early 401, 403 or 413 instead of reading the rest of the body',
    async () => {
      await using api = await serveApi({}, { bodyLimitBytes: 1024 });
      const host = `127.0.0.1:${api.port}`;
      const cases = [
        { status: 401, headers: `Host: ${host}` },
        { status: 403, headers: `Host: evil.example\r\nAuthorization: Bearer ${api.token}` },
        { status: 413, headers: `Host: ${host}\r\nAuthorization: Bearer ${api.token}` },
      ];
      for (const { status, headers } of cases) {
        const { socket, closed } = rawConnection(api.port);
        // Announces 13 MB, sends 64 KiB, then nothing: only the server can end this connection.
        socket.write(
          `POST /v1/sessions HTTP/1.1\r\n${headers}\r\nContent-Type: application/json\r\nContent-Length: 13000000\r\n\r\n`,
        );
        socket.write(Buffer.alloc(64 << 10, 'x'));
        const answer = head(await closed);
        expect(answer.status).toBe(status);
        expect(answer.headers.get('connection')).toBe('close');
      }
      expect(api.vigil.sessions.list()).toEqual([]);
    },
  );

  raceIt(
    'disconnects clients trickling their headers or body, and cuts no stream or long-poll',
    async () => {
      await using gateway = await startGateway({
        port: 0,
        token: TOKEN,
        http: { headersTimeoutMs: 300, requestTimeoutMs: 600 },
      });
      const call = apiClient(gateway.url, TOKEN);
      await call('POST', '/v1/sessions', { body: { sessionId: 's' } });
      const { lastSeq } = gateway.plugin.vigil.sessions.get('s');
      const abort = new AbortController();
      const stream = await fetch(`${gateway.url}/v1/stream?sessions=s`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: abort.signal,
      });
      const longPoll = call('GET', `/v1/sessions/s/events?after=${lastSeq}&wait=60000`);
      while (gateway.handler.stats().waiting < 1) await new Promise((resolve) => setImmediate(resolve));

      const port = Number(new URL(gateway.url).port);
      const trickle = (start: string, byte: string): Promise<string> => {
        const { socket, closed } = rawConnection(port);
        socket.write(start);
        const timer = setInterval(() => socket.writable && socket.write(byte), 50);
        return closed.finally(() => clearInterval(timer));
      };
      const [headers, body] = await Promise.all([
        trickle(`GET /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`, 'x'),
        trickle(
          `POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
          ' ',
        ),
      ]);
      expect(head(headers).status).toBe(408);
      expect(head(body).status).toBe(408);

      // Both were opened before the tricklers and outlived them: their requests were complete.
      expect(gateway.handler.stats()).toMatchObject({ streams: 1, waiting: 1 });
      gateway.plugin.vigil.approvals.request('s', { command: 'still there?' });
      expect((await longPoll).body.events).toEqual([expect.objectContaining({ type: 'approval.requested' })]);
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      while (!text.includes('still there?')) text += (await reader.read()).value ?? '';
      abort.abort();
    },
    30_000,
  );
});

describe('framing', () => {
  it('forbids framing the page and every API response', async () => {
    await using gateway = await startGateway({ port: 0, token: TOKEN });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const abort = new AbortController();
    await apiClient(gateway.url, TOKEN)('POST', '/v1/sessions', { body: { sessionId: 's' } });
    const responses = {
      page: await fetch(`${gateway.url}/`),
      script: await fetch(`${gateway.url}/assets/app.js`),
      ok: await fetch(`${gateway.url}/v1/stats`, { headers: auth }),
      created: await fetch(`${gateway.url}/v1/sessions`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: '{"sessionId":"t"}',
      }),
      unauthorized: await fetch(`${gateway.url}/v1/stats`),
      notFound: await fetch(`${gateway.url}/nope`, { headers: auth }),
      stream: await fetch(`${gateway.url}/v1/stream?sessions=s`, { headers: auth, signal: abort.signal }),
    };
    abort.abort();
    const seen = Object.fromEntries(
      Object.entries(responses).map(([name, res]) => [
        name,
        {
          status: res.status,
          frameOptions: res.headers.get('x-frame-options'),
          frameAncestors: /frame-ancestors 'none'/.test(res.headers.get('content-security-policy') ?? ''),
        },
      ]),
    );
    const denied = { frameOptions: 'DENY', frameAncestors: true };
    expect(seen).toEqual({
      page: { status: 200, ...denied },
      script: { status: 200, ...denied },
      ok: { status: 200, ...denied },
      created: { status: 201, ...denied },
      unauthorized: { status: 401, ...denied },
      notFound: { status: 404, ...denied },
      stream: { status: 200, ...denied },
    });
    // The page keeps its own policy, with frame-ancestors merged in.
    expect(responses.page.headers.get('content-security-policy')).toBe(
      "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    );
  });
});
