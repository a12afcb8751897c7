// @ts-check
// Renders the store as DOM, incrementally: at most once per animation frame, only the sessions
// that changed, and in them only the rows and feed items that changed. A session card shows one
// page of its processes and the end of its feed, so its cost does not grow with its history.
// Every text is set with textContent: commands and output are untrusted.

/** @typedef {import('./store.js').Store} Store */
/** @typedef {import('./store.js').SessionView} SessionView */
/** @typedef {import('./store.js').FeedItem} FeedItem */
/** @typedef {import('./store.js').ProcessView} ProcessView */
/** @typedef {import('@vigil/core').ApprovalSnapshot} ApprovalSnapshot */

/** Process rows per page of a session card. */
export const PROCESS_PAGE = 10;
/** Feed items a card shows: the newest. */
export const FEED_SHOWN = 50;

/**
 * What the page's buttons do, and what it asks for once rows are on screen.
 * @typedef {object} Actions
 * @property {(sessionId: string, approvalId: string, decision: import('@vigil/core').ApprovalDecision) => Promise<unknown>} decide
 * @property {(sessionId: string, version: number, decision: 'approve' | 'deny') => Promise<unknown>} decideAll
 * @property {(processId: string) => Promise<unknown>} kill
 * @property {(direction: 'previous' | 'next') => void} navigate  another page of sessions
 * @property {(sessionId: string, shown: readonly ProcessView[]) => void} details  rows now on screen
 */

/**
 * Where the shown page of sessions sits in the whole list.
 * @typedef {{ from: number, total: number, hasPrevious: boolean, hasNext: boolean }} PagePosition
 */

/**
 * @typedef {object} Row
 * @property {HTMLElement} row
 * @property {ProcessView} process  as last drawn
 * @property {number} version  the process version drawn (-1: not yet)
 * @property {HTMLElement} state
 * @property {HTMLElement} exit
 * @property {HTMLElement} uptime
 * @property {HTMLElement} tail
 * @property {HTMLElement} control
 */

/**
 * @typedef {object} Card
 * @property {HTMLElement} section
 * @property {HTMLElement} state
 * @property {HTMLElement} thread
 * @property {HTMLElement} counts
 * @property {HTMLElement} approval
 * @property {string} approvalKey  what the approval slot shows
 * @property {HTMLElement} rows
 * @property {HTMLElement} pager
 * @property {HTMLElement} range
 * @property {HTMLButtonElement} newer
 * @property {HTMLButtonElement} older
 * @property {number} offset  processes skipped from the newest
 * @property {Map<string, Row>} rowOf  the rows on screen
 * @property {HTMLElement} feed
 * @property {HTMLElement} feedNote
 * @property {Map<string, { li: HTMLElement, delivery: HTMLElement }>} itemOf  the feed items on screen
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

/** Sets a text only when it changed (a write invalidates layout even when equal). */
/** @param {HTMLElement} node @param {string} text */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Puts `nodes` into `parent` in this order, touching the DOM only if the order differs. */
/** @param {HTMLElement} parent @param {readonly HTMLElement[]} nodes */
function setChildren(parent, nodes) {
  const current = parent.children;
  if (current.length === nodes.length && nodes.every((node, i) => current[i] === node)) return;
  parent.replaceChildren(...nodes);
}

/** @param {'live' | 'disconnected' | 'connecting'} kind @param {string} text */
export function setConnection(kind, text) {
  const badge = /** @type {HTMLElement} */ (document.getElementById('connection'));
  badge.dataset.state = kind;
  setText(badge, text);
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

/** @param {number} count @param {string} one @param {string} many */
function counted(count, one, many) {
  return `${count.toLocaleString('en-US')} ${count === 1 ? one : many}`;
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
    button('Approve for session', 'approve_session', () =>
      actions.decide(sessionId, head.approvalId, 'approve_session'),
    ),
    button('Deny', 'deny', () => actions.decide(sessionId, head.approvalId, 'deny')),
    ...(snapshot.count > 1
      ? [
          button(`Approve all ${snapshot.count}`, 'approve_all', () =>
            actions.decideAll(sessionId, snapshot.version, 'approve'),
          ),
          button(`Deny all ${snapshot.count}`, 'deny_all', () =>
            actions.decideAll(sessionId, snapshot.version, 'deny'),
          ),
        ]
      : []),
  );
}

/** @param {ProcessView} process @returns {Row} */
function newRow(process) {
  const state = el('span', { class: 'state' });
  const tail = el('pre', { class: 'tail' });
  const exit = el('td', { class: 'exit' });
  const time = el('td', { class: 'uptime' });
  const control = el('td');
  const row = el(
    'tr',
    { 'data-process': process.processId },
    el(
      'td',
      {},
      el('code', { text: process.command }),
      el('div', {
        class: 'meta',
        text: process.name ? `${process.name} · ${process.processId}` : process.processId,
      }),
      tail,
    ),
    el('td', {}, state),
    exit,
    time,
    control,
  );
  return { row, process, version: -1, state, exit, uptime: time, tail, control };
}

/** Brings a row up to date with its process. @param {Row} row @param {ProcessView} process @param {Actions} actions */
function drawRow(row, process, actions) {
  const state = process.state ?? '';
  row.process = process;
  row.version = process.version;
  if (row.state.dataset.state !== state) row.state.dataset.state = state;
  setText(row.state, state);
  setText(row.exit, String(process.exitCode ?? ''));
  setText(row.uptime, uptime(process));
  setText(row.tail, process.tail ?? '');
  row.tail.hidden = !process.tail;
  const killable = process.state === 'running';
  if (killable && row.control.childElementCount === 0) {
    row.control.append(button('Kill', 'kill', () => actions.kill(process.processId), true));
  }
  if (!killable && row.control.childElementCount > 0) row.control.replaceChildren();
}

/** The page's sessions, drawn into `#sessions`, and the pager of the session list. */
export class View {
  /** @type {Store} */
  #store;
  /** @type {Actions} */
  #actions;
  /** @type {Map<string, Card>} */
  #cards = new Map();
  /** @type {readonly string[]} */
  #shown = [];
  /** @type {PagePosition} */
  #position = { from: 0, total: 0, hasPrevious: false, hasNext: false };
  #pageChanged = false;
  #frame = 0;

  /** @param {Store} store @param {Actions} actions */
  constructor(store, actions) {
    this.#store = store;
    this.#actions = actions;
    for (const direction of /** @type {const} */ (['previous', 'next'])) {
      const control = /** @type {HTMLButtonElement} */ (
        document.querySelector(`#pager button[data-action="sessions-${direction}"]`)
      );
      control.addEventListener('click', () => actions.navigate(direction));
    }
  }

  /** Shows this page of the session list. @param {readonly string[]} sessionIds @param {PagePosition} position */
  showPage(sessionIds, position) {
    this.#shown = sessionIds;
    this.#position = position;
    this.#pageChanged = true;
    this.update();
  }

  /** Drops the cards of sessions the store forgot; they are drawn anew. @param {readonly string[]} sessionIds */
  forget(sessionIds) {
    for (const id of sessionIds) this.#cards.delete(id);
    this.#pageChanged = true;
    this.update();
  }

  /** Asks for a redraw of what changed in the store, at the next animation frame. */
  update() {
    if (this.#frame === 0) this.#frame = requestAnimationFrame(() => this.#draw());
  }

  /** Moves the uptime of running processes on screen (no store change marks them). */
  tick() {
    for (const card of this.#cards.values()) {
      for (const row of card.rowOf.values()) {
        if (row.process.state === 'running') setText(row.uptime, uptime(row.process));
      }
    }
  }

  #draw() {
    this.#frame = 0;
    const dirty = this.#store.takeDirty();
    if (this.#pageChanged) {
      this.#pageChanged = false;
      this.#drawPager();
      const shown = new Set(this.#shown);
      for (const id of this.#cards.keys()) if (!shown.has(id)) this.#cards.delete(id);
      for (const id of this.#shown) {
        if (this.#cards.has(id)) continue;
        this.#cards.set(id, this.#newCard(id));
        dirty.add(id);
      }
      const root = /** @type {HTMLElement} */ (document.getElementById('sessions'));
      setChildren(
        root,
        this.#shown.map((id) => /** @type {Card} */ (this.#cards.get(id)).section),
      );
    }
    for (const id of dirty) {
      const card = this.#cards.get(id);
      if (card) this.#drawCard(id, card);
    }
  }

  #drawPager() {
    const { from, total, hasPrevious, hasNext } = this.#position;
    const pager = /** @type {HTMLElement} */ (document.getElementById('pager'));
    const count = this.#shown.length;
    pager.dataset.total = String(total);
    pager.dataset.from = String(from);
    pager.dataset.shown = String(count);
    const range = /** @type {HTMLElement} */ (pager.querySelector('.range'));
    setText(
      range,
      count === 0
        ? 'no sessions yet'
        : `sessions ${from + 1}–${from + count} of ${total.toLocaleString('en-US')}`,
    );
    const previous = /** @type {HTMLButtonElement} */ (
      pager.querySelector('[data-action="sessions-previous"]')
    );
    const next = /** @type {HTMLButtonElement} */ (pager.querySelector('[data-action="sessions-next"]'));
    previous.disabled = !hasPrevious;
    next.disabled = !hasNext;
  }

  /** @param {string} sessionId @returns {Card} */
  #newCard(sessionId) {
    const state = el('span', { class: 'state' });
    const thread = el('span', { class: 'meta' });
    const counts = el('span', { class: 'meta counts' });
    const approval = el('div');
    const rows = el('tbody');
    const range = el('span', { class: 'range' });
    const newer = /** @type {HTMLButtonElement} */ (el('button', { text: 'newer', 'data-action': 'newer' }));
    const older = /** @type {HTMLButtonElement} */ (el('button', { text: 'older', 'data-action': 'older' }));
    const pager = el('div', { class: 'pager', 'data-pager': 'processes' }, newer, range, older);
    const feed = el('ul', { class: 'feed' });
    const feedNote = el('div', { class: 'meta' });
    const head = ['command', 'state', 'exit', 'uptime', ''].map((text) => el('th', { text }));
    const section = el(
      'section',
      { class: 'session', 'data-session': sessionId },
      el('h2', {}, el('span', { text: sessionId }), state, thread, counts),
      approval,
      el('table', {}, el('thead', {}, el('tr', {}, ...head)), rows),
      pager,
      feedNote,
      feed,
    );
    /** @type {Card} */
    const card = {
      section,
      state,
      thread,
      counts,
      approval,
      approvalKey: '',
      rows,
      pager,
      range,
      newer,
      older,
      offset: 0,
      rowOf: new Map(),
      feed,
      feedNote,
      itemOf: new Map(),
    };
    const turn = (/** @type {number} */ by) => {
      card.offset = Math.max(0, card.offset + by);
      this.#drawCard(sessionId, card);
    };
    newer.addEventListener('click', () => turn(-PROCESS_PAGE));
    older.addEventListener('click', () => turn(PROCESS_PAGE));
    return card;
  }

  /** @param {string} sessionId @param {Card} card */
  #drawCard(sessionId, card) {
    const entry = this.#store.session(sessionId);
    const { info } = entry;
    const state = info.state ?? '';
    if (card.state.dataset.state !== state) card.state.dataset.state = state;
    setText(card.state, state);
    setText(card.thread, info.poller ? `poller on thread ${info.poller.threadId}` : '');
    const total = entry.processes.size;
    card.counts.dataset.processes = String(total);
    card.counts.dataset.running = String(entry.running);
    setText(
      card.counts,
      `${counted(total, 'process', 'processes')}, ${entry.running.toLocaleString('en-US')} running`,
    );
    this.#drawApproval(sessionId, card, entry);
    this.#drawProcesses(sessionId, card, entry);
    this.#drawFeed(card, entry);
  }

  /** @param {string} sessionId @param {Card} card @param {SessionView} entry */
  #drawApproval(sessionId, card, entry) {
    const head = entry.approval?.head;
    const key = head ? `${head.approvalId}/${entry.approval?.count}` : '';
    if (key === card.approvalKey) return;
    card.approvalKey = key;
    const shown = approvalCard(sessionId, entry.approval, this.#actions);
    card.approval.replaceChildren(...(shown ? [shown] : []));
  }

  /** One page of processes, the newest first. @param {string} sessionId @param {Card} card @param {SessionView} entry */
  #drawProcesses(sessionId, card, entry) {
    const all = [...entry.processes.values()];
    const total = all.length;
    card.offset = Math.min(card.offset, Math.max(0, Math.floor((total - 1) / PROCESS_PAGE) * PROCESS_PAGE));
    /** @type {ProcessView[]} */
    const shown = [];
    for (let i = card.offset; i < Math.min(total, card.offset + PROCESS_PAGE); i++) {
      shown.push(/** @type {ProcessView} */ (all[total - 1 - i]));
    }
    /** @type {Map<string, Row>} */
    const rowOf = new Map();
    for (const process of shown) {
      const row = card.rowOf.get(process.processId) ?? newRow(process);
      if (row.version !== process.version) drawRow(row, process, this.#actions);
      rowOf.set(process.processId, row);
    }
    card.rowOf = rowOf;
    setChildren(
      card.rows,
      [...rowOf.values()].map((row) => row.row),
    );
    card.pager.hidden = total <= PROCESS_PAGE;
    card.pager.dataset.total = String(total);
    card.pager.dataset.offset = String(card.offset);
    setText(
      card.range,
      `${card.offset + 1}–${card.offset + shown.length} of ${total.toLocaleString('en-US')}`,
    );
    card.newer.disabled = card.offset === 0;
    card.older.disabled = card.offset + PROCESS_PAGE >= total;
    this.#actions.details(sessionId, shown);
  }

  /** The newest feed items, in tape order. @param {Card} card @param {SessionView} entry */
  #drawFeed(card, entry) {
    const items = [...entry.feed.values()].slice(-FEED_SHOWN);
    /** @type {Map<string, { li: HTMLElement, delivery: HTMLElement }>} */
    const itemOf = new Map();
    for (const item of items) {
      let shown = card.itemOf.get(item.id);
      if (!shown) {
        const delivery = el('span', { class: 'delivery' });
        const li = el(
          'li',
          { 'data-seq': item.seq, 'data-type': item.event.type },
          el('span', { class: 'seq', text: `#${item.seq}` }),
          el('span', { text: describe(item) }),
          delivery,
        );
        shown = { li, delivery };
      }
      if (shown.delivery.dataset.delivery !== item.delivery) shown.delivery.dataset.delivery = item.delivery;
      setText(shown.delivery, item.delivery);
      itemOf.set(item.id, shown);
    }
    card.itemOf = itemOf;
    setChildren(
      card.feed,
      [...itemOf.values()].map((shown) => shown.li),
    );
    setText(
      card.feedNote,
      entry.feed.size > FEED_SHOWN
        ? `the last ${FEED_SHOWN} of ${counted(entry.feed.size, 'notification', 'notifications')}`
        : '',
    );
  }
}
