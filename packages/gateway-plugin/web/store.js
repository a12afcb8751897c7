// @ts-check
// What the page knows: sessions, their processes, the notification feed and the approval card,
// built from the stream's events. Applying an event is idempotent: the tape's seqs say what is new.
// Every change marks its session dirty, so that the view redraws only what changed.

/** @typedef {import('@vigil/core').TapeEvent} TapeEvent */
/** @typedef {import('@vigil/core').SessionInfo} SessionInfo */
/** @typedef {import('@vigil/core').ProcessInfo} ProcessInfo */
/** @typedef {import('@vigil/core').ApprovalSnapshot} ApprovalSnapshot */
/** @typedef {Extract<TapeEvent, { type: 'watch.match' | 'watch.disabled' | 'watch.resumed' | 'heartbeat' | 'process.exited' }>} FeedEvent */

/**
 * A process as the page shows it: what the tape told, completed by `poll` once it is on screen.
 * `version` grows with every change (the view redraws a row only when it moved); `detailed` is set
 * once `poll` was asked.
 * @typedef {Partial<ProcessInfo> & { processId: string, command: string, tail?: string, version: number, detailed?: boolean }} ProcessView
 */

/**
 * @typedef {object} FeedItem
 * @property {string} id
 * @property {number} seq
 * @property {FeedEvent} event
 * @property {'queued' | 'delivered' | 'withdrawn'} delivery
 */

/**
 * @typedef {object} SessionView
 * @property {Partial<SessionInfo> & { sessionId: string }} info
 * @property {Map<string, ProcessView>} processes  in the order they appeared on the tape
 * @property {number} running  processes in state `running`
 * @property {Map<string, FeedItem>} feed  notification id (or `seq:<n>`) → item, in tape order
 * @property {Map<number, FeedItem>} feedBySeq
 * @property {ApprovalSnapshot | null} approval
 * @property {number} lastSeq  the last tape event applied
 */

const TAIL_CHARS = 2000;
const FEED_TYPES = new Set(['watch.match', 'watch.disabled', 'watch.resumed', 'heartbeat', 'process.exited']);

/** @param {TapeEvent} event @returns {event is FeedEvent} */
function isFeed(event) {
  return FEED_TYPES.has(event.type);
}

export class Store {
  /** @type {Map<string, SessionView>} */
  sessions = new Map();
  /** Sessions changed since the view last took them. */
  dirty = new Set();

  /** @param {string} sessionId @returns {SessionView} */
  session(sessionId) {
    let entry = this.sessions.get(sessionId);
    if (!entry) {
      entry = {
        info: { sessionId, state: 'open' },
        processes: new Map(),
        running: 0,
        feed: new Map(),
        feedBySeq: new Map(),
        approval: null,
        lastSeq: 0,
      };
      this.sessions.set(sessionId, entry);
    }
    return entry;
  }

  /** The sessions changed since the last call. */
  takeDirty() {
    const dirty = this.dirty;
    this.dirty = new Set();
    return dirty;
  }

  /** @param {SessionInfo} info */
  setInfo(info) {
    this.session(info.sessionId).info = info;
    this.dirty.add(info.sessionId);
  }

  /**
   * The cursors of `sessionIds` (the last tape event applied), for resuming a stream of them.
   * @param {readonly string[]} sessionIds
   * @returns {Record<string, number>}
   */
  cursors(sessionIds) {
    return Object.fromEntries(sessionIds.map((id) => [id, this.sessions.get(id)?.lastSeq ?? 0]));
  }

  /**
   * Forgets what the page knew of these sessions: the server no longer has their tapes as the page
   * saw them (it restarted without its state), so they are read again from the start.
   * @param {readonly string[]} sessionIds
   */
  forget(sessionIds) {
    for (const id of sessionIds) {
      this.sessions.delete(id);
      this.dirty.add(id);
    }
  }

  /**
   * Sets a process's fields and bumps its version.
   * @param {SessionView} entry @param {string} processId @param {Partial<ProcessView> & { command: string }} fields
   */
  #update(entry, processId, fields) {
    const known = entry.processes.get(processId);
    const next = { ...known, ...fields, processId, version: (known?.version ?? 0) + 1 };
    if (known?.state === 'running') entry.running--;
    if (next.state === 'running') entry.running++;
    entry.processes.set(processId, next);
    this.dirty.add(entry.info.sessionId);
    return next;
  }

  /**
   * Applies one tape event; events at or below the session's cursor were seen already.
   * @param {string} sessionId
   * @param {TapeEvent} event
   */
  apply(sessionId, event) {
    const entry = this.session(sessionId);
    if (event.seq <= entry.lastSeq) return;
    entry.lastSeq = event.seq;
    this.dirty.add(sessionId);
    const { processId } = event;
    if (event.type === 'session.closed') entry.info = { ...entry.info, state: 'closed' };
    if (processId && event.type === 'process.started') {
      const { command, pid } = event.data;
      this.#update(entry, processId, { state: 'running', pid, command, startedAt: event.at });
    }
    if (processId && event.type === 'process.exited') {
      const { state, exitCode, reason, outputTail } = event.data;
      const command = entry.processes.get(processId)?.command ?? processId;
      this.#update(entry, processId, {
        command,
        state,
        exitCode,
        reason,
        tail: outputTail,
        endedAt: event.at,
      });
    }
    if (event.type === 'approval.requested') {
      const { processId: waiting, command } = event.data;
      if (waiting && !entry.processes.has(waiting)) {
        this.#update(entry, waiting, { command, state: 'pending_approval', createdAt: event.at });
      }
    }
    if (isFeed(event)) {
      const id = 'notificationId' in event.data ? event.data.notificationId : `seq:${event.seq}`;
      /** @type {FeedItem} */
      const item = { id, seq: event.seq, event, delivery: 'queued' };
      entry.feed.set(id, item);
      entry.feedBySeq.set(event.seq, item);
    }
    if (event.type === 'notification.delivered' || event.type === 'notification.withdrawn') {
      const { notificationId, seqOf } = event.data;
      const item = entry.feed.get(notificationId) ?? entry.feedBySeq.get(seqOf);
      if (item) item.delivery = event.type === 'notification.delivered' ? 'delivered' : 'withdrawn';
    }
  }

  /**
   * What `poll` answered for a process; a longer tail already shown (live output) is kept.
   * @param {string} sessionId
   * @param {{ process: ProcessInfo, tail: string }} polled
   */
  polled(sessionId, { process, tail }) {
    const entry = this.session(sessionId);
    const shown = entry.processes.get(process.processId)?.tail ?? '';
    this.#update(entry, process.processId, {
      ...process,
      tail: shown.length > tail.length ? shown : tail,
      detailed: true,
    });
  }

  /** @param {string} sessionId @param {ApprovalSnapshot} snapshot */
  approval(sessionId, snapshot) {
    this.session(sessionId).approval = snapshot;
    this.dirty.add(sessionId);
  }

  /** The session's cursor fell out of the retained window: continue from `firstSeq`. */
  /** @param {string} sessionId @param {number} firstSeq */
  reset(sessionId, firstSeq) {
    this.session(sessionId).lastSeq = firstSeq - 1;
  }

  /** Live output of a process (coalesced by the server). */
  /** @param {string} sessionId @param {string} processId @param {string} text */
  output(sessionId, processId, text) {
    const entry = this.session(sessionId);
    const process = entry.processes.get(processId);
    if (process) {
      this.#update(entry, processId, {
        command: process.command,
        tail: `${process.tail ?? ''}${text}`.slice(-TAIL_CHARS),
      });
    }
  }
}
