/**
 * The Redis journal (`store.kind: 'redis'`, issue 16) against vigil in memory and the SQLite journal,
 * side by side in one child: acknowledged notifications per second end to end (processes printing
 * watched lines, `deliver` or `deliverBatch` resolving at once), the same measurement as the
 * `journal` scenario's. Redis runs locally with an append-only file fsynced every second.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { round } from '../lib/measure.mjs';
import { benchRedis } from '../lib/redis-server.mjs';
import { ackRate } from './journal.mjs';

const SCENARIO = 'redis';
const HOST = 'main thread (in-thread host)';

/** @param {string} _host @param {{ quick: boolean }} opts */
export async function measure(_host, { quick }) {
  const sessions = 20;
  const lines = quick ? 1000 : 5000;
  const total = (sessions * lines).toLocaleString('en');
  const redis = await benchRedis();
  const stateDir = mkdtempSync(join(tmpdir(), 'vigil-bench-redis-state-'));
  const rows = [];
  try {
    for (const batch of [false, true]) {
      const how = batch ? 'deliverBatch' : 'deliver';
      const memory = await ackRate({}, sessions, lines, batch);
      const sqlite = await ackRate({ stateDir: join(stateDir, how) }, sessions, lines, batch);
      const shared = await ackRate(
        { store: { kind: 'redis', url: redis.url, prefix: `bench-${how}:` } },
        sessions,
        lines,
        batch,
      );
      rows.push(
        metric(
          `acknowledged notifications/s, ${how}, in memory (${total} over ${sessions} sessions)`,
          Math.round(memory),
          '/s',
        ),
        metric(`acknowledged notifications/s, ${how}, SQLite journal (NORMAL)`, Math.round(sqlite), '/s'),
        metric(`acknowledged notifications/s, ${how}, Redis journal`, Math.round(shared), '/s'),
        metric('  Redis / in memory', round(shared / memory, 2), 'x'),
        metric('  Redis / SQLite', round(shared / sqlite, 2), 'x'),
      );
    }
    return rows;
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
    await redis.stop();
  }
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [HOST], opts);
}

childMain(import.meta.url, SCENARIO, measure);
