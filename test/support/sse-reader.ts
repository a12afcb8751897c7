// A plain reader of the API's SSE stream over fetch: what an EventSource does, without its
// automatic reconnection, so a test decides when (and with which Last-Event-ID) it reconnects.
import { Recorder } from './recorder.js';

export interface SseEvent {
  readonly id: string;
  readonly event: string;
  // biome-ignore lint/suspicious/noExplicitAny: event payloads are inspected loosely in tests
  readonly data: any;
}

export interface SseReader {
  /** Every event received so far, and a way to await one. */
  readonly events: Recorder<SseEvent>;
  /** The `id:` of the last event received: what an EventSource would send as `Last-Event-ID`. */
  lastEventId(): string | undefined;
  /** Settles once the response ended: the server closed it, died, or `stop()` was called. */
  readonly ended: Promise<void>;
  stop(): void;
}

/** Opens `url` (a `/v1/stream` URL) with `token`, resuming after `lastEventId` if given. */
export async function readSse(url: string, token: string, lastEventId?: string): Promise<SseReader> {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: {
      authorization: `Bearer ${token}`,
      ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
    },
    signal: abort.signal,
  });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`stream answered ${response.status}: ${await response.text()}`);
  }
  const events = new Recorder<SseEvent>();
  let last = lastEventId;
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map<string, string>();
          for (const line of block.split('\n')) {
            const colon = line.indexOf(':');
            if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
          }
          const event = fields.get('event');
          const id = fields.get('id');
          if (event === undefined || id === undefined) continue;
          last = id;
          events.push({ id, event, data: JSON.parse(fields.get('data') ?? 'null') });
        }
      }
    } catch {
      // The connection dropped (the server was killed) or was stopped: the events so far stand.
    }
  })();
  return { events, lastEventId: () => last, ended, stop: () => abort.abort() };
}
