import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApprovalView } from '../src/approvals/approval-queue.js';
import { MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE } from '../src/store/schema.js';
import { SqliteStore } from '../src/store/sqlite-store.js';

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
});
