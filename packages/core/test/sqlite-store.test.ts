import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EventEmitter } from 'eventemitter3';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { Journal, notificationJson } from '../src/journal/journal.js';
import type { Notification } from '../src/journal/notification.js';
import type { TapeEvent } from '../src/journal/tape-events.js';
import type { ProcessRecord } from '../src/process/process-record.js';
import { SqliteStore } from '../src/store/sqlite-store.js';
import { notificationOf } from './support/journal-rows.js';

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
        store.setNotificationState(notificationOf('a', seq - 1000), 'delivered');
      }
      if (seq % 100 === 0) store.commitNow();
    }
    store.setNotificationState(notificationOf('a', 2010), 'withdrawn');
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
    const recent = count('recent_events') + count('recent_notifications') + count('recent_states');
    expect(recent).toBeGreaterThan(0);
    expect(recent).toBeLessThan(4096);
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
    // Acknowledgements count while their event is on the tape: 1,500 to 2,000.
    expect(a!.delivered).toEqual(Array.from({ length: 51 }, (_, i) => `p:match:${1500 + i * 10}`));
    expect(a!.pending.map(({ seq }) => seq)).toEqual(Array.from({ length: 99 }, (_, i) => 2020 + i * 10));
    expect(b!.pending).toEqual([]);
  });

  it('keeps a settled notification while its event is on the tape, and a completion while its process is kept', () => {
    const store = openStore();
    const dir = dirs[0]!;
    openSession(store, 'a');
    const completionOf = (processId: string, seq: number) =>
      ({
        ...notificationOf('a', seq),
        id: `${processId}:completion`,
        processId,
        type: 'completion',
      }) as Notification;
    // `kept` is a process vigil still tracks; `gone` was forgotten; `waiting`'s completion is not delivered yet.
    store.putProcess({ processId: 'kept', sessionId: 'a' } as ProcessRecord);
    for (const [seq, processId] of [
      [1, 'kept'],
      [2, 'gone'],
      [3, 'waiting'],
    ] as const) {
      store.appendEvent('a', eventOf(seq));
      store.putNotification(completionOf(processId, seq));
      if (processId !== 'waiting') store.setNotificationState(completionOf(processId, seq), 'delivered');
    }
    // 20,000 acknowledged matches on a tape that keeps the last 1,000 events.
    for (let seq = 4; seq <= 20_000; seq++) {
      store.appendEvent('a', eventOf(seq));
      store.putNotification(notificationOf('a', seq));
      store.setNotificationState(notificationOf('a', seq), 'delivered');
      if (seq % 256 === 0) store.trimEvents('a', seq - 1000);
      if (seq % 100 === 0) store.commitNow();
    }
    store.close();
    const db = new Database(join(dir, 'journal.db'));
    const rows = db.prepare('SELECT count(*) FROM notifications').pluck().get() as number;
    const recent = db.prepare('SELECT count(*) FROM recent_notifications').pluck().get() as number;
    db.close();
    // The settled ones before the tape's start are gone: what is left is bounded by the tape and a fold.
    expect(rows + recent).toBeLessThan(1_000 + 4_096);

    const reopened = openStore(dir);
    const [a] = reopened.restore();
    expect(a!.delivered).toContain('kept:completion');
    expect(a!.delivered).not.toContain('gone:completion');
    expect(a!.delivered).not.toContain('p:match:4');
    expect(a!.delivered).toContain('p:match:20000');
    // A process forgotten before its completion was delivered: the completion still waits.
    reopened.deleteProcess('a', 'waiting');
    reopened.trimEvents('a', 19_500);
    reopened.close();
    const [again] = openStore(dir).restore();
    expect(again!.pending.map(({ id }) => id)).toEqual(['waiting:completion']);
    expect(again!.delivered).toContain('kept:completion');
  });

  it("journals a notification's JSON, built from its event's, exactly as JSON.stringify writes it", () => {
    const data = { notificationId: 'p:match:1', lines: ['say "data":\u2028 \\ ,"data":{}'], hit: 1 };
    const cases = [
      { processId: 'p', command: 'echo "x" \\ é', type: 'watch_match' },
      { processId: null, command: '', type: 'watch_paused' },
    ] as const;
    for (const { processId, command, type } of cases) {
      const event = {
        seq: 7,
        type: 'watch.match',
        at: 1.5e12,
        ...(processId === null ? {} : { processId }),
        data,
      };
      const notification = {
        id: 'p:match:1',
        sessionId: 's "1"',
        type,
        seq: 7,
        at: 1.5e12,
        processId,
        command,
        data,
      };
      expect(notificationJson(notification as unknown as Notification, JSON.stringify(event))).toBe(
        JSON.stringify(notification),
      );
    }
  });

  it('journals a notification id once: a second event with the same id is on the tape but never pending', async () => {
    const store = openStore();
    const dir = dirs[0]!;
    openSession(store, 'a');
    const delivered: string[] = [];
    let firstDelivered!: () => void;
    const first = new Promise<void>((resolve) => {
      firstDelivered = resolve;
    });
    const journal = new Journal({
      sessionId: 'a',
      config: parseConfig({}),
      delivery: {
        deliver: (notification) => {
          delivered.push(notification.id);
          firstDelivered();
        },
      },
      gate: { admit: () => true, forget() {} },
      events: new EventEmitter(),
      now: Date.now,
      store,
    });
    const disabled = {
      notificationId: 'p:pattern_timeout:0',
      command: 'tail -f log',
      reason: 'pattern_timeout',
      message: 'disabled',
      suppressed: 0,
    } as const;
    journal.record('watch.disabled', disabled, { processId: 'p', command: 'tail -f log' });
    await first;
    // Recorded again (after a restart, say): once in the same turn as another copy, once later.
    journal.record('watch.disabled', disabled, { processId: 'p', command: 'tail -f log' });
    journal.record('watch.disabled', disabled, { processId: 'p', command: 'tail -f log' });
    await new Promise<void>((resolve) => journal.afterCommit(resolve));
    store.close();
    const [a] = openStore(dir).restore();
    expect(a!.events.filter(({ type }) => type === 'watch.disabled')).toHaveLength(3);
    expect(a!.pending).toEqual([]);
    expect(delivered).toEqual(['p:pattern_timeout:0']);
  });
});
