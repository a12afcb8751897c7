import { setMaxListeners } from 'node:events';
import type { ServerResponse } from 'node:http';
import { type ApprovalSnapshot, toVigilError, type Vigil, VigilError } from '@vigil/core';
import { type DropReason, SseWriter, type WriterLimits } from './sse-writer.js';
import type { StreamSource } from './stream-sources.js';

/**
 * The multiplexed Server-Sent Events stream of `GET /v1/stream?sessions=a,b`.
 *
 * Every event carries `id:` = base64url of the JSON object `{ "<sessionId>": <seq>, ... }`: for each
 * session of the stream, the seq of the last tape event sent (0: none yet). Resuming with that id in
 * `Last-Event-ID` (or `?lastEventId=`) continues every session right after its cursor. Events:
 *
 * - `tape`: `{ sessionId, event }`, one tape event, exactly as `GET /v1/sessions/:sid/events` returns it.
 * - `approval`: `{ sessionId, snapshot }`, an approval snapshot. Not on the tape, so it moves no
 *   cursor: each connection starts with every session's current snapshot, then each later one.
 * - `reset`: `{ sessionId, after, firstSeq }`, the cursor fell out of the retained window; the
 *   session continues from `firstSeq` (events `after + 1 .. firstSeq - 1` are lost).
 * - `failure`: `{ sessionId, error: { code, message } }`, the session's part ended on an error.
 * - `end`: `{ sessions }`, every session's part ended (after its `session.closed`); the response ends.
 *   A reconnect whose cursors are all at their closed session's last event is answered 204.
 * - `dropped`: `{ reason, lastEventId, message }`, the client fell behind and the response ends;
 *   reconnecting with `Last-Event-ID: <lastEventId>` (also this event's `id:`) resumes.
 */

/** Session id → the seq of the last tape event sent for it. */
export type StreamCursors = Map<string, number>;

/** Settings of the stream. */
export interface StreamOptions extends WriterLimits {
  /** Sent first as `retry:`: the client's reconnection delay. */
  readonly retryMs: number;
  /** A `: keep-alive` comment is sent this often. */
  readonly keepAliveMs: number;
}

/** What a stream will serve: its sessions, their starting cursors, and whether all are already finished. */
export interface StreamPlan {
  readonly sessions: readonly string[];
  /** Where each session's events come from. */
  readonly sources: ReadonlyMap<string, StreamSource>;
  readonly cursors: StreamCursors;
  /** Every session is closed and its cursor is at `session.closed`: nothing will ever be sent. */
  readonly done: boolean;
}

/** Encodes every session's cursor as one SSE id. */
export function encodeStreamId(cursors: ReadonlyMap<string, number>): string {
  return Buffer.from(JSON.stringify(Object.fromEntries(cursors)), 'utf8').toString('base64url');
}

/** Decodes an SSE id; anything but an object of non-negative integers is `ERR_INVALID_CURSOR`. */
export function decodeStreamId(id: string): StreamCursors {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(id, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badId();
  const cursors: StreamCursors = new Map();
  for (const [sessionId, seq] of Object.entries(parsed)) {
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw badId();
    cursors.set(sessionId, seq);
  }
  return cursors;
}

function badId(): VigilError {
  return new VigilError('ERR_INVALID_CURSOR', 'Last-Event-ID: not an id this stream sent', {
    details: { field: 'Last-Event-ID' },
  });
}

/**
 * Checks a stream request before any byte is sent: every session exists (`ERR_UNKNOWN_SESSION`), the
 * list is at most `maxSessions` long, and no cursor is ahead of its tape (`ERR_INVALID_CURSOR`).
 */
export async function planStream(
  sessions: readonly string[],
  sourceOf: (sessionId: string) => StreamSource,
  options: { readonly lastEventId: string | undefined; readonly maxSessions: number },
): Promise<StreamPlan> {
  if (sessions.length > options.maxSessions) {
    throw new VigilError(
      'ERR_INVALID_INPUT',
      `Invalid request query: sessions: at most ${options.maxSessions} sessions per stream`,
      { details: { field: 'sessions' } },
    );
  }
  const given =
    options.lastEventId === undefined ? new Map<string, number>() : decodeStreamId(options.lastEventId);
  const cursors: StreamCursors = new Map();
  const sources = new Map(sessions.map((sessionId) => [sessionId, sourceOf(sessionId)] as const));
  const infos = await Promise.all(sessions.map((sessionId) => sources.get(sessionId)!.info()));
  let done = true;
  for (const [i, sessionId] of sessions.entries()) {
    const info = infos[i]!;
    const cursor = given.get(sessionId) ?? 0;
    if (cursor > info.lastSeq) {
      throw new VigilError(
        'ERR_INVALID_CURSOR',
        `Last-Event-ID: the cursor of session ${sessionId} (${cursor}) is ahead of its tape (lastSeq ${info.lastSeq})`,
        { details: { field: 'Last-Event-ID', sessionId, after: cursor, lastSeq: info.lastSeq } },
      );
    }
    cursors.set(sessionId, cursor);
    if (info.state !== 'closed' || cursor < info.lastSeq) done = false;
  }
  return { sessions, sources, cursors, done };
}

const OUTPUT_FLUSH_MS = 250;
const OUTPUT_TAIL_CHARS = 4096;

const HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-store, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/**
 * Serves a planned stream on `res` until every session's part ended or `signal` aborts (the client
 * left, or the API closes). Resolves once every subscription, listener and timer is released, with
 * the reason the client was dropped for, if it was.
 *
 * Backpressure: nothing is written while the response is blocked. Tape events wait (each session's
 * subscription is pulled only when the client took the last write); approval snapshots and output
 * are coalesced meanwhile (the latest snapshot per session, the last output characters per process).
 * A client blocked longer than `stallTimeoutMs`, or holding more than `maxBufferedBytes`, gets a final
 * `dropped` event whose `id:` is its cursor, and the response ends.
 */
export async function runStream(
  vigil: Vigil,
  res: ServerResponse,
  plan: StreamPlan,
  options: StreamOptions & { readonly signal: AbortSignal },
): Promise<DropReason | undefined> {
  const { cursors, sessions, sources } = plan;
  // Ends every session's part when the client leaves, the API closes or the client is dropped.
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  // Every session's subscription listens on the stream's one signal.
  setMaxListeners(sessions.length + 10, signal);
  // ...and each may wait for the response's 'drain' (with its 'error') at the same time.
  res.setMaxListeners(sessions.length + 10);
  let dropped: DropReason | undefined;
  const writer = new SseWriter(res, options, (reason) => {
    dropped = reason;
    stop.abort(new VigilError('ERR_ABORTED', `The client fell behind (${reason})`));
  });
  const onClose = (): void => stop.abort(new VigilError('ERR_ABORTED', 'The client disconnected'));
  res.once('close', onClose);
  const block = (event: string, data: unknown): string =>
    `id: ${encodeStreamId(cursors)}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  // Synchronous: the id written is the cursor state right after this event, never a mix. Callers
  // check `writer.blocked` first, except for the few one-off events (reset, failure, end).
  const send = (event: string, data: unknown): void => {
    if (!signal.aborted) writer.write(block(event, data));
  };
  res.writeHead(200, HEADERS);
  res.socket?.setNoDelay(true);
  writer.write(`retry: ${options.retryMs}\n\n`);
  const keepAlive = setInterval(() => {
    // A blocked client is not idle: no comment is queued behind what it has not read.
    if (!signal.aborted && !writer.blocked) writer.write(': keep-alive\n\n');
  }, options.keepAliveMs);

  const fail = (sessionId: string, error: unknown): void => {
    const failure = toVigilError(error);
    send('failure', { sessionId, error: { code: failure.code, message: failure.message } });
  };

  const followTape = async (sessionId: string): Promise<void> => {
    for (;;) {
      try {
        const events = sources.get(sessionId)!.subscribe({ after: cursors.get(sessionId) ?? 0, signal });
        for await (const event of events) {
          // Checked right before the write: no other session's write can slip in between.
          while (writer.blocked) await writer.drained(signal);
          cursors.set(sessionId, event.seq);
          send('tape', { sessionId, event });
        }
        return;
      } catch (error) {
        if (signal.aborted) return;
        const failure = toVigilError(error);
        const firstSeq = failure.details?.firstSeq;
        if (failure.code !== 'ERR_INVALID_CURSOR' || typeof firstSeq !== 'number') {
          fail(sessionId, failure);
          return;
        }
        const after = cursors.get(sessionId) ?? 0;
        cursors.set(sessionId, firstSeq - 1);
        send('reset', { sessionId, after, firstSeq });
      }
    }
  };

  // Approval snapshots not sent yet, the latest per session: each supersedes the one before.
  const snapshots = new Map<string, ApprovalSnapshot>();
  const sendSnapshots = (): void => {
    for (const [sessionId, snapshot] of snapshots) {
      if (writer.blocked) return;
      snapshots.delete(sessionId);
      send('approval', { sessionId, snapshot });
    }
  };
  res.on('drain', sendSnapshots);

  // Live output, for views (of the sessions this instance serves): coalesced per process (one event per OUTPUT_FLUSH_MS, its last
  // OUTPUT_TAIL_CHARS characters). Not on the tape, so it moves no cursor and is not replayed.
  const streamed = new Set(sessions);
  const output = new Map<string, { sessionId: string; text: string }>();
  const flushOutput = setInterval(() => {
    for (const [processId, { sessionId, text }] of output) {
      if (writer.blocked) return;
      output.delete(processId);
      send('output', { sessionId, processId, text });
    }
  }, OUTPUT_FLUSH_MS);
  const offOutput = vigil.on('process:output', ({ sessionId, processId, text }) => {
    if (!streamed.has(sessionId)) return;
    const pending = output.get(processId);
    const joined = (pending?.text ?? '') + text;
    output.set(processId, { sessionId, text: joined.slice(-OUTPUT_TAIL_CHARS) });
  });

  const follow = async (sessionId: string): Promise<void> => {
    let unsubscribe = (): void => {};
    try {
      unsubscribe = sources.get(sessionId)!.approvals((snapshot) => {
        snapshots.set(sessionId, snapshot);
        sendSnapshots();
      });
      await followTape(sessionId);
    } catch (error) {
      fail(sessionId, error);
    } finally {
      unsubscribe();
    }
  };

  try {
    // `follow` never rejects: each session's part ends on its own.
    await Promise.all(sessions.map(follow));
    if (!signal.aborted) send('end', { sessions });
  } finally {
    clearInterval(keepAlive);
    clearInterval(flushOutput);
    offOutput();
    res.off('drain', sendSnapshots);
    res.off('close', onClose);
    writer.end(dropped === undefined || options.signal.aborted ? undefined : droppedEvent(cursors, dropped));
    writer.release();
  }
  return dropped;
}

/** The last event of a dropped stream: its `id:` (also in `data`) is where the client resumes. */
function droppedEvent(cursors: StreamCursors, reason: DropReason): string {
  const lastEventId = encodeStreamId(cursors);
  const data = {
    reason,
    lastEventId,
    message: `The client fell behind (${reason}); reconnect with this Last-Event-ID to resume`,
  };
  return `id: ${lastEventId}\nevent: dropped\ndata: ${JSON.stringify(data)}\n\n`;
}
