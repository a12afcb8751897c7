import { once } from 'node:events';
import { get, type IncomingMessage } from 'node:http';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect } from 'vitest';
import { startedPid } from '../../../test/support/processes.js';
import { raceIt } from '../../../test/support/race.js';
import type { HttpHandler, StreamInfo } from '../src/http/handler.js';
import { decodeStreamId } from '../src/http/sse-stream.js';
import { type ApiServer, serveApi } from './support/serve-api.js';

interface SseEvent {
  readonly event: string;
  readonly id: string;
  // biome-ignore lint/suspicious/noExplicitAny: event payloads are inspected loosely in tests
  readonly data: any;
}

/** The complete events of an SSE text (comments and `retry:` skipped). */
function parseEvents(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n').slice(0, -1)) {
    const fields = new Map<string, string>();
    for (const line of block.split('\n')) {
      const colon = line.indexOf(': ');
      if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 2));
    }
    const data = fields.get('data');
    if (data !== undefined)
      events.push({
        event: fields.get('event') ?? 'message',
        id: fields.get('id') ?? '',
        data: JSON.parse(data),
      });
  }
  return events;
}

/** A stream read as fast as it comes: every event, in order. */
class Reader {
  readonly events: SseEvent[] = [];
  readonly done: Promise<void>;
  readonly #abort = new AbortController();
  #waiters: { match: (event: SseEvent) => boolean; resolve: () => void }[] = [];

  constructor(api: ApiServer, query: string, lastEventId?: string) {
    const headers: Record<string, string> = { authorization: `Bearer ${api.token}` };
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    this.done = this.#read(fetch(`${api.base}/v1/stream?${query}`, { headers, signal: this.#abort.signal }));
    api.defer(() => this.stop());
  }

  next(match: (event: SseEvent) => boolean): Promise<void> {
    if (this.events.some(match)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.done;
  }

  async #read(response: Promise<Response>): Promise<void> {
    let text = '';
    try {
      for await (const chunk of (await response).body!.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        const end = text.lastIndexOf('\n\n');
        if (end < 0) continue;
        for (const event of parseEvents(text.slice(0, end + 2))) {
          this.events.push(event);
          for (const waiter of this.#waiters.filter((w) => w.match(event))) {
            this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
            waiter.resolve();
          }
        }
        text = text.slice(end + 2);
      }
    } catch (error) {
      if (!this.#abort.signal.aborted) throw error;
    }
  }
}

/** A stream whose client reads nothing until `readAll()`: the response stays paused (backpressure reaches the socket). */
async function stalledStream(api: ApiServer, query: string): Promise<{ readAll(): Promise<string> }> {
  const [res] = (await once(
    get(`${api.base}/v1/stream?${query}`, { headers: { authorization: `Bearer ${api.token}` } }),
    'response',
  )) as [IncomingMessage];
  expect(res.statusCode).toBe(200);
  res.pause();
  api.defer(() => void res.destroy());
  return {
    async readAll() {
      res.setEncoding('utf8');
      let text = '';
      for await (const chunk of res) text += chunk;
      return text;
    },
  };
}

function nextStreamClosed(handler: HttpHandler): Promise<StreamInfo> {
  return new Promise((resolve) => {
    const off = handler.on('stream:closed', (info) => {
      off();
      resolve(info);
    });
  });
}

/** Prints 4 KiB lines every 100 ms until killed. */
const PRINTER = `line=$(printf '%4096s' '' | tr ' ' x); while :; do echo "$line"; sleep 0.1; done`;

describe('SSE backpressure', () => {
  raceIt(
    'keeps a stalled client bounded and drops it with its cursor, while a reader of the same session gets everything',
    async () => {
      await using api = await serveApi({}, { stream: { stallTimeoutMs: 1_500 } });
      const { vigil, handler } = api;
      await vigil.sessions.open('s');
      for (let i = 0; i < 10; i++) vigil.processes.spawn({ sessionId: 's', command: PRINTER });
      const stalled = await stalledStream(api, 'sessions=s');
      const reader = new Reader(api, 'sessions=s');
      await reader.next((event) => event.event === 'output');
      expect(handler.stats().streams).toBe(2);

      // Tape events and approval snapshots of 16 KiB each: megabytes more than the socket buffers hold.
      const dropped = nextStreamClosed(handler);
      let peak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, handler.stats().streamBufferedBytes);
          await turn();
        }
      })();
      const requests = 400;
      for (let i = 0; i < requests; i++) {
        vigil.approvals.request('s', { command: `${i} ${'y'.repeat(16 << 10)}` });
        if (i % 10 === 9) await turn();
      }
      const closed = await dropped;
      sampling = false;
      await sampler;
      expect(closed).toEqual({ sessions: ['s'], dropped: 'stalled' });
      expect(handler.stats()).toMatchObject({ streams: 1, streamsDropped: 1 });
      // At most one event (16 KiB and its JSON) above each response's 16 KiB high-water mark.
      expect(peak).toBeLessThan(2 * 64 * 1024);

      // The reader kept up: every approval on the tape, no drop.
      await reader.next(
        (event) => event.event === 'tape' && event.data.event.data?.command?.startsWith(`${requests - 1} `),
      );
      const requested = reader.events.filter(
        (event) => event.event === 'tape' && event.data.event.type === 'approval.requested',
      );
      expect(requested).toHaveLength(requests);
      expect(reader.events.some((event) => event.event === 'dropped')).toBe(false);

      // The stalled client, reading at last, finds its stream ended by `dropped` with its cursor.
      const events = parseEvents(await stalled.readAll());
      const last = events.at(-1);
      expect(last?.event).toBe('dropped');
      expect(last?.data).toMatchObject({ reason: 'stalled', lastEventId: last?.id });
      const cursor = decodeStreamId(last?.id ?? '').get('s') ?? -1;
      const tape = events.filter((event) => event.event === 'tape').map((event) => event.data.event.seq);
      expect(tape.at(-1)).toBe(cursor);
      expect(tape).toEqual(Array.from({ length: tape.length }, (_, i) => i + 1));
      expect(cursor).toBeLessThan(vigil.sessions.get('s').lastSeq);

      // Resuming from that id continues right after the cursor.
      const resumed = new Reader(api, 'sessions=s', last?.id);
      await resumed.next((event) => event.event === 'tape');
      expect(resumed.events.find((event) => event.event === 'tape')?.data.event.seq).toBe(cursor + 1);
    },
    60_000,
  );
});

describe('caps on streams and long-polls', () => {
  const isTape = (event: SseEvent): boolean => event.event === 'tape';

  raceIt(
    'answers 429 naming stream.maxStreams over the cap, and admits a stream again once one closed',
    async () => {
      await using api = await serveApi({}, { stream: { maxStreams: 2 } });
      await api.vigil.sessions.open('s');
      const first = new Reader(api, 'sessions=s');
      const second = new Reader(api, 'sessions=s');
      await Promise.all([first.next(isTape), second.next(isTape)]);

      const over = await api.call('GET', '/v1/stream?sessions=s');
      expect(over.status).toBe(429);
      expect(over.body.error).toEqual({
        code: 'ERR_LIMIT_EXCEEDED',
        message: 'Too many streams: at most 2 at once (stream.maxStreams)',
        details: { limit: 'stream.maxStreams', max: 2 },
      });
      expect(api.handler.stats().streams).toBe(2);

      const closed = nextStreamClosed(api.handler);
      await first.stop();
      await closed;
      const third = new Reader(api, 'sessions=s');
      await third.next(isTape);
      expect(api.handler.stats().streams).toBe(2);
    },
  );

  raceIt(
    'answers 429 naming maxLongPolls over the cap, counting tape and process waits together',
    async () => {
      await using api = await serveApi({}, { maxLongPolls: 2 });
      const { vigil } = api;
      await vigil.sessions.open('s');
      const { processId } = vigil.processes.spawn({ sessionId: 's', command: 'read line' });
      // Its process.started comes a moment later (the spawner's report): past it, the tape is quiet.
      await startedPid(vigil, processId);
      const { lastSeq } = vigil.sessions.get('s');
      const abort = new AbortController();
      const tapeWait = api
        .call('GET', `/v1/sessions/s/events?after=${lastSeq}&wait=30000`, { signal: abort.signal })
        .catch(() => undefined);
      const processWait = api.call('POST', `/v1/processes/${processId}/wait?timeoutMs=30000`);
      while (api.handler.stats().waiting < 2) await turn();

      const refused = {
        code: 'ERR_LIMIT_EXCEEDED',
        message: 'Too many long-polls: at most 2 at once (maxLongPolls)',
        details: { limit: 'maxLongPolls', max: 2 },
      };
      const overTape = await api.call('GET', `/v1/sessions/s/events?after=${lastSeq}&wait=1000`);
      expect({ status: overTape.status, error: overTape.body.error }).toEqual({
        status: 429,
        error: refused,
      });
      const overProcess = await api.call('POST', `/v1/processes/${processId}/wait?timeoutMs=1000`);
      expect(overProcess.status).toBe(429);
      // A read that does not wait is no long-poll.
      expect((await api.call('GET', '/v1/sessions/s/events')).status).toBe(200);

      await vigil.processes.write(processId, 'done\n');
      expect((await processWait).body).toMatchObject({ process: { processId, state: 'exited' } });
      expect((await api.call('GET', `/v1/sessions/s/events?after=0&wait=1000`)).status).toBe(200);
      abort.abort();
      await tapeWait;
      while (api.handler.stats().waiting > 0) await turn();
    },
  );
});
