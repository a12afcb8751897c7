import type { ApprovalSnapshot, TapeEvent, Vigil } from '@vigil/core';
import { EventSource } from 'eventsource';
import { describe, expect, it } from 'vitest';
import type { HttpHandler } from '../src/http/handler.js';
import { decodeStreamId, encodeStreamId } from '../src/http/sse-stream.js';
import { type ApiServer, serveApi } from './support/serve-api.js';

type Api = ApiServer;

interface Received {
  readonly type: string;
  readonly id: string;
  // biome-ignore lint/suspicious/noExplicitAny: event payloads are inspected loosely in tests
  readonly data: any;
}

/** An `eventsource` client that records every event it is handed until `stop()`. */
class StreamClient {
  readonly source: EventSource;
  readonly received: Received[] = [];
  #stopped = false;
  #stopAfter: ((event: Received) => boolean) | undefined;
  #waiters: { match: (event: Received) => boolean; resolve: (event: Received) => void }[] = [];

  constructor(api: Api, query: string, lastEventId?: string) {
    const headers = {
      authorization: `Bearer ${api.token}`,
      ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
    };
    this.source = new EventSource(`${api.base}/v1/stream?${query}`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
    });
    for (const type of ['tape', 'approval', 'reset', 'failure', 'end']) {
      this.source.addEventListener(type, (event) => this.#record(type, event));
    }
    api.defer(() => this.stop());
  }

  /** Tape events received, per session. */
  tape(sessionId: string): TapeEvent[] {
    return this.received
      .filter((event) => event.type === 'tape' && event.data.sessionId === sessionId)
      .map((event) => event.data.event);
  }

  /** Resolves with the first received event (past or future) that matches. */
  next(match: (event: Received) => boolean): Promise<Received> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  /** Stops right after recording the first event that matches, before the next one is handed over. */
  stopAfter(match: (event: Received) => boolean): Promise<Received> {
    this.#stopAfter = match;
    return this.next(match);
  }

  /** Closes the connection; events the parser still holds are ignored. */
  stop(): void {
    this.#stopped = true;
    this.source.close();
  }

  get lastId(): string {
    return this.received.at(-1)?.id ?? '';
  }

  #record(type: string, event: MessageEvent): void {
    if (this.#stopped) return;
    const received = { type, id: event.lastEventId, data: JSON.parse(event.data as string) };
    this.received.push(received);
    if (this.#stopAfter?.(received)) this.stop();
    for (const waiter of [...this.#waiters]) {
      if (!waiter.match(received)) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve(received);
    }
  }
}

function streamClosed(handler: HttpHandler): Promise<void> {
  return new Promise((resolve) => {
    const off = handler.on('stream:closed', () => {
      off();
      resolve();
    });
  });
}

async function wholeTape(vigil: Vigil, sessionId: string): Promise<TapeEvent[]> {
  const page = await vigil.tape.read(sessionId, { limit: 1000 });
  expect(page.hasMore).toBe(false);
  return JSON.parse(JSON.stringify(page.events));
}

/** Appends `count` events to each session's tape (approval requests, synchronous). */
function append(vigil: Vigil, sessions: readonly string[], count: number): string[] {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    for (const sessionId of sessions)
      ids.push(vigil.approvals.request(sessionId, { command: `step ${i}` }).approvalId);
  }
  return ids;
}

describe('the multiplexed SSE stream', () => {
  it('resumes every session exactly after its cursor when dropped mid-stream: no gap, no duplicate', async () => {
    await using api = await serveApi();
    const { vigil } = api;
    await vigil.sessions.open('a');
    await vigil.sessions.open('b');
    append(vigil, ['a', 'b'], 5);

    const first = new StreamClient(api, 'sessions=a,b');
    const dropped = streamClosed(api.handler);
    await first.stopAfter(() => first.tape('a').length + first.tape('b').length === 7);
    const lastId = first.lastId;
    await dropped;
    expect(api.handler.stats()).toMatchObject({ streams: 0, waiting: 0 });
    const cursors = decodeStreamId(lastId);
    expect([...cursors.keys()]).toEqual(['a', 'b']);
    expect(first.tape('a').length + first.tape('b').length).toBe(7);
    expect(Object.fromEntries(cursors)).toEqual({
      a: first.tape('a').at(-1)?.seq ?? 0,
      b: first.tape('b').at(-1)?.seq ?? 0,
    });

    // More happens while nobody listens; then both sessions close.
    const pending = append(vigil, ['a', 'b'], 3);
    vigil.approvals.respond('a', pending[0] ?? '', 'approve');
    await vigil.sessions.close('a');

    const second = new StreamClient(api, 'sessions=a,b', lastId);
    await second.next((event) => event.type === 'tape' && event.data.event.type === 'approval.requested');
    append(vigil, ['b'], 2);
    await vigil.sessions.close('b');
    const end = await second.next((event) => event.type === 'end');
    expect(end.data).toEqual({ sessions: ['a', 'b'] });

    for (const sessionId of ['a', 'b']) {
      const union = [...first.tape(sessionId), ...second.tape(sessionId)];
      expect(union).toEqual(await wholeTape(vigil, sessionId));
      expect(union.at(-1)?.type).toBe('session.closed');
    }
    expect(decodeStreamId(end.id)).toEqual(
      new Map([
        ['a', vigil.sessions.get('a').lastSeq],
        ['b', vigil.sessions.get('b').lastSeq],
      ]),
    );
    second.stop();

    // Everything was sent: a reconnect from the final id is told to stop with 204.
    const again = await fetch(`${api.base}/v1/stream?sessions=a,b&lastEventId=${end.id}`, {
      headers: { authorization: `Bearer ${api.token}` },
    });
    expect(again.status).toBe(204);
  });

  it('gives every event an id carrying all cursors, and tags events with their session', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('a');
    await api.vigil.sessions.open('b');
    const client = new StreamClient(api, 'sessions=a,b,a');
    await client.next((event) => event.type === 'tape' && event.data.sessionId === 'a');
    await client.next((event) => event.type === 'tape' && event.data.sessionId === 'b');
    for (const event of client.received) {
      expect([...decodeStreamId(event.id).keys()]).toEqual(['a', 'b']);
    }
    const opened = client.tape('a')[0];
    expect(opened).toMatchObject({ seq: 1, type: 'session.opened' });
    expect(client.received.find((event) => event.type === 'tape')?.data).toEqual({
      sessionId: expect.any(String),
      event: expect.objectContaining({ seq: 1, type: 'session.opened' }),
    });
  });

  it('sends approval snapshots live, starting with the current one', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('a');
    const client = new StreamClient(api, 'sessions=a');
    const initial = await client.next((event) => event.type === 'approval');
    expect(initial.data).toEqual({
      sessionId: 'a',
      snapshot: { sessionId: 'a', head: null, count: 0, version: 0 },
    });
    const [approvalId] = append(api.vigil, ['a'], 1);
    const requested = await client.next(
      (event) => event.type === 'approval' && event.data.snapshot.version === 1,
    );
    const snapshot: ApprovalSnapshot = requested.data.snapshot;
    expect(snapshot).toMatchObject({ count: 1, head: { approvalId, command: 'step 0' } });
    api.vigil.approvals.respond('a', approvalId ?? '', 'deny');
    const resolved = await client.next(
      (event) => event.type === 'approval' && event.data.snapshot.version === 2,
    );
    expect(resolved.data.snapshot).toMatchObject({ count: 0, head: null });
    await client.next((event) => event.type === 'tape' && event.data.event.type === 'approval.resolved');
  });

  it('sends retry first and keep-alive comments at the configured interval', async () => {
    await using api = await serveApi({}, { stream: { keepAliveMs: 20, retryMs: 1500 } });
    await api.vigil.sessions.open('a');
    const client = new AbortController();
    const closed = streamClosed(api.handler);
    const res = await fetch(`${api.base}/v1/stream?sessions=a`, {
      headers: { authorization: `Bearer ${api.token}` },
      signal: client.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!text.includes(': keep-alive\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    expect(text.startsWith('retry: 1500\n\n')).toBe(true);
    expect(text).toContain(': keep-alive\n\n');
    client.abort();
    await closed;
    expect(api.handler.stats()).toMatchObject({ streams: 0, waiting: 0 });
  });

  it('releases every subscription when the client disconnects', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('a');
    await api.vigil.sessions.open('b');
    const opened = new Promise<void>((resolve) => {
      const off = api.handler.on('stream:opened', () => {
        off();
        resolve();
      });
    });
    const client = new StreamClient(api, 'sessions=a,b');
    await opened;
    await client.next((event) => event.type === 'tape' && event.data.sessionId === 'b');
    expect(api.handler.stats()).toMatchObject({ streams: 1 });
    const closed = streamClosed(api.handler);
    client.stop();
    await closed;
    expect(api.handler.stats()).toMatchObject({ streams: 0, waiting: 0 });
    // Nothing is subscribed any more: the sessions close without anyone following them.
    await api.vigil.sessions.close('a');
    await api.vigil.sessions.close('b');
    expect(client.received.filter((event) => event.type === 'end')).toEqual([]);
  });

  it('sends a reset with firstSeq when the cursor fell out of the retained window, then continues', async () => {
    await using api = await serveApi({ tape: { maxEvents: 4 } });
    await api.vigil.sessions.open('a');
    append(api.vigil, ['a'], 8);
    const { lastSeq } = api.vigil.sessions.get('a');
    const firstSeq = lastSeq - 3;
    const client = new StreamClient(api, 'sessions=a', encodeStreamId(new Map([['a', 1]])));
    const reset = await client.next((event) => event.type === 'reset');
    expect(reset.data).toEqual({ sessionId: 'a', after: 1, firstSeq });
    expect(decodeStreamId(reset.id).get('a')).toBe(firstSeq - 1);
    await client.next((event) => event.type === 'tape' && event.data.event.seq === lastSeq);
    expect(client.tape('a').map((event) => event.seq)).toEqual([
      firstSeq,
      firstSeq + 1,
      firstSeq + 2,
      lastSeq,
    ]);
  });

  it('resumes from ?lastEventId= when no Last-Event-ID header is sent', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('a');
    append(api.vigil, ['a'], 2);
    const id = encodeStreamId(new Map([['a', 2]]));
    const client = new StreamClient(api, `sessions=a&lastEventId=${id}`);
    await client.next((event) => event.type === 'tape' && event.data.event.seq === 3);
    expect(client.tape('a').map((event) => event.seq)).toEqual([3]);
  });

  it('refuses a bad request before streaming: 401, 404, 400', async () => {
    await using api = await serveApi();
    await api.vigil.sessions.open('a');
    const get = (query: string, headers: Record<string, string> = { authorization: `Bearer ${api.token}` }) =>
      fetch(`${api.base}/v1/stream?${query}`, { headers }).then(async (res) => ({
        status: res.status,
        body: await res.json(),
      }));
    expect((await get('sessions=a', {})).status).toBe(401);
    expect(await get('sessions=a,nope')).toMatchObject({
      status: 404,
      body: { error: { code: 'ERR_UNKNOWN_SESSION' } },
    });
    expect(await get('sessions=')).toMatchObject({
      status: 400,
      body: { error: { code: 'ERR_INVALID_INPUT' } },
    });
    expect(await get('sessions=a&lastEventId=garbage')).toMatchObject({
      status: 400,
      body: { error: { code: 'ERR_INVALID_CURSOR' } },
    });
    const ahead = encodeStreamId(new Map([['a', 99]]));
    expect(await get(`sessions=a&lastEventId=${ahead}`)).toMatchObject({
      status: 400,
      body: { error: { code: 'ERR_INVALID_CURSOR' } },
    });
    expect(api.handler.stats().streams).toBe(0);
  });

  it('accepts ?access_token= on the stream only when allowQueryToken is set', async () => {
    await using strict = await serveApi();
    await strict.vigil.sessions.open('a');
    expect((await fetch(`${strict.base}/v1/stream?sessions=a&access_token=${strict.token}`)).status).toBe(
      401,
    );

    await using api = await serveApi({}, { allowQueryToken: true });
    await api.vigil.sessions.open('a');
    await api.vigil.sessions.close('a');
    const res = await fetch(`${api.base}/v1/stream?sessions=a&access_token=${api.token}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('event: end');
    expect((await fetch(`${api.base}/v1/stats?access_token=${api.token}`)).status).toBe(401);
  });
});
