import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Notification } from '../src/journal/notification.js';
import type { TapeEvent } from '../src/journal/tape-events.js';
import { SqliteStore } from '../src/store/sqlite-store.js';

const dirs: string[] = [];
function openStore(dir = mkdtempSync(join(tmpdir(), 'vigil-store-'))): SqliteStore {
  if (!dirs.includes(dir)) dirs.push(dir);
  return new SqliteStore({
    stateDir: dir,
    onError: (error) => {
      throw error;
    },
  });
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const eventOf = (seq: number): TapeEvent =>
  ({
    seq,
    type: 'watch.resumed',
    at: seq,
    data: { suppressed: 0, pausedMs: 0, message: `${seq}` },
  }) as TapeEvent;

const notificationOf = (sessionId: string, seq: number): Notification =>
  ({
    id: `p:match:${seq}`,
    sessionId,
    type: 'watch_match',
    seq,
    at: seq,
    processId: 'p',
    command: 'seq',
    data: { notificationId: `p:match:${seq}` },
  }) as unknown as Notification;

function openSession(store: SqliteStore, sessionId: string): void {
  store.putSession({
    sessionId,
    state: 'open',
    openedAt: 0,
    closedAt: null,
    closeReason: null,
    approvalVersion: 0,
  });
}

describe('SqliteStore', () => {
  it('restores the same journal whether its writes were folded into the ordered tables or not', () => {
    const store = openStore();
    const dir = dirs[0]!;
    for (const sessionId of ['a', 'b', 'gone']) openSession(store, sessionId);
    // 2 × 3,000 events and 200 acknowledgements: the recent tables are folded on the way, at least once.
    for (let seq = 1; seq <= 3000; seq++) {
      for (const sessionId of ['a', 'b']) store.appendEvent(sessionId, eventOf(seq));
      if (seq % 10 === 0) store.putNotification(notificationOf('a', seq));
      if (seq % 10 === 0 && seq > 1000 && seq <= 3000) {
        // Acknowledged a thousand events later, as a slow deliver would.
        store.setNotificationState('a', `p:match:${seq - 1000}`, 'delivered');
      }
      if (seq % 100 === 0) store.commitNow();
    }
    store.setNotificationState('a', 'p:match:2010', 'withdrawn');
    store.trimEvents('a', 1500);
    store.appendEvent('gone', eventOf(1));
    store.deleteSession('gone');
    for (let seq = 3001; seq <= 3100; seq++) store.appendEvent('a', eventOf(seq));
    store.close();

    const db = new Database(join(dir, 'journal.db'));
    const count = (table: string): number =>
      db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    // What was folded is in the ordered tables; what came after waits in the recent ones.
    expect(count('events')).toBeGreaterThan(0);
    expect(count('recent_events') + count('recent_states')).toBeGreaterThan(0);
    expect(count('recent_events') + count('recent_states')).toBeLessThan(4096);
    // Each retained event is in one table or the other: a's 1,500 to 3,100 and b's 3,000.
    expect(count('events') + count('recent_events')).toBe(1601 + 3000);
    expect(count('recent_states')).toBeLessThan(200);
    db.close();

    const restored = openStore(dir).restore();
    expect(restored.map(({ record }) => record.sessionId)).toEqual(['a', 'b']);
    const [a, b] = restored;
    expect(a!.events.map(({ seq }) => seq)).toEqual(Array.from({ length: 1601 }, (_, i) => 1500 + i));
    expect(a!.lastSeq).toBe(3100);
    expect(b!.events.map(({ seq }) => seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(a!.delivered).toEqual(Array.from({ length: 200 }, (_, i) => `p:match:${(i + 1) * 10}`));
    expect(a!.pending.map(({ seq }) => seq)).toEqual(Array.from({ length: 99 }, (_, i) => 2020 + i * 10));
    expect(b!.pending).toEqual([]);
  });
});
