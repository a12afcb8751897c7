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
];

/**
 * Moves what `recent_events` and `recent_states` hold into `events` and `notifications`, in one
 * statement each: a session's events go in seq order, and a notification takes its newest state.
 */
export const FOLD = `
  INSERT INTO events (session_id, seq, event)
    SELECT session_id, seq, event FROM recent_events ORDER BY session_id, seq;
  DELETE FROM recent_events;
  UPDATE notifications SET state = latest.state
    FROM (SELECT session_id, notification_id, state, max(id) FROM recent_states
          GROUP BY session_id, notification_id) AS latest
    WHERE notifications.session_id = latest.session_id
      AND notifications.notification_id = latest.notification_id;
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
