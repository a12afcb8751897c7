// @ts-check
// The multiplexed Server-Sent Events stream, read with fetch so that the token travels in a header.
import { ApiError, auth } from './api.js';

/** @typedef {{ id: string | undefined, event: string, data: string }} StreamMessage */

/** Events are handled for at most this long before the page gets the main thread back. */
const SLICE_MS = 8;

/** Resolves in a new task, after the browser had a chance to draw a frame and handle input. */
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Parses Server-Sent Events from a response body and calls `onMessage` for each.
 * @param {ReadableStream<BufferSource>} body
 * @param {(message: StreamMessage) => void} onMessage
 */
export async function readEvents(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // One pass over the chunk; the unfinished rest is kept once (slicing per event is quadratic).
    let start = 0;
    let cut = buffer.indexOf('\n\n');
    let slice = performance.now();
    while (cut >= 0) {
      const message = parseBlock(buffer.slice(start, cut));
      if (message.data) onMessage(message);
      start = cut + 2;
      cut = buffer.indexOf('\n\n', start);
      // A long replay arrives in large chunks: let the page draw and take input in between.
      if (performance.now() - slice > SLICE_MS) {
        await nextTask();
        slice = performance.now();
      }
    }
    buffer = buffer.slice(start);
  }
}

/** @param {string} block @returns {StreamMessage} */
function parseBlock(block) {
  /** @type {StreamMessage} */
  const message = { id: undefined, event: 'message', data: '' };
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') message.id = text;
    else if (field === 'event') message.event = text;
    else if (field === 'data') message.data += (message.data ? '\n' : '') + text;
  }
  return message;
}

/**
 * The stream id of these cursors (base64url of their JSON, as the server writes it), so that a
 * stream of other sessions can resume each one where the page left it.
 * @param {Record<string, number>} cursors
 */
export function streamId(cursors) {
  // Session ids are ASCII, so btoa takes the JSON as it is.
  return btoa(JSON.stringify(cursors)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/**
 * Opens `/v1/stream` for `sessionIds`, resuming after `lastEventId`, and reads it until it ends or
 * `signal` aborts. Resolves false when the server answered 204 (nothing will ever come).
 * @param {readonly string[]} sessionIds
 * @param {{ lastEventId: string | undefined, signal: AbortSignal, onOpen: () => void, onMessage: (message: StreamMessage) => void }} options
 */
export async function openStream(sessionIds, options) {
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${auth.token}` };
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
  const response = await fetch(`/v1/stream?sessions=${encodeURIComponent(sessionIds.join(','))}`, {
    headers,
    signal: options.signal,
  });
  if (response.status === 204) return false;
  if (!response.ok || response.body === null) {
    const body = await response.json().catch(() => undefined);
    throw new ApiError(response.status, body?.error?.code, `stream: HTTP ${response.status}`);
  }
  options.onOpen();
  await readEvents(response.body, options.onMessage);
  return true;
}
