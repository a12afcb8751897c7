// @ts-check
// vigil's page: sessions, processes, the notification feed and approval cards, live over one
// multiplexed Server-Sent Events stream. This module connects the parts: the API client
// (api.js), the stream (stream.js), what the page knows (store.js) and how it looks (view.js).
//
// At scale the page shows one page of the session list and streams only those sessions: a stream
// id carries a cursor per session, so one stream of every session would send kilobytes of id with
// each event. Changing pages reopens the stream, resuming each session from the page's own cursor.
import {
  ApiError,
  auth,
  decide,
  decideAll,
  killProcess,
  listSessions,
  pollProcess,
  Unauthorized,
} from './api.js';
import { Store } from './store.js';
import { openStream, streamId } from './stream.js';
import { setConnection, View } from './view.js';

/** Sessions per page of the list (a stream takes at most 100). */
const SESSION_PAGE = 24;
/** How often the shown page of the list is read again (new sessions, states, counts). */
const REFRESH_MS = 2000;
/** `poll` requests in flight at most, for the details of rows on screen. */
const DETAILS_IN_FLIGHT = 4;

const store = new Store();
const list = {
  /** @type {(string | undefined)[]} the `after` cursor of each page up to the shown one */
  starts: [undefined],
  /** @type {string | null} */
  next: null,
  /** @type {string[]} */
  shown: [],
};
const connection = {
  /** The sessions of the open stream, comma-separated. */
  streamed: '',
  /** @type {AbortController | undefined} */
  controller: undefined,
  /** The stream was ended on purpose, to reopen it with other sessions. */
  restarting: false,
  /** Ends the current pause early. */
  wake: () => {},
};
const details = {
  /** @type {{ sessionId: string, processId: string }[]} */
  queue: [],
  inFlight: 0,
};

/** Waits `ms`, or less when `connection.wake()` is called. @param {number} ms */
const pause = (ms) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    connection.wake = () => {
      clearTimeout(timer);
      resolve(undefined);
    };
  });

function fetchDetails() {
  while (details.inFlight < DETAILS_IN_FLIGHT && details.queue.length > 0) {
    const { sessionId, processId } = /** @type {{ sessionId: string, processId: string }} */ (
      details.queue.shift()
    );
    details.inFlight++;
    pollProcess(processId)
      .then((polled) => {
        store.polled(sessionId, polled);
        view.update();
      })
      .catch(() => {
        // Forgotten after its TTL: keep what the tape told us.
      })
      .finally(() => {
        details.inFlight--;
        fetchDetails();
      });
  }
}

/** @type {import('./view.js').Actions} */
const actions = {
  decide,
  decideAll,
  kill: killProcess,
  navigate(direction) {
    if (direction === 'next' && list.next !== null) list.starts.push(list.next);
    if (direction === 'previous' && list.starts.length > 1) list.starts.pop();
    void refresh();
  },
  // Only rows on screen, once each: the tape told the rest (state, exit code, final output).
  details(sessionId, shown) {
    // Still replaying the tape: a row that looks running now may have exited later on it.
    const entry = store.session(sessionId);
    if (entry.lastSeq < (entry.info.lastSeq ?? 0)) return;
    for (const process of shown) {
      if (process.detailed || process.state !== 'running') continue;
      process.detailed = true;
      details.queue.push({ sessionId, processId: process.processId });
    }
    fetchDetails();
  },
};
const view = new View(store, actions);

/** @param {import('./stream.js').StreamMessage} message */
function onMessage(message) {
  const payload = JSON.parse(message.data);
  const { sessionId } = payload;
  if (message.event === 'tape') store.apply(sessionId, payload.event);
  if (message.event === 'approval') store.approval(sessionId, payload.snapshot);
  if (message.event === 'reset') store.reset(sessionId, payload.firstSeq);
  if (message.event === 'output') store.output(sessionId, payload.processId, payload.text);
  view.update();
}

/**
 * Reads the shown page of the session list; reopens the stream when its sessions changed.
 * @returns {Promise<string[]>} the page's sessions
 */
async function refresh() {
  const start = list.starts.at(-1);
  const page = await listSessions(start, SESSION_PAGE);
  // A page emptied by forgotten sessions: back to the first.
  if (page.sessions.length === 0 && list.starts.length > 1) {
    list.starts = [undefined];
    return refresh();
  }
  for (const info of page.sessions) store.setInfo(info);
  list.next = page.next;
  list.shown = page.sessions.map((info) => info.sessionId);
  view.showPage(list.shown, {
    from: (list.starts.length - 1) * SESSION_PAGE,
    total: page.total,
    hasPrevious: list.starts.length > 1,
    hasNext: page.next !== null,
  });
  if (connection.controller && list.shown.join(',') !== connection.streamed) {
    connection.restarting = true;
    connection.controller.abort();
  }
  connection.wake();
  return list.shown;
}

/** @param {readonly string[]} sessionIds */
async function stream(sessionIds) {
  const controller = new AbortController();
  connection.controller = controller;
  connection.streamed = sessionIds.join(',');
  try {
    return await openStream(sessionIds, {
      lastEventId: streamId(store.cursors(sessionIds)),
      signal: controller.signal,
      onOpen() {
        setConnection('live', 'live');
        // The list moved while the stream was being opened.
        if (list.shown.join(',') !== connection.streamed) {
          connection.restarting = true;
          controller.abort();
        }
      },
      onMessage,
    });
  } finally {
    connection.controller = undefined;
  }
}

/** Lists the shown page of sessions and streams them, reconnecting after a failure. */
async function connect() {
  for (;;) {
    /** @type {string[]} */
    let ids = [];
    try {
      ids = await refresh();
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
      // The server no longer has these tapes as the page saw them (restarted without its state).
      if (error instanceof ApiError && error.code === 'ERR_INVALID_CURSOR') {
        store.forget(ids);
        view.forget(ids);
      }
      setConnection('disconnected', 'disconnected, reconnecting…');
      await pause(1000);
    }
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
  setInterval(() => {
    // The stream loop reports connectivity.
    refresh().catch(() => {});
  }, REFRESH_MS);
  setInterval(() => view.tick(), 1000);
}

start();
