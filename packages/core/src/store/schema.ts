/**
 * The journal's schema, as migrations: `MIGRATIONS[i]` takes a database from version `i` to `i + 1`.
 * A released migration is never edited; a change of schema is a new entry at the end.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    close_reason TEXT,
    approval_version INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE events (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE notifications (
    session_id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    notification TEXT NOT NULL,
    PRIMARY KEY (session_id, notification_id)
  ) WITHOUT ROWID;
  CREATE TABLE approvals (
    session_id TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    view TEXT NOT NULL,
    outcome TEXT,
    PRIMARY KEY (session_id, approval_id)
  );
  CREATE TABLE processes (
    process_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    record TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX processes_by_session ON processes (session_id);
  `,
  // 2: the human's answer to a resolved approval; \`approve_session\` ones are the session's grants.
  `
  ALTER TABLE approvals ADD COLUMN decision TEXT;
  `,
  // 3: the frequent small writes (tape events, notification states) land in insertion order
  // first and are folded into the tables above in batches (see SqliteStore), so a commit writes a
  // few pages whatever the number of sessions.
  `
  CREATE TABLE recent_events (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL
  );
  CREATE TABLE recent_states (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    state TEXT NOT NULL
  );
  `,
  // 4: notifications are ordered by seq within their session (new ones and their acknowledgements
  // touch the last pages of a session, not pages all over it), settled ones are indexed (a trim
  // deletes them without reading the pending ones), and new ones land in insertion order first
  // like the rest. What version 3 left in its recent tables is folded first.
  `
  INSERT INTO events (session_id, seq, event)
    SELECT session_id, seq, event FROM recent_events ORDER BY session_id, seq;
  DELETE FROM recent_events;
  UPDATE notifications SET state = latest.state
    FROM (SELECT session_id, notification_id, state, max(id) FROM recent_states
          GROUP BY session_id, notification_id) AS latest
    WHERE notifications.session_id = latest.session_id
      AND notifications.notification_id = latest.notification_id;
  DELETE FROM recent_states;
  CREATE TABLE notifications_by_seq (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    notification_id TEXT NOT NULL,
    state TEXT NOT NULL,
    notification TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
  ) WITHOUT ROWID;
  INSERT OR IGNORE INTO notifications_by_seq (session_id, seq, notification_id, state, notification)
    SELECT session_id, seq, notification_id, state, notification FROM notifications;
  DROP TABLE notifications;
  ALTER TABLE notifications_by_seq RENAME TO notifications;
  CREATE INDEX settled_notifications ON notifications (session_id, seq) WHERE state <> 'pending';
  ALTER TABLE recent_states ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE recent_notifications (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    notification_id TEXT NOT NULL,
    notification TEXT NOT NULL
  );
  `,
];

/** The newest state each notification took in `recent_states`. */
const LATEST_STATES = `(SELECT session_id, seq, state, max(id) FROM recent_states GROUP BY session_id, seq)`;

/**
 * Moves what the recent tables hold into `events` and `notifications`, one statement per table, in
 * the tables' order: a session's events and notifications by seq, and a notification takes its
 * newest state. A settled notification (delivered or withdrawn) keeps its id and state but not its
 * JSON, which nothing reads again.
 */
export const FOLD = `
  INSERT INTO events (session_id, seq, event)
    SELECT session_id, seq, event FROM recent_events ORDER BY session_id, seq;
  DELETE FROM recent_events;
  INSERT OR IGNORE INTO notifications (session_id, seq, notification_id, state, notification)
    SELECT n.session_id, n.seq, n.notification_id, coalesce(latest.state, 'pending'),
           CASE WHEN coalesce(latest.state, 'pending') = 'pending' THEN n.notification ELSE '' END
    FROM recent_notifications AS n LEFT JOIN ${LATEST_STATES} AS latest
      ON latest.session_id = n.session_id AND latest.seq = n.seq
    ORDER BY n.session_id, n.seq;
  DELETE FROM recent_notifications;
  UPDATE notifications
    SET state = latest.state,
        notification = CASE WHEN latest.state = 'pending' THEN notification ELSE '' END
    FROM ${LATEST_STATES} AS latest
    WHERE notifications.session_id = latest.session_id
      AND notifications.seq = latest.seq
      AND notifications.state <> latest.state;
  DELETE FROM recent_states;
`;

/** The schema version this vigil writes, and the newest it can read. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Created before any migration: which versions were applied, and when. */
export const VERSION_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
  )`;
