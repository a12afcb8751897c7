// @ts-check
// What the page knows: sessions, their processes, the notification feed and the approval card,
// built from the stream's events. Applying an event is idempotent: the tape's seqs say what is new.

/** @typedef {import('@vigil/core').TapeEvent} TapeEvent */
/** @typedef {import('@vigil/core').SessionInfo} SessionInfo */
/** @typedef {import('@vigil/core').ProcessInfo} ProcessInfo */
/** @typedef {import('@vigil/core').ApprovalSnapshot} ApprovalSnapshot */
/** @typedef {Extract<TapeEvent, { type: 'watch.match' | 'watch.disabled' | 'watch.resumed' | 'heartbeat' | 'process.exited' }>} FeedEvent */

/**
 * A process as the page shows it: what the tape told, completed by `poll`.
 * @typedef {Partial<ProcessInfo> & { processId: string, command: string, tail?: string }} ProcessView
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
 * @property {Map<string, ProcessView>} processes
 * @property {Map<string, FeedItem>} feed  notification id (or `seq:<n>`) → item
 * @property {ApprovalSnapshot | null} approval
 * @property {number} lastSeq  the last tape event applied
 */

const TAIL_CHARS = 2000;

/** @param {TapeEvent} event @returns {event is FeedEvent} */
function isFeed(event) {
  return ['watch.match', 'watch.disabled', 'watch.resumed', 'heartbeat', 'process.exited'].includes(
    event.type,
  );
}

export class Store {
  /** @type {Map<string, SessionView>} */
  sessions = new Map();

  /** @param {string} sessionId @returns {SessionView} */
  session(sessionId) {
    let entry = this.sessions.get(sessionId);
    if (!entry) {
      entry = {
        info: { sessionId, state: 'open' },
        processes: new Map(),
        feed: new Map(),
        approval: null,
        lastSeq: 0,
      };
      this.sessions.set(sessionId, entry);
    }
    return entry;
  }

  /** @param {SessionInfo} info */
  setInfo(info) {
    this.session(info.sessionId).info = info;
  }

  /**
   * Applies one tape event; events at or below the session's cursor were seen already.
   * @param {string} sessionId
   * @param {TapeEvent} event
   * @returns {string[]} processes whose full state the page should fetch
   */
  apply(sessionId, event) {
    const entry = this.session(sessionId);
    if (event.seq <= entry.lastSeq) return [];
    entry.lastSeq = event.seq;
    /** @type {string[]} */
    const refresh = [];
    const { processId } = event;
    if (event.type === 'session.closed') entry.info = { ...entry.info, state: 'closed' };
    if (processId && event.type === 'process.started') {
      const { command, pid } = event.data;
      const known = entry.processes.get(processId) ?? { processId, command };
      entry.processes.set(processId, { ...known, state: 'running', pid, command, startedAt: event.at });
      refresh.push(processId);
    }
    if (processId && event.type === 'process.exited') {
      const { state, exitCode, reason, outputTail } = event.data;
      const known = entry.processes.get(processId) ?? { processId, command: processId };
      entry.processes.set(processId, { ...known, state, exitCode, reason, tail: outputTail });
      refresh.push(processId);
    }
    if (event.type === 'approval.requested') {
      const { processId: waiting, command } = event.data;
      if (waiting && !entry.processes.has(waiting)) {
        entry.processes.set(waiting, { processId: waiting, command, state: 'pending_approval' });
        refresh.push(waiting);
      }
    }
    if (isFeed(event)) {
      const id = 'notificationId' in event.data ? event.data.notificationId : `seq:${event.seq}`;
      entry.feed.set(id, { id, seq: event.seq, event, delivery: 'queued' });
    }
    if (event.type === 'notification.delivered' || event.type === 'notification.withdrawn') {
      const { notificationId, seqOf } = event.data;
      const item = entry.feed.get(notificationId) ?? [...entry.feed.values()].find((f) => f.seq === seqOf);
      if (item) item.delivery = event.type === 'notification.delivered' ? 'delivered' : 'withdrawn';
    }
    return refresh;
  }

  /**
   * What `poll` answered for a process; a longer tail already shown (live output) is kept.
   * @param {string} sessionId
   * @param {{ process: ProcessInfo, tail: string }} polled
   */
  polled(sessionId, { process, tail }) {
    const entry = this.session(sessionId);
    const known = entry.processes.get(process.processId);
    const shown = known?.tail ?? '';
    entry.processes.set(process.processId, {
      ...known,
      ...process,
      tail: shown.length > tail.length ? shown : tail,
    });
  }

  /** @param {string} sessionId @param {ApprovalSnapshot} snapshot */
  approval(sessionId, snapshot) {
    this.session(sessionId).approval = snapshot;
  }

  /** The session's cursor fell out of the retained window: continue from `firstSeq`. */
  /** @param {string} sessionId @param {number} firstSeq */
  reset(sessionId, firstSeq) {
    this.session(sessionId).lastSeq = firstSeq - 1;
  }

  /** Live output of a process (coalesced by the server). */
  /** @param {string} sessionId @param {string} processId @param {string} text */
  output(sessionId, processId, text) {
    const process = this.session(sessionId).processes.get(processId);
    if (process) process.tail = `${process.tail ?? ''}${text}`.slice(-TAIL_CHARS);
  }
}
