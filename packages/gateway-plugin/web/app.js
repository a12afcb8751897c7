// @ts-check
// vigil's page: sessions, processes, the notification feed and approval cards, live over one
// multiplexed Server-Sent Events stream. This module connects the parts: the API client
// (api.js), the stream (stream.js), what the page knows (store.js) and how it looks (view.js).
import { auth, decide, killProcess, listSessions, pollProcess, Unauthorized } from './api.js';
import { Store } from './store.js';
import { openStream } from './stream.js';
import { render, setConnection } from './view.js';

const store = new Store();
/** @type {import('./view.js').Actions} */
const actions = { decide, kill: killProcess };
const connection = {
  /** @type {string | undefined} the last SSE id: every session's cursor */
  lastEventId: undefined,
  /** The sessions of the open stream, comma-separated. */
  streamed: '',
  /** @type {AbortController | undefined} */
  controller: undefined,
  /** The stream was ended on purpose, to reopen it with other sessions. */
  restarting: false,
};

const pause = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
const show = () => render(store, actions);

/** @param {string} sessionId @param {string} processId */
async function refreshProcess(sessionId, processId) {
  try {
    store.polled(sessionId, await pollProcess(processId));
    show();
  } catch {
    // Forgotten after its TTL: keep what the tape told us.
  }
}

/** @param {import('./stream.js').StreamMessage} message */
function onMessage(message) {
  const payload = JSON.parse(message.data);
  const { sessionId } = payload;
  if (message.event === 'tape') {
    for (const processId of store.apply(sessionId, payload.event)) void refreshProcess(sessionId, processId);
  }
  if (message.event === 'approval') store.approval(sessionId, payload.snapshot);
  if (message.event === 'reset') store.reset(sessionId, payload.firstSeq);
  if (message.event === 'output') store.output(sessionId, payload.processId, payload.text);
  if (message.id) connection.lastEventId = message.id;
  show();
}

/** @param {readonly string[]} sessionIds */
async function stream(sessionIds) {
  connection.controller?.abort();
  const controller = new AbortController();
  connection.controller = controller;
  connection.streamed = sessionIds.join(',');
  await openStream(sessionIds, {
    lastEventId: connection.lastEventId,
    signal: controller.signal,
    onOpen: () => setConnection('live', 'live'),
    onMessage,
  });
}

/** Lists the sessions and streams them, reconnecting after a failure. */
async function connect() {
  for (;;) {
    try {
      const sessions = await listSessions();
      for (const info of sessions) store.setInfo(info);
      show();
      const ids = sessions.map((info) => info.sessionId);
      if (ids.length === 0) {
        setConnection('live', 'live (no sessions yet)');
        await pause(1000);
        continue;
      }
      await stream(ids);
      if (ids.every((id) => store.session(id).info.state === 'closed')) {
        setConnection('live', 'all sessions closed');
        await pause(1000);
      }
    } catch (error) {
      if (error instanceof Unauthorized) {
        showLogin(error.message);
        return;
      }
      if (connection.restarting) {
        connection.restarting = false;
        continue;
      }
      setConnection('disconnected', 'disconnected, reconnecting…');
      await pause(1000);
    }
  }
}

/** Reconnects the stream when sessions appear (output tails arrive live on the stream). */
async function housekeeping() {
  try {
    const sessions = await listSessions();
    for (const info of sessions) store.setInfo(info);
    if (connection.streamed && sessions.map((info) => info.sessionId).join(',') !== connection.streamed) {
      connection.restarting = true;
      connection.controller?.abort();
    }
    show();
  } catch {
    // The stream loop reports connectivity.
  }
}

/** @param {string} [message] */
function showLogin(message) {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('login'));
  form.hidden = false;
  if (message) setConnection('disconnected', message);
}

function start() {
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromFragment) {
    sessionStorage.setItem('vigil-token', fromFragment);
    history.replaceState(null, '', location.pathname);
  }
  auth.token = sessionStorage.getItem('vigil-token') ?? '';
  const form = /** @type {HTMLFormElement} */ (document.getElementById('login'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    auth.token = /** @type {HTMLInputElement} */ (document.getElementById('token')).value.trim();
    sessionStorage.setItem('vigil-token', auth.token);
    form.hidden = true;
    void connect();
  });
  if (!auth.token) {
    showLogin('enter the token');
    return;
  }
  void connect();
  setInterval(housekeeping, 1000);
}

start();
