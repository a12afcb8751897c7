/**
 * Scale: RSS and threads with many sessions open, each with its poller running (proved by a probe
 * round trip through every poller). The thread-per-session host opens 200 and is extrapolated.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, EXCLUSIVE, HOSTS } from '../lib/hosts.mjs';
import { percentile, pooled, round, snapshot, within } from '../lib/measure.mjs';

const SCENARIO = 'scale';
const TARGET_SESSIONS = 1000;
const RSS_TARGET = { op: '<', value: 400 };
const IN_FLIGHT = 50;

function sessionCount(host, quick) {
  if (host === EXCLUSIVE) return quick ? 20 : 200;
  return quick ? 200 : TARGET_SESSIONS;
}

/** Resolves once `count` pollers run (each open resolved after its poller said hello). */
async function allPollersRunning(vigil, count, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (vigil.stats().pollers < count) {
    if (Date.now() > deadline) throw new Error(`only ${vigil.stats().pollers}/${count} pollers running`);
    await sleep(20);
  }
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const n = sessionCount(host, quick);
  const ids = Array.from({ length: n }, (_, i) => `scale-${i}`);
  const before = await snapshot();
  const { vigil } = createBenchVigil(host, { maxThreads: n + 10 });
  const rows = [];
  try {
    let started = performance.now();
    await pooled(n, IN_FLIGHT, (i) => vigil.sessions.open(ids[i]));
    await allPollersRunning(vigil, n);
    rows.push(
      metric(`time to open ${n} sessions (${IN_FLIGHT} in flight)`, round(performance.now() - started), 'ms'),
    );

    const open = await snapshot();
    const rssDelta = open.rssMb - before.rssMb;
    const full = n >= TARGET_SESSIONS;
    rows.push(
      metric(`RSS with ${n} sessions open`, round(open.rssMb), 'MB', full ? RSS_TARGET : undefined),
      metric(`RSS Δ from baseline (${round(before.rssMb)} MB)`, round(rssDelta), 'MB'),
    );
    if (!full) {
      const perSession = rssDelta / n;
      const label = `RSS at ${TARGET_SESSIONS} sessions, extrapolated from ${n}`;
      rows.push(
        metric(`RSS Δ per session (measured on ${n})`, round(perSession, 2), 'MB/session'),
        metric(
          label,
          round(before.rssMb + perSession * TARGET_SESSIONS),
          'MB',
          quick ? undefined : RSS_TARGET,
        ),
      );
    }
    rows.push(
      metric('OS threads (Δ before vigil)', open.threads - before.threads, 'threads'),
      metric('vigil.stats().threads', vigil.stats().threads, 'threads'),
    );

    const latencies = [];
    for (const id of ids) {
      started = performance.now();
      await within(vigil.sessions.probe(id), 5_000, `probe ${id}`);
      latencies.push(performance.now() - started);
    }
    rows.push(
      metric('pollers answering a probe', latencies.length, 'sessions', { op: '==', value: n }),
      metric('probe round trip p50 (one at a time)', round(percentile(latencies, 50), 3), 'ms'),
      metric('probe round trip p99 (one at a time)', round(percentile(latencies, 99), 3), 'ms'),
    );
  } finally {
    const closing = performance.now();
    await vigil.close();
    rows.push(metric(`vigil.close() with ${n} sessions`, round(performance.now() - closing), 'ms'));
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts);
}

childMain(import.meta.url, SCENARIO, measure);
