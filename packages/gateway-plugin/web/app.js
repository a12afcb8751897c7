// vigil's page: sessions, processes, the notification feed and approval cards, live over one
// multiplexed Server-Sent Events stream read with fetch (so the token travels in a header, never
// in a URL). Every text is set with textContent: commands and output are untrusted.

const FEED_TYPES = new Set(['watch.match', 'watch.disabled', 'watch.resumed', 'heartbeat', 'process.exited']);
const state = {
  token: '',
  /** sessionId -> { info, processes: Map, feed: Map(notificationId|seq -> entry), approval, lastSeq } */
  sessions: new Map(),
  lastEventId: undefined,
  streamed: '',
  controller: undefined,
  restarting: false,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function api(path, init = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { authorization: `Bearer ${state.token}`, 'content-type': 'application/json', ...init.headers },
  });
  if (response.status === 401) {
    showLogin('That token was refused.');
    throw new Error('unauthorized');
  }
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  return body;
}

function setConnection(kind, text) {
  const badge = document.getElementById('connection');
  badge.dataset.state = kind;
  badge.textContent = text;
}

function session(sessionId) {
  let entry = state.sessions.get(sessionId);
  if (!entry) {
    entry = {
      info: { sessionId, state: 'open' },
      processes: new Map(),
      feed: new Map(),
      approval: null,
      lastSeq: 0,
    };
    state.sessions.set(sessionId, entry);
  }
  return entry;
}

async function refreshProcess(sessionId, processId) {
  try {
    const { process: info, tail } = await api(`/v1/processes/${encodeURIComponent(processId)}/poll`);
    const entry = session(sessionId);
    const known = entry.processes.get(processId);
    entry.processes.set(processId, {
      ...known,
      ...info,
      tail: (known?.tail?.length ?? 0) > tail.length ? known.tail : tail,
    });
    render();
  } catch {
    // Forgotten after its TTL: keep what the tape told us.
  }
}

/** Applies one tape event; events at or below the session's cursor were seen already. */
function apply(sessionId, event) {
  const entry = session(sessionId);
  if (event.seq <= entry.lastSeq) return;
  entry.lastSeq = event.seq;
  const { type, data, processId } = event;
  if (type === 'session.closed') entry.info = { ...entry.info, state: 'closed' };
  if (processId && (type === 'process.started' || type === 'process.exited')) {
    const known = entry.processes.get(processId) ?? { processId, command: data.command ?? processId };
    entry.processes.set(processId, {
      ...known,
      ...(type === 'process.exited'
        ? { state: data.state, exitCode: data.exitCode, reason: data.reason, tail: data.outputTail }
        : { state: 'running', pid: data.pid, command: data.command, startedAt: event.at }),
    });
    refreshProcess(sessionId, processId);
  }
  if (type === 'approval.requested' && data.processId && !entry.processes.has(data.processId)) {
    entry.processes.set(data.processId, {
      processId: data.processId,
      command: data.command,
      state: 'pending_approval',
    });
    refreshProcess(sessionId, data.processId);
  }
  if (FEED_TYPES.has(type)) {
    const id = data.notificationId ?? `seq:${event.seq}`;
    entry.feed.set(id, { id, seq: event.seq, type, data, processId, delivery: 'queued' });
  }
  if (type === 'notification.delivered' || type === 'notification.withdrawn') {
    const item =
      entry.feed.get(data.notificationId) ?? [...entry.feed.values()].find((f) => f.seq === data.seqOf);
    if (item) item.delivery = type === 'notification.delivered' ? 'delivered' : 'withdrawn';
  }
}

function describe(item) {
  const { type, data } = item;
  if (type === 'watch.match') {
    const suppressed = data.suppressed ? ` (${data.suppressed} suppressed)` : '';
    return `match ${data.pattern}: ${(data.lines ?? []).join(' | ')}${suppressed}`;
  }
  if (type === 'watch.disabled') return `watching disabled: ${data.message ?? data.reason}`;
  if (type === 'watch.resumed') return data.message;
  if (type === 'heartbeat') return `heartbeat: ${String(data.output ?? '').slice(-200)}`;
  return `completion: ${data.reason}`;
}

function uptime(process) {
  if (!process.startedAt) return '';
  const end = process.endedAt ?? (process.state === 'running' ? Date.now() : process.startedAt);
  return `${Math.round((end - process.startedAt) / 1000)} s`;
}

function approvalCard(sessionId, snapshot) {
  const head = snapshot?.head;
  if (!head) return null;
  const decide = (decision) => async (event) => {
    event.target.disabled = true;
    try {
      await api(
        `/v1/sessions/${encodeURIComponent(sessionId)}/approvals/${encodeURIComponent(head.approvalId)}`,
        {
          method: 'POST',
          body: JSON.stringify({ decision }),
        },
      );
    } catch (error) {
      event.target.disabled = false;
      alert(error.message);
    }
  };
  return el(
    'div',
    { class: 'approval', 'data-approval': head.approvalId },
    el('strong', { text: `Approval needed (${snapshot.count} pending)` }),
    el('code', { text: head.command }),
    head.description ? el('div', { text: head.description }) : null,
    el('button', { text: 'Approve', 'data-action': 'approve', onclick: decide('approve') }),
    el('button', { text: 'Deny', 'data-action': 'deny', onclick: decide('deny') }),
  );
}

function processRow(process) {
  const running = process.state === 'running';
  const kill = async (event) => {
    event.target.disabled = true;
    await api(`/v1/processes/${encodeURIComponent(process.processId)}/kill`, {
      method: 'POST',
      body: '{}',
    }).catch((error) => alert(error.message));
  };
  return el(
    'tr',
    { 'data-process': process.processId },
    el(
      'td',
      {},
      el('code', { text: process.command }),
      el('div', { class: 'meta', text: process.processId }),
      process.tail ? el('pre', { class: 'tail', text: process.tail }) : null,
    ),
    el('td', {}, el('span', { class: 'state', 'data-state': process.state, text: process.state })),
    el('td', { class: 'exit', text: process.exitCode ?? '' }),
    el('td', { text: uptime(process) }),
    el('td', {}, running ? el('button', { text: 'Kill', 'data-action': 'kill', onclick: kill }) : null),
  );
}

function render() {
  const root = document.getElementById('sessions');
  const cards = [...state.sessions.values()].map((entry) => {
    const { info } = entry;
    const feed = [...entry.feed.values()].sort((a, b) => a.seq - b.seq);
    return el(
      'section',
      { class: 'session', 'data-session': info.sessionId },
      el(
        'h2',
        {},
        el('span', { text: info.sessionId }),
        el('span', { class: 'state', 'data-state': info.state, text: info.state }),
        el('span', { class: 'meta', text: info.poller ? `poller on thread ${info.poller.threadId}` : '' }),
      ),
      approvalCard(info.sessionId, entry.approval),
      el(
        'table',
        {},
        el('tr', {}, ...['command', 'state', 'exit', 'uptime', ''].map((text) => el('th', { text }))),
        ...[...entry.processes.values()].map(processRow),
      ),
      el(
        'ul',
        { class: 'feed' },
        ...feed.map((item) =>
          el(
            'li',
            { 'data-seq': item.seq, 'data-type': item.type },
            el('span', { class: 'seq', text: `#${item.seq}` }),
            el('span', { text: describe(item) }),
            el('span', { class: 'delivery', 'data-delivery': item.delivery, text: item.delivery }),
          ),
        ),
      ),
    );
  });
  root.replaceChildren(...cards);
}

/** Parses Server-Sent Events from a fetch body and calls `onEvent` for each. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = { id: undefined, event: 'message', data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = text;
        else if (field === 'event') event.event = text;
        else if (field === 'data') event.data += (event.data ? '\n' : '') + text;
      }
      if (event.data) onEvent(event);
      cut = buffer.indexOf('\n\n');
    }
  }
}

async function stream(sessionIds) {
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  state.streamed = sessionIds.join(',');
  const headers = { authorization: `Bearer ${state.token}` };
  if (state.lastEventId) headers['last-event-id'] = state.lastEventId;
  const response = await fetch(`/v1/stream?sessions=${encodeURIComponent(state.streamed)}`, {
    headers,
    signal: controller.signal,
  });
  if (response.status === 204) return;
  if (!response.ok) throw new Error(`stream: HTTP ${response.status}`);
  setConnection('live', 'live');
  await readEvents(response.body, (message) => {
    const payload = JSON.parse(message.data);
    if (message.event === 'tape') apply(payload.sessionId, payload.event);
    if (message.event === 'approval') session(payload.sessionId).approval = payload.snapshot;
    if (message.event === 'reset') session(payload.sessionId).lastSeq = payload.firstSeq - 1;
    if (message.event === 'output') {
      const process = session(payload.sessionId).processes.get(payload.processId);
      if (process) process.tail = `${process.tail ?? ''}${payload.text}`.slice(-2000);
    }
    if (message.id) state.lastEventId = message.id;
    render();
  });
}

async function connect() {
  for (;;) {
    try {
      const { sessions } = await api('/v1/sessions');
      for (const info of sessions) session(info.sessionId).info = info;
      render();
      const ids = sessions.map((info) => info.sessionId);
      if (ids.length === 0) {
        setConnection('live', 'live (no sessions yet)');
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      await stream(ids);
      if (ids.every((id) => session(id).info.state === 'closed')) {
        setConnection('live', 'all sessions closed');
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    } catch (error) {
      if (error.message === 'unauthorized') return;
      if (state.restarting) {
        state.restarting = false;
        continue;
      }
      setConnection('disconnected', 'disconnected, reconnecting…');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/** Reconnects the stream when sessions appear (output tails arrive live on the stream). */
async function housekeeping() {
  try {
    const { sessions } = await api('/v1/sessions');
    for (const info of sessions) session(info.sessionId).info = info;
    if (state.streamed && sessions.map((info) => info.sessionId).join(',') !== state.streamed) {
      state.restarting = true;
      state.controller?.abort();
    }
    render();
  } catch {
    // The stream loop reports connectivity.
  }
}

function showLogin(message) {
  const form = document.getElementById('login');
  form.hidden = false;
  if (message) setConnection('disconnected', message);
}

function start() {
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromFragment) {
    sessionStorage.setItem('vigil-token', fromFragment);
    history.replaceState(null, '', location.pathname);
  }
  state.token = sessionStorage.getItem('vigil-token') ?? '';
  document.getElementById('login').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = document.getElementById('token').value.trim();
    sessionStorage.setItem('vigil-token', state.token);
    event.target.hidden = true;
    connect();
  });
  if (!state.token) {
    showLogin('enter the token');
    return;
  }
  connect();
  setInterval(housekeeping, 1000);
}

start();
