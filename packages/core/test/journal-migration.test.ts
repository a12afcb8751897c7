import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApprovalView } from '../src/approvals/approval-queue.js';
import { MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE } from '../src/store/schema.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { notificationOf } from './support/journal-rows.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A journal as a vigil of schema version 1 left it: one open session with one pending approval. */
function versionOneJournal(view: ApprovalView): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-migration-'));
  dirs.push(dir);
  const db = new Database(join(dir, 'journal.db'));
  db.exec(VERSION_TABLE);
  db.exec(MIGRATIONS[0]!);
  db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (1, 0)').run();
  db.prepare('INSERT INTO sessions VALUES (?, ?, ?, NULL, NULL, ?)').run(view.sessionId, 'open', 0, 1);
  db.prepare('INSERT INTO approvals VALUES (?, ?, ?, NULL)').run(
    view.sessionId,
    view.approvalId,
    JSON.stringify(view),
  );
  db.close();
  return dir;
}

describe('SqliteStore migrations', () => {
  it('brings a version 1 journal up to date, keeping its pending approval, and keeps an approve_session answer', () => {
    const view: ApprovalView = {
      approvalId: 'appr_000000000001',
      sessionId: 'agent',
      command: 'make deploy',
      description: '',
      requestedAt: 0,
    };
    const stateDir = versionOneJournal(view);
    const onError = (error: unknown): never => {
      throw error;
    };
    const upgraded = new SqliteStore({ stateDir, onError });
    const [restored] = upgraded.restore();
    expect(restored).toMatchObject({ approvals: [view], grants: [] });
    upgraded.resolveApproval('agent', view.approvalId, 'approved', 'approve_session');
    upgraded.close();
    const db = new Database(join(stateDir, 'journal.db'));
    expect(db.prepare('SELECT max(version) FROM schema_version').pluck().get()).toBe(SCHEMA_VERSION);
    db.close();
    const again = new SqliteStore({ stateDir, onError });
    expect(again.restore()).toMatchObject([{ approvals: [], grants: [view] }]);
    again.close();
  });

  it('brings a version 3 journal up to date with what waited in its recent tables', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-migration-'));
    dirs.push(dir);
    const db = new Database(join(dir, 'journal.db'));
    db.exec(VERSION_TABLE);
    for (const [version, migration] of MIGRATIONS.slice(0, 3).entries()) {
      db.exec(migration);
      db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, 0)').run(version + 1);
    }
    db.prepare('INSERT INTO sessions VALUES (?, ?, ?, NULL, NULL, ?)').run('agent', 'open', 0, 0);
    const notification = (seq: number) => notificationOf('agent', seq);
    const event = (seq: number) =>
      JSON.stringify({ seq, type: 'watch.match', at: seq, processId: 'p', data: {} });
    // Seqs 1 and 2 folded, 3 still recent; 1 acknowledged in a state not folded yet.
    const insertEvent = db.prepare('INSERT INTO events VALUES (?, ?, ?)');
    const insertNotification = db.prepare("INSERT INTO notifications VALUES (?, ?, ?, 'pending', ?)");
    for (const seq of [1, 2]) {
      insertEvent.run('agent', seq, event(seq));
      insertNotification.run('agent', `p:match:${seq}`, seq, JSON.stringify(notification(seq)));
    }
    db.prepare('INSERT INTO recent_events (session_id, seq, event) VALUES (?, ?, ?)').run(
      'agent',
      3,
      event(3),
    );
    db.prepare('INSERT INTO recent_states (session_id, notification_id, state) VALUES (?, ?, ?)').run(
      'agent',
      'p:match:1',
      'delivered',
    );
    db.close();

    const onError = (error: unknown): never => {
      throw error;
    };
    const upgraded = new SqliteStore({ stateDir: dir, onError });
    const [restored] = upgraded.restore();
    expect(restored!.events.map(({ seq }) => seq)).toEqual([1, 2, 3]);
    expect(restored!.delivered).toEqual(['p:match:1']);
    expect(restored!.pending).toEqual([notification(2)]);
    upgraded.close();
  });
});
