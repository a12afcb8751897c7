/**
 * The durable journal (`stateDir`, G16) against vigil in memory, side by side in one child:
 * acknowledged notifications per second end to end (processes printing watched lines, `deliver`
 * resolving at once), tape appends per second through the journal, and recovery after SIGKILL with
 * 1,000 sessions and 10,000 pending notifications (a child journals them and is killed; the time
 * is from `createVigil` to every session restored, and to every notification delivered).
 * `Journal` and `SqliteStore` are not public, so they are imported from the core's dist output.
 */
import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../packages/core/dist/config.js';
import { createVigil } from '../../packages/core/dist/index.js';
import { Journal } from '../../packages/core/dist/journal/journal.js';
import { MemoryStore } from '../../packages/core/dist/store/memory-store.js';
import { SqliteStore } from '../../packages/core/dist/store/sqlite-store.js';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { round, within } from '../lib/measure.mjs';

const SCENARIO = 'journal';
const HOST = 'main thread (in-thread host)';
const WATCH = {
  cooldownMs: 0,
  lifetimeMaxHits: 1_000_000,
  maxLinesPerMatch: 1,
  breaker: { maxMatches: 1_000_000 },
};

const tempDir = () => mkdtempSync(join(tmpdir(), 'vigil-bench-journal-'));

/**
 * `sessions` sessions each run a process printing `lines` watched lines; resolves with acks per
 * second. `batch`: the sessions take `deliverBatch` (every ready notification per call, one commit
 * of their acknowledgements) instead of `deliver` (one call and one commit per notification).
 */
export async function ackRate(options, sessions, lines, batch = false) {
  const vigil = createVigil({ ...options, watch: WATCH, processes: { spawner: 'direct' } });
  const total = sessions * lines;
  let acked = 0;
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  try {
    for (let i = 0; i < sessions; i++) {
      const count = (notification) => {
        if (notification.type === 'watch_match' && ++acked === total) done();
      };
      await vigil.sessions.open(
        `acks-${i}`,
        batch ? { deliverBatch: ({ notifications }) => notifications.forEach(count) } : { deliver: count },
      );
    }
    const started = performance.now();
    for (let i = 0; i < sessions; i++) {
      vigil.processes.spawn({
        sessionId: `acks-${i}`,
        command: `seq -f 'HIT %g' ${lines}`,
        watch: ['HIT'],
        notifyOnComplete: false,
      });
    }
    await within(all, 120_000, `${total} acknowledgements`);
    return (total * 1000) / (performance.now() - started);
  } finally {
    await vigil.close();
  }
}

function journalOf(store, sessionId) {
  return new Journal({
    sessionId,
    config: parseConfig({}),
    delivery: undefined,
    gate: { admit: () => true, forget() {} },
    events: new EventEmitter(),
    now: Date.now,
    store,
  });
}

/** Events recorded per second through a session's journal, yielding to the loop every 1,000 (a commit per turn). */
async function appendRate(store, count) {
  const journal = journalOf(store, 'appends');
  const data = { suppressed: 0, pausedMs: 0, message: 'bench' };
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    journal.record('watch.resumed', { ...data, notificationId: `appends:resumed:${i}` });
    if (i % 1000 === 999) await tick();
  }
  store.commitNow();
  return (count * 1000) / (performance.now() - started);
}

/** The child of the recovery measurement: journals the sessions and their notifications, then waits to be killed. */
function populate(stateDir, sessions, perSession) {
  const store = new SqliteStore({ stateDir, onError: (error) => console.error(error) });
  const now = Date.now();
  for (let s = 0; s < sessions; s++) {
    const sessionId = `restored-${s}`;
    const record = { sessionId, openedAt: now, closedAt: null, closeReason: null, approvalVersion: 0 };
    store.putSession({ ...record, state: 'open' });
    const journal = journalOf(store, sessionId);
    journal.record('session.opened', { threadId: 0 });
    for (let p = 0; p < perSession; p++) {
      const processId = `proc_${s}_${p}`;
      journal.record(
        'process.exited',
        {
          state: 'exited',
          exitCode: 0,
          signal: null,
          reason: 'exited with code 0',
          outputTail: 'ok\n',
          outputBytes: 3,
          outputDropped: 0,
          durationMs: 1,
        },
        { processId, command: 'true' },
      );
    }
  }
  store.commitNow();
  process.send('ready');
}

async function recovery(sessions, perSession) {
  const stateDir = tempDir();
  try {
    const child = fork(fileURLToPath(import.meta.url), [
      '--populate',
      stateDir,
      String(sessions),
      String(perSession),
    ]);
    await within(new Promise((resolve) => child.once('message', resolve)), 120_000, 'the journaling child');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const total = sessions * perSession;
    const started = performance.now();
    const vigil = createVigil({ stateDir });
    const restoredMs = performance.now() - started;
    const restored = vigil.sessions.list().length;
    let delivered = 0;
    let done;
    const all = new Promise((resolve) => {
      done = resolve;
    });
    try {
      await Promise.all(
        vigil.sessions.list().map(({ sessionId }) =>
          vigil.sessions.open(sessionId, {
            deliver: () => {
              if (++delivered === total) done();
            },
          }),
        ),
      );
      await within(all, 120_000, `${total} restored notifications`);
      return { restoredMs, restored, deliveredMs: performance.now() - started, delivered };
    } finally {
      await vigil.close();
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** @param {string} _host @param {{ quick: boolean }} opts */
export async function measure(_host, { quick }) {
  const sessions = 20;
  const lines = quick ? 1000 : 5000;
  const appends = quick ? 100_000 : 500_000;
  const rows = [];
  const dirs = [];
  try {
    const memoryAcks = await ackRate({}, sessions, lines);
    const memoryBatchAcks = await ackRate({}, sessions, lines, true);
    const modes = {};
    for (const [mode, synchronous, batch] of [
      ['NORMAL', 'NORMAL', false],
      ['FULL', 'FULL', false],
      ['NORMAL batch', 'NORMAL', true],
    ]) {
      const stateDir = tempDir();
      dirs.push(stateDir);
      modes[mode] = await ackRate({ stateDir, journal: { synchronous } }, sessions, lines, batch);
    }
    const total = (sessions * lines).toLocaleString('en');
    rows.push(
      metric(
        `acknowledged notifications/s, in memory (${total} over ${sessions} sessions)`,
        Math.round(memoryAcks),
        '/s',
      ),
    );
    rows.push(
      metric('acknowledged notifications/s, journal (synchronous NORMAL)', Math.round(modes.NORMAL), '/s'),
    );
    rows.push(metric('  durable / in memory', round(modes.NORMAL / memoryAcks, 2), 'x'));
    rows.push(
      metric('acknowledged notifications/s, journal (synchronous FULL)', Math.round(modes.FULL), '/s'),
    );
    rows.push(
      metric('acknowledged notifications/s, deliverBatch, in memory', Math.round(memoryBatchAcks), '/s'),
    );
    // One commit per batch of acknowledgements: what makes the durable journal reach the target.
    rows.push(
      metric(
        'acknowledged notifications/s, deliverBatch, journal (synchronous NORMAL)',
        Math.round(modes['NORMAL batch']),
        '/s',
        { op: '>=', value: 20_000 },
      ),
    );
    rows.push(metric('  durable / in memory', round(modes['NORMAL batch'] / memoryBatchAcks, 2), 'x'));

    const memoryAppends = await appendRate(new MemoryStore(), appends);
    const appendDir = tempDir();
    dirs.push(appendDir);
    const store = new SqliteStore({ stateDir: appendDir, onError: (error) => console.error(error) });
    const durableAppends = await appendRate(store, appends);
    store.close();
    const counted = appends.toLocaleString('en');
    rows.push(
      metric(`tape appends/s through the journal, in memory (${counted})`, Math.round(memoryAppends), '/s'),
    );
    rows.push(
      metric('tape appends/s through the journal, SQLite (NORMAL)', Math.round(durableAppends), '/s'),
    );
    rows.push(metric('  durable / in memory', round(durableAppends / memoryAppends, 2), 'x'));

    const restart = await recovery(1000, 10);
    rows.push(
      metric('recovery after SIGKILL: sessions restored', restart.restored, 'sessions', {
        op: '==',
        value: 1000,
      }),
    );
    rows.push(
      metric('  createVigil → 1,000 sessions restored', round(restart.restoredMs), 'ms', {
        op: '<',
        value: 1000,
      }),
    );
    rows.push(
      metric('  createVigil → 10,000 pending notifications delivered', round(restart.deliveredMs), 'ms'),
    );
    rows.push(
      metric('  notifications delivered', restart.delivered, 'notifications', { op: '==', value: 10_000 }),
    );
    return rows;
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [HOST], opts);
}

const populating = process.argv.indexOf('--populate');
if (populating >= 0) {
  const [stateDir, sessions, perSession] = process.argv.slice(populating + 1);
  populate(stateDir, Number(sessions), Number(perSession));
} else childMain(import.meta.url, SCENARIO, measure);
