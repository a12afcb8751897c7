// @ts-check
// Renders the store as DOM. Every text is set with textContent: commands and output are untrusted.

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').FeedItem} FeedItem */
/** @typedef {import('./store.js').ProcessView} ProcessView */
/** @typedef {import('@vigil/core').ApprovalSnapshot} ApprovalSnapshot */

/**
 * What the page's buttons do.
 * @typedef {object} Actions
 * @property {(sessionId: string, approvalId: string, decision: 'approve' | 'deny') => Promise<unknown>} decide
 * @property {(processId: string) => Promise<unknown>} kill
 */

/**
 * @param {string} tag
 * @param {Record<string, string | number | null | undefined | ((event: Event) => void)>} attrs
 * @param {...(Node | string | null | undefined)} children
 */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** @param {'live' | 'disconnected' | 'connecting'} kind @param {string} text */
export function setConnection(kind, text) {
  const badge = /** @type {HTMLElement} */ (document.getElementById('connection'));
  badge.dataset.state = kind;
  badge.textContent = text;
}

/** @param {FeedItem} item */
function describe({ event }) {
  switch (event.type) {
    case 'watch.match': {
      const { pattern, lines, suppressed } = event.data;
      return `match ${pattern}: ${lines.join(' | ')}${suppressed ? ` (${suppressed} suppressed)` : ''}`;
    }
    case 'watch.disabled':
      return `watching disabled: ${event.data.message ?? event.data.reason}`;
    case 'watch.resumed':
      return event.data.message;
    case 'heartbeat':
      return `heartbeat: ${event.data.output.slice(-200)}`;
    case 'process.exited':
      return `completion: ${event.data.reason}`;
  }
}

/** @param {ProcessView} process */
function uptime(process) {
  if (!process.startedAt) return '';
  const end = process.endedAt ?? (process.state === 'running' ? Date.now() : process.startedAt);
  return `${Math.round((end - process.startedAt) / 1000)} s`;
}

/**
 * A button that disables itself while its action runs, and shows a failure.
 * @param {string} label @param {string} action @param {() => Promise<unknown>} run @param {boolean} [keepDisabled]
 */
function button(label, action, run, keepDisabled = false) {
  return el('button', {
    text: label,
    'data-action': action,
    onclick: async (event) => {
      const target = /** @type {HTMLButtonElement} */ (event.target);
      target.disabled = true;
      try {
        await run();
      } catch (error) {
        if (!keepDisabled) target.disabled = false;
        alert(error instanceof Error ? error.message : String(error));
      }
    },
  });
}

/** @param {string} sessionId @param {ApprovalSnapshot | null} snapshot @param {Actions} actions */
function approvalCard(sessionId, snapshot, actions) {
  const head = snapshot?.head;
  if (!snapshot || !head) return null;
  return el(
    'div',
    { class: 'approval', 'data-approval': head.approvalId },
    el('strong', { text: `Approval needed (${snapshot.count} pending)` }),
    el('code', { text: head.command }),
    head.description ? el('div', { text: head.description }) : null,
    button('Approve', 'approve', () => actions.decide(sessionId, head.approvalId, 'approve')),
    button('Deny', 'deny', () => actions.decide(sessionId, head.approvalId, 'deny')),
  );
}

/** @param {ProcessView} process @param {Actions} actions */
function processRow(process, actions) {
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
    el(
      'td',
      {},
      process.state === 'running'
        ? button('Kill', 'kill', () => actions.kill(process.processId), true)
        : null,
    ),
  );
}

/** @param {Store} store @param {Actions} actions */
export function render(store, actions) {
  const root = /** @type {HTMLElement} */ (document.getElementById('sessions'));
  const cards = [...store.sessions.values()].map((entry) => {
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
      approvalCard(info.sessionId, entry.approval, actions),
      el(
        'table',
        {},
        el('tr', {}, ...['command', 'state', 'exit', 'uptime', ''].map((text) => el('th', { text }))),
        ...[...entry.processes.values()].map((process) => processRow(process, actions)),
      ),
      el(
        'ul',
        { class: 'feed' },
        ...feed.map((item) =>
          el(
            'li',
            { 'data-seq': item.seq, 'data-type': item.event.type },
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
