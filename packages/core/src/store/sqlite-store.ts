import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApprovalDecision, ApprovalOutcome, ApprovalView } from '../approvals/approval-queue.js';
import { VigilError } from '../errors.js';
import type { Notification } from '../journal/notification.js';
import type { TapeEvent } from '../journal/tape-events.js';
import type { ProcessRecord } from '../process/process-record.js';
import { FOLD, MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE } from './schema.js';
import { openDatabase, type SqlDatabase, type SqlStatement, sqliteCode } from './sqlite-driver.js';
import type { JournalStore, NotificationState, RestoredSession, SessionRecord } from './store.js';

export interface SqliteStoreOptions {
  /** The state directory: the journal is `<stateDir>/journal.db`. */
  readonly stateDir: string;
  /**
   * `NORMAL` (default): a commit is written to the WAL file but not fsynced, so it survives the
   * process's death (SIGKILL, a crash) but not a power loss. `FULL`: fsync per commit.
   */
  readonly synchronous?: 'NORMAL' | 'FULL';
  /** The database file's size cap in bytes (SQLite's `max_page_count`); past it writes fail as on a full disk. 0: none. */
  readonly maxBytes?: number;
  /** A batch that failed to commit (a full disk): it is kept and committed again later. */
  readonly onError: (error: VigilError) => void;
}

/** A failed batch is committed again after this long (doubling up to `RETRY_MAX_MS`). */
const RETRY_MS = 100;
const RETRY_MAX_MS = 5_000;
/** The recent tables are folded into the others once they hold this many rows (see the class comment). */
const FOLD_ROWS = 4_096;
/** Queued rows of one table go in with one statement per this many (fewer calls into SQLite). */
const ROWS_PER_INSERT = 64;
/**
 * The WAL is copied back into the database (a checkpoint, with an fsync) once it holds this many
 * pages, 40 MiB; SQLite's default of 1,000 checkpoints so often that it bounds the write rate.
 */
const CHECKPOINT_PAGES = 10_000;

type Statement = SqlStatement;

/**
 * The journal in an embedded SQLite database, `<stateDir>/journal.db`, in WAL mode. Writes are
 * queued and committed in one transaction per event-loop turn (group commit), so many sessions'
 * events share one write. The database is held with an exclusive lock for the store's lifetime:
 * a second vigil on the same directory fails at once, and the lock dies with its process, so a
 * SIGKILLed vigil never blocks the next one.
 *
 * A commit writes whole pages, and `events` and `notifications` are ordered by session: a turn in
 * which 20 sessions each record an acknowledgement would touch 40 pages. So tape events and
 * notification states are appended to `recent_events` and `recent_states`, in insertion order (a
 * few pages per commit), and folded into the ordered tables every `FOLD_ROWS` rows, in the same
 * transaction as the commit that reaches it, and before a restore reads them.
 */
export class SqliteStore implements JournalStore {
  readonly durable = true;
  readonly path: string;
  readonly #db: SqlDatabase;
  readonly #ownerFile: string;
  readonly #onError: (error: VigilError) => void;
  readonly #statements: Record<
    | 'putSession'
    | 'trimEvents'
    | 'trimRecentEvents'
    | 'pruneNotifications'
    | 'putApproval'
    | 'resolveApproval'
    | 'putProcess'
    | 'deleteProcess',
    Statement
  >;
  readonly #deleteSession: readonly Statement[];
  /** The frequent writes, queued as rows of their recent table (see `#queue`). */
  readonly #events: RowInserts;
  readonly #notifications: RowInserts;
  readonly #states: RowInserts;
  /** Runs a batch of writes, and the fold when it is due, in one transaction. */
  readonly #commitBatch: (writes: readonly (() => void)[], fold: boolean) => void;
  /** Writes queued since the last commit, in order. */
  #writes: (() => void)[] = [];
  /** Callbacks waiting for the writes queued before them. */
  #callbacks: (() => void)[] = [];
  /** Rows in the recent tables, committed and queued: a fold is due at `FOLD_ROWS`. */
  #recentRows = 0;
  /** Some recent table's buffer holds rows not yet in `#writes`. */
  #rowsQueued = false;
  #scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  #retryMs = RETRY_MS;
  #closed = false;
  /** After `freeze`: writes are dropped, the lock is still held. */
  #frozen = false;

  constructor(options: SqliteStoreOptions) {
    const { stateDir } = options;
    this.path = join(stateDir, 'journal.db');
    this.#ownerFile = join(stateDir, 'journal.owner');
    this.#onError = options.onError;
    this.#db = open(this.path, stateDir);
    try {
      lock(this.#db, this.path, this.#ownerFile);
      this.#db.exec(`PRAGMA synchronous = ${options.synchronous ?? 'NORMAL'}`);
      this.#db.exec(`PRAGMA wal_autocheckpoint = ${CHECKPOINT_PAGES}`);
      migrate(this.#db, this.path);
      capSize(this.#db, options.maxBytes ?? 0);
    } catch (error) {
      this.#db.close();
      throw error;
    }
    writeFileSync(this.#ownerFile, `${JSON.stringify({ pid: process.pid, since: Date.now() })}\n`);
    const db = this.#db;
    this.#statements = {
      putSession: db.prepare(
        `INSERT OR REPLACE INTO sessions (session_id, state, opened_at, closed_at, close_reason, approval_version)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      trimEvents: db.prepare('DELETE FROM events WHERE session_id = ? AND seq < ?'),
      trimRecentEvents: db.prepare('DELETE FROM recent_events WHERE session_id = ? AND seq < ?'),
      // A settled notification is kept while its event is on the tape; a completion while its
      // process is kept too (`<processId>:completion`).
      pruneNotifications: db.prepare(
        `DELETE FROM notifications INDEXED BY settled_notifications
           WHERE session_id = ? AND seq < ? AND state <> 'pending'
           AND NOT (notification_id GLOB '*:completion' AND EXISTS (
             SELECT 1 FROM processes WHERE process_id = substr(notification_id, 1, length(notification_id) - 11)))`,
      ),
      putApproval: db.prepare(
        'INSERT OR REPLACE INTO approvals (session_id, approval_id, view, outcome) VALUES (?, ?, ?, NULL)',
      ),
      resolveApproval: db.prepare(
        'UPDATE approvals SET outcome = ?, decision = ? WHERE session_id = ? AND approval_id = ?',
      ),
      putProcess: db.prepare(
        'INSERT OR REPLACE INTO processes (process_id, session_id, record) VALUES (?, ?, ?)',
      ),
      deleteProcess: db.prepare('DELETE FROM processes WHERE process_id = ?'),
    };
    this.#events = new RowInserts(db, 'recent_events', ['session_id', 'seq', 'event']);
    this.#notifications = new RowInserts(db, 'recent_notifications', [
      'session_id',
      'seq',
      'notification_id',
      'notification',
    ]);
    this.#states = new RowInserts(db, 'recent_states', ['session_id', 'seq', 'notification_id', 'state']);
    this.#deleteSession = [
      'sessions',
      'events',
      'recent_events',
      'notifications',
      'recent_notifications',
      'recent_states',
      'approvals',
      'processes',
    ].map((table) => db.prepare(`DELETE FROM ${table} WHERE session_id = ?`));
    this.#commitBatch = (writes, fold) =>
      db.transaction(() => {
        for (const write of writes) write();
        if (fold) db.exec(FOLD);
      });
  }

  restore(): RestoredSession[] {
    const db = this.#db;
    try {
      db.transaction(() => db.exec(FOLD));
    } catch (error) {
      throw journalError(error, this.path);
    }
    const rows = db.prepare('SELECT * FROM sessions ORDER BY session_id').all() as unknown as SessionRow[];
    const events = db.prepare('SELECT event FROM events WHERE session_id = ? ORDER BY seq');
    const notifications = db.prepare(
      'SELECT state, seq, notification_id, notification FROM notifications WHERE session_id = ? ORDER BY seq',
    );
    const approvals = db.prepare(
      'SELECT view FROM approvals WHERE session_id = ? AND outcome IS NULL ORDER BY rowid',
    );
    const grants = db.prepare(
      "SELECT view FROM approvals WHERE session_id = ? AND decision = 'approve_session' ORDER BY rowid",
    );
    const processes = db.prepare('SELECT record FROM processes WHERE session_id = ?');
    const restored: RestoredSession[] = [];
    const closed: string[] = [];
    for (const row of rows) {
      const sessionId = row.session_id;
      if (row.state === 'closed') {
        closed.push(sessionId);
        continue;
      }
      const tape = (events.column(sessionId) as string[]).map((json) => JSON.parse(json) as TapeEvent);
      const pending: Notification[] = [];
      const delivered: string[] = [];
      // An acknowledgement counts while its event is on the tape (or its process is kept, for a
      // completion), whether the trim that drops it has reached it or not.
      const firstSeq = tape[0]?.seq ?? 0;
      const rows = notifications.all(sessionId) as unknown as NotificationRow[];
      for (const { state, seq, notification_id: notificationId, notification: json } of rows) {
        if (state === 'pending') pending.push(JSON.parse(json) as Notification);
        else if (state === 'delivered' && (seq >= firstSeq || notificationId.endsWith(':completion'))) {
          delivered.push(notificationId);
        }
      }
      restored.push({
        record: {
          sessionId,
          state: row.state,
          openedAt: row.opened_at,
          closedAt: row.closed_at,
          closeReason: row.close_reason,
          approvalVersion: row.approval_version,
        },
        events: tape,
        lastSeq: tape.at(-1)?.seq ?? 0,
        pending,
        delivered,
        approvals: (approvals.column(sessionId) as string[]).map((json) => JSON.parse(json) as ApprovalView),
        grants: (grants.column(sessionId) as string[]).map((json) => JSON.parse(json) as ApprovalView),
        processes: (processes.column(sessionId) as string[]).map((json) => JSON.parse(json) as ProcessRecord),
      });
    }
    // A closed session is not restored: what it kept goes.
    for (const sessionId of closed) this.deleteSession(sessionId);
    this.commitNow();
    return restored;
  }

  putSession(record: SessionRecord): void {
    const { sessionId, state, openedAt, closedAt, closeReason, approvalVersion } = record;
    this.#queue(this.#statements.putSession, [
      sessionId,
      state,
      openedAt,
      closedAt,
      closeReason,
      approvalVersion,
    ]);
  }

  appendEvent(sessionId: string, event: TapeEvent, json = JSON.stringify(event)): void {
    this.#queueRow(this.#events, sessionId, event.seq, json);
  }

  trimEvents(sessionId: string, firstSeq: number): void {
    this.#queue(this.#statements.trimEvents, [sessionId, firstSeq]);
    this.#queue(this.#statements.trimRecentEvents, [sessionId, firstSeq]);
    this.#queue(this.#statements.pruneNotifications, [sessionId, firstSeq]);
  }

  putNotification(notification: Notification, json = JSON.stringify(notification)): void {
    const { sessionId, id, seq } = notification;
    this.#queueRow(this.#notifications, sessionId, seq, id, json);
  }

  setNotificationState(notification: Notification, state: NotificationState): void {
    const { sessionId, id, seq } = notification;
    this.#queueRow(this.#states, sessionId, seq, id, state);
  }

  putApproval(sessionId: string, approval: ApprovalView): void {
    this.#queue(this.#statements.putApproval, [sessionId, approval.approvalId, JSON.stringify(approval)]);
  }

  resolveApproval(
    sessionId: string,
    approvalId: string,
    outcome: ApprovalOutcome,
    decision?: ApprovalDecision,
  ): void {
    this.#queue(this.#statements.resolveApproval, [outcome, decision ?? null, sessionId, approvalId]);
  }

  putProcess(record: ProcessRecord): void {
    this.#queue(this.#statements.putProcess, [record.processId, record.sessionId, JSON.stringify(record)]);
  }

  deleteProcess(_sessionId: string, processId: string): void {
    this.#queue(this.#statements.deleteProcess, [processId]);
  }

  deleteSession(sessionId: string): void {
    for (const statement of this.#deleteSession) this.#queue(statement, [sessionId]);
  }

  afterCommit(callback: () => void): void {
    if (this.#writes.length === 0 && !this.#rowsQueued && this.#callbacks.length === 0) callback();
    else this.#callbacks.push(callback);
  }

  commitNow(): void {
    this.#takeRows();
    if (this.#writes.length > 0) {
      const writes = this.#writes;
      const fold = this.#recentRows >= FOLD_ROWS;
      try {
        this.#commitBatch(writes, fold);
      } catch (error) {
        throw journalError(error, this.path);
      }
      this.#writes = [];
      if (fold) this.#recentRows = 0;
    }
    this.#retryMs = RETRY_MS;
    this.#cancelScheduled();
    // Callbacks may queue writes (and callbacks) of their own: those wait for the next commit.
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    for (const callback of callbacks) callback();
  }

  freeze(): void {
    if (this.#closed || this.#frozen) return;
    try {
      this.commitNow();
    } catch (error) {
      this.#onError(journalError(error, this.path));
    }
    this.#frozen = true;
    this.#writes = [];
    for (const rows of [this.#events, this.#notifications, this.#states]) rows.take();
    this.#rowsQueued = false;
    this.#cancelScheduled();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelScheduled();
    try {
      this.commitNow();
    } catch (error) {
      this.#onError(journalError(error, this.path));
    }
    this.#callbacks = [];
    this.#db.close();
    rmSync(this.#ownerFile, { force: true });
  }

  #queue(statement: Statement, params: unknown[]): void {
    if (this.#closed || this.#frozen) return;
    // The rows queued before this write go in before it (a trim or a delete must see them).
    this.#takeRows();
    this.#writes.push(() => statement.run(...params));
    this.#scheduled ??= setImmediate(() => this.#commitScheduled());
  }

  /**
   * Queues a row of a recent table. Rows wait in their table's buffer and go in many per statement;
   * the three tables are independent, so only their order relative to the other writes matters.
   */
  #queueRow(rows: RowInserts, ...values: unknown[]): void {
    if (this.#closed || this.#frozen) return;
    rows.add(values);
    this.#rowsQueued = true;
    this.#recentRows++;
    this.#scheduled ??= setImmediate(() => this.#commitScheduled());
  }

  /** Moves the buffered rows into the write queue, as one write. */
  #takeRows(): void {
    if (!this.#rowsQueued) return;
    this.#rowsQueued = false;
    const inserts = [this.#events.take(), this.#notifications.take(), this.#states.take()];
    this.#writes.push(() => {
      for (const insert of inserts) insert();
    });
  }

  #commitScheduled(): void {
    this.#scheduled = undefined;
    try {
      this.commitNow();
    } catch (error) {
      // Nothing of the batch became visible; it is committed again once the disk has room.
      this.#onError(error as VigilError);
      this.#scheduled = setTimeout(() => this.#commitScheduled(), this.#retryMs);
      this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
    }
  }

  #cancelScheduled(): void {
    if (this.#scheduled === undefined) return;
    clearImmediate(this.#scheduled as NodeJS.Immediate);
    clearTimeout(this.#scheduled as NodeJS.Timeout);
    this.#scheduled = undefined;
  }
}

/**
 * The rows queued for one insert-only table, inserted `ROWS_PER_INSERT` per statement. A statement
 * of n rows is prepared the first time n rows go in.
 */
class RowInserts {
  readonly #db: SqlDatabase;
  readonly #prefix: string;
  readonly #row: string;
  readonly #width: number;
  readonly #statements = new Map<number, Statement>();
  #values: unknown[] = [];

  constructor(db: SqlDatabase, table: string, columns: readonly string[]) {
    this.#db = db;
    this.#prefix = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
    this.#row = `(${columns.map(() => '?').join(', ')})`;
    this.#width = columns.length;
  }

  add(values: readonly unknown[]): void {
    for (const value of values) this.#values.push(value);
  }

  /** Empties the buffer; the returned function inserts what it held (and may run again if its transaction failed). */
  take(): () => void {
    const values = this.#values;
    this.#values = [];
    return () => {
      const width = this.#width;
      const rows = values.length / width;
      for (let first = 0; first < rows; first += ROWS_PER_INSERT) {
        const count = Math.min(ROWS_PER_INSERT, rows - first);
        this.#statement(count).run(...values.slice(first * width, (first + count) * width));
      }
    };
  }

  #statement(rows: number): Statement {
    let statement = this.#statements.get(rows);
    if (statement === undefined) {
      statement = this.#db.prepare(this.#prefix + Array.from({ length: rows }, () => this.#row).join(', '));
      this.#statements.set(rows, statement);
    }
    return statement;
  }
}

interface NotificationRow {
  readonly state: NotificationState;
  readonly seq: number;
  readonly notification_id: string;
  readonly notification: string;
}

interface SessionRow {
  readonly session_id: string;
  readonly state: SessionRecord['state'];
  readonly opened_at: number;
  readonly closed_at: number | null;
  readonly close_reason: string | null;
  readonly approval_version: number;
}

/** Opens (or creates, private to the user) the database file. */
export function open(path: string, stateDir: string): SqlDatabase {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    closeSync(openSync(path, 'a', 0o600));
    return openDatabase(path);
  } catch (error) {
    throw journalError(error, path);
  }
}

/**
 * Takes the database for this process alone: `locking_mode = EXCLUSIVE` keeps the lock from the
 * first write until the connection closes (or the process dies, when the kernel drops it).
 */
export function lock(db: SqlDatabase, path: string, ownerFile: string): void {
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('BEGIN IMMEDIATE; COMMIT');
  } catch (error) {
    if (sqliteCode(error) === 'SQLITE_BUSY') {
      const owner = readOwner(ownerFile);
      throw new VigilError(
        'ERR_STATE_LOCKED',
        `the journal ${path} is in use by another vigil${owner === undefined ? '' : ` (pid ${owner})`}; one state directory serves one vigil at a time`,
        { cause: error, details: { path, ...(owner === undefined ? {} : { pid: owner }) } },
      );
    }
    throw journalError(error, path);
  }
}

/** Brings the schema up to `SCHEMA_VERSION`; refuses a database of a newer vigil or of something else. */
function migrate(db: SqlDatabase, path: string): void {
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .column() as string[];
    if (tables.length > 0 && !tables.includes('schema_version')) {
      throw new VigilError(
        'ERR_JOURNAL',
        `the journal ${path} is an SQLite database but not a vigil journal (tables: ${tables.join(', ')}); move it away or choose another stateDir`,
        { details: { path } },
      );
    }
    db.exec(VERSION_TABLE);
    const version = (db.value('SELECT max(version) FROM schema_version') as number | null) ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new VigilError(
        'ERR_JOURNAL',
        `the journal ${path} has schema version ${version}, written by a newer vigil; this vigil reads up to version ${SCHEMA_VERSION}`,
        { details: { path, version, supported: SCHEMA_VERSION } },
      );
    }
    const record = db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)');
    db.transaction(() => {
      for (let next = version; next < SCHEMA_VERSION; next++) {
        db.exec(MIGRATIONS[next]!);
        record.run(next + 1, Date.now());
      }
    });
  } catch (error) {
    throw journalError(error, path);
  }
}

/** Caps the file at `maxBytes` (0: no cap); SQLite never sets it below the pages already used. */
function capSize(db: SqlDatabase, maxBytes: number): void {
  if (maxBytes === 0) return;
  const pageSize = db.value('PRAGMA page_size') as number;
  db.exec(`PRAGMA max_page_count = ${Math.ceil(maxBytes / pageSize)}`);
}

function readOwner(ownerFile: string): number | undefined {
  try {
    const { pid } = JSON.parse(readFileSync(ownerFile, 'utf8')) as { pid?: unknown };
    return typeof pid === 'number' ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** An SQLite failure as `ERR_JOURNAL_FULL` (the disk or quota is full) or `ERR_JOURNAL`, naming the file. */
export function journalError(error: unknown, path: string): VigilError {
  if (error instanceof VigilError) return error;
  const code = sqliteCode(error) ?? (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') {
    return new VigilError(
      'ERR_JOURNAL_FULL',
      `cannot write the journal ${path}: ${message} (the disk is full)`,
      {
        cause: error,
        details: { path, code },
      },
    );
  }
  return new VigilError('ERR_JOURNAL', `the journal ${path} cannot be used: ${message}`, {
    cause: error,
    details: { path, ...(typeof code === 'string' ? { code } : {}) },
  });
}
