/**
 * Hung-poller close: a poller wedged in a synchronous busy loop (`injectFault('spin')`) must be
 * closed within `stopTimeoutMs` + 250 ms by terminating its thread, and its neighbours must go on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { injectFault } from '../../test/fixtures/faulty-poller.mjs';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, HOSTS, IN_THREAD } from '../lib/hosts.mjs';
import { percentile, round, within } from '../lib/measure.mjs';

const SCENARIO = 'hung-close';
const STOP_TIMEOUT_MS = 2_000;
const MARGIN_MS = 250;
const SESSIONS = 8;

/** Probes every session until each answers (a neighbour of a terminated thread restarts first). */
async function allAnswer(vigil, ids, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (const id of ids) {
    for (;;) {
      try {
        await within(vigil.sessions.probe(id), 1_000, `probe ${id}`);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(20);
      }
    }
  }
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const repeats = quick ? 1 : 5;
  const { vigil } = createBenchVigil(host, {
    faults: true,
    maxThreads: SESSIONS + 2,
    options: { stopTimeoutMs: STOP_TIMEOUT_MS },
  });
  const rows = [];
  try {
    const neighbours = Array.from({ length: SESSIONS - 1 }, (_, i) => `neighbour-${i}`);
    for (const id of neighbours) await vigil.sessions.open(id);
    const times = [];
    let forced = 0;
    let recoverMs = 0;
    for (let r = 0; r < repeats; r++) {
      const id = `hung-${r}`;
      await vigil.sessions.open(id);
      await injectFault(vigil, id, 'spin');
      const started = performance.now();
      const result = await vigil.sessions.close(id);
      times.push(performance.now() - started);
      if (result.forced) forced++;
      const recovering = performance.now();
      await allAnswer(vigil, neighbours);
      recoverMs = Math.max(recoverMs, performance.now() - recovering);
    }
    const max = Math.max(...times);
    const limit = { op: '<=', value: STOP_TIMEOUT_MS + MARGIN_MS };
    rows.push(
      metric(
        `close of a spinning poller, min (${repeats}x, ${SESSIONS} sessions)`,
        round(Math.min(...times)),
        'ms',
      ),
      metric('close of a spinning poller, p50', round(percentile(times, 50)), 'ms'),
      metric('close of a spinning poller, max', round(max), 'ms', limit),
      metric(`margin over stopTimeoutMs (${STOP_TIMEOUT_MS}), max`, round(max - STOP_TIMEOUT_MS), 'ms', {
        op: '<=',
        value: MARGIN_MS,
      }),
      metric('closes that terminated the thread (forced)', forced, 'closes', { op: '==', value: repeats }),
      metric(`other ${neighbours.length} sessions answer probes after`, 'ok', '', { op: '==', value: 'ok' }),
      metric('  time until they all answer again, max', round(recoverMs), 'ms'),
    );
  } finally {
    await vigil.close();
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  const fixed = {
    [IN_THREAD]: [metric('close of a spinning poller: blocks the main thread', 'n/a', '')],
  };
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts, fixed);
}

childMain(import.meta.url, SCENARIO, measure);
