/**
 * Tenants (G18): healthy sessions' watch latency with one faulty neighbour, against none. Healthy
 * sessions each run a child writing a stamped `PING` line every 20 ms, watched; `deliver` takes
 * the delay from the child's stamp. The neighbour is, in turn: nobody (baseline); a session of 8
 * (quick) / 64 processes printing a line that makes `(a+)+$` backtrack catastrophically, once a
 * second each (a pattern V8 runs in linear time once it runs away); the same with the `i` flag (it
 * cannot run in linear time: isolated and refused after `watch.patternTimeoutLimit` timeouts); a
 * poller that throws once a second; and one wedged in a batch once a second (its thread ended).
 * On the shared worker host only: the in-thread host shares one thread by design.
 */
import { injectFault } from '../../test/fixtures/faulty-poller.mjs';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, SHARED } from '../lib/hosts.mjs';
import { percentile, round, within } from '../lib/measure.mjs';
import { pinger } from '../lib/pinger.mjs';

const SCENARIO = 'tenants';
const INTERVAL_MS = 20;
/** Rate limits out of the way: every match is delivered. */
const OPTIONS = {
  watch: { cooldownMs: 0, lifetimeMaxHits: 1_000_000, breaker: { maxMatches: 1_000_000 } },
};
/** A line on which `(a+)+$` backtracks for years: 40 a's and a '!'. */
const CATASTROPHE = `${'a'.repeat(40)}!`;

/** The faulty neighbours, by name: each starts its fault in session `bad` and returns a stop function. */
const NEIGHBOURS = {
  none: () => () => {},
  'catastrophic regex (linear-time fallback)': (vigil, { processes }) =>
    catastrophic(vigil, processes, { regex: '(a+)+$' }),
  'catastrophic regex with u (backtracking, isolated)': (vigil, { processes }) =>
    catastrophic(vigil, processes, { regex: '(a+)+$', flags: 'u' }),
  'poller throwing once a second': (vigil) => everySecond(() => injectFault(vigil, 'bad', 'throw')),
  'poller wedged once a second': (vigil) => everySecond(() => injectFault(vigil, 'bad', 'wedge')),
};

function catastrophic(vigil, processes, pattern) {
  for (let i = 0; i < processes; i++) {
    vigil.processes.spawn({
      sessionId: 'bad',
      command: `while :; do echo '${CATASTROPHE}'; sleep 1; done`,
      watch: [pattern],
    });
  }
  return () => {};
}

/** Runs `fault` once a second; a fault that finds no running poller (it is restarting) is skipped. */
function everySecond(fault) {
  const timer = setInterval(() => {
    try {
      fault().catch(() => {});
    } catch {
      // No poller right now: the next second tries again.
    }
  }, 1000);
  return () => clearInterval(timer);
}

/** Latencies (ms) of the healthy sessions' lines, and how often their pollers restarted. */
async function phase(neighbour, { sessions, lines, processes }) {
  const { vigil } = createBenchVigil(SHARED, { faults: true, options: OPTIONS });
  const times = [];
  let seen = 0;
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const deliver = (notification) => {
    const at = process.hrtime.bigint();
    for (const line of notification.data.lines ?? []) {
      const found = /PING (\d+) (\d+)/.exec(line);
      if (found === null) continue;
      // The first lines warm the code paths.
      if (Number(found[1]) >= 10) times.push(Number(at - BigInt(found[2])) / 1e6);
      if (++seen === sessions * lines) done();
    }
  };
  let restarts = 0;
  vigil.on('poller:started', (info) => {
    if (info.restart && info.sessionId !== 'bad') restarts++;
  });
  try {
    await vigil.sessions.open('bad');
    for (let i = 0; i < sessions; i++) await vigil.sessions.open(`healthy-${i}`, { deliver });
    const stop = NEIGHBOURS[neighbour](vigil, { processes });
    for (let i = 0; i < sessions; i++) {
      vigil.processes.spawn({
        sessionId: `healthy-${i}`,
        command: pinger(lines, INTERVAL_MS),
        watch: ['PING'],
      });
    }
    await within(all, lines * INTERVAL_MS + 60_000, `${neighbour}: the healthy sessions' lines`);
    stop();
  } finally {
    await vigil.close();
  }
  return { times, restarts };
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(_host, { quick }) {
  const shape = quick
    ? { sessions: 10, lines: 250, processes: 8 }
    : { sessions: 40, lines: 1000, processes: 64 };
  const label = `${shape.sessions} healthy sessions, a line each per ${INTERVAL_MS} ms`;
  const rows = [];
  let baseline;
  for (const neighbour of Object.keys(NEIGHBOURS)) {
    const { times, restarts } = await phase(neighbour, shape);
    const p99 = percentile(times, 99);
    baseline ??= p99;
    rows.push(
      metric(`${label}, faulty neighbour: ${neighbour}: latency p50`, round(percentile(times, 50), 2), 'ms'),
      metric(`${label}, faulty neighbour: ${neighbour}: latency p99`, round(p99, 2), 'ms'),
      metric(`${label}, faulty neighbour: ${neighbour}: healthy poller restarts`, restarts, 'restarts'),
    );
    if (neighbour !== 'none') {
      rows.push(metric(`${neighbour}: p99 ratio to no faulty neighbour`, round(p99 / baseline, 2), '×'));
    }
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [SHARED], opts);
}

childMain(import.meta.url, SCENARIO, measure);
