/**
 * Churn soak with default settings: sessions open, run a few short commands, and close, in a loop
 * (10 lanes in flight) for 10 minutes (1 minute with --quick; `VIGIL_SOAK_MS` overrides both).
 * Reported per period (a minute; 10 s with --quick): cycles per second and RSS at its end, and the
 * last period against the first (flat: ≈ 1). Closed sessions and finished processes pile up to
 * their caps (`tape.maxClosedSessions`, `processes.maxFinished`) and no further.
 */
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, SHARED } from '../lib/hosts.mjs';
import { mb, round } from '../lib/measure.mjs';

const SCENARIO = 'soak';
const LANES = 10;
const COMMANDS = ['true', 'echo built', 'printf "a\\nb\\n"'];

function plan(quick) {
  const fromEnv = Number(process.env.VIGIL_SOAK_MS);
  const durationMs = Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : quick ? 60_000 : 600_000;
  const periodMs = quick || durationMs < 120_000 ? 10_000 : 60_000;
  return { durationMs, periodMs };
}

/** One cycle: open, spawn the commands, wait for their ends, close. */
async function cycle(vigil, sessionId) {
  await vigil.sessions.open(sessionId);
  const spawned = COMMANDS.map((command) => vigil.processes.spawn({ sessionId, command }));
  await Promise.all(spawned.map(({ processId }) => vigil.processes.wait(processId)));
  await vigil.sessions.close(sessionId);
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const { durationMs, periodMs } = plan(quick);
  const { vigil } = createBenchVigil(host);
  const periods = [];
  let cycles = 0;
  let next = 0;
  const started = performance.now();
  const sampler = setInterval(() => {
    periods.push({ cycles, rssMb: mb(process.memoryUsage().rss) });
  }, periodMs);
  try {
    const lane = async () => {
      while (performance.now() - started < durationMs) {
        await cycle(vigil, `soak-${next++}`);
        cycles++;
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
  } finally {
    clearInterval(sampler);
  }
  const retained = vigil.sessions.list().length;
  await vigil.close();
  const unit = periodMs === 60_000 ? 'min' : `${periodMs / 1000} s`;
  const rates = periods.map(
    (period, i) => (period.cycles - (periods[i - 1]?.cycles ?? 0)) / (periodMs / 1000),
  );
  const rows = [
    metric(
      `cycles (open, ${COMMANDS.length} commands, close) in ${round(durationMs / 60_000, 1)} min`,
      cycles,
      'cycles',
    ),
    metric(`cycles per second, each ${unit}`, rates.map((rate) => round(rate)).join(' '), '/s'),
    metric(`RSS at the end of each ${unit}`, periods.map((p) => round(p.rssMb, 0)).join(' '), 'MB'),
  ];
  if (periods.length >= 2) {
    const first = periods[0];
    const last = periods.at(-1);
    // From the middle on: the caps are reached early, so what still grows there is a leak.
    const middle = Math.floor((periods.length - 1) / 2);
    const rssGrowth =
      (last.rssMb - periods[middle].rssMb) / (((periods.length - 1 - middle) * periodMs) / 60_000);
    rows.push(
      metric(`cycles per second, last ${unit} / first`, round(rates.at(-1) / rates[0], 2), '×', {
        op: '>=',
        value: 0.8,
      }),
      metric(`RSS, end of last ${unit} / end of first`, round(last.rssMb / first.rssMb, 2), '×'),
      metric(`RSS growth per minute, from the middle ${unit} to the last`, round(rssGrowth, 1), 'MB/min'),
    );
  }
  rows.push(metric('sessions retained at the end (open + closed)', retained, 'sessions'));
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [SHARED], opts, {}, plan(opts.quick).durationMs + 120_000);
}

childMain(import.meta.url, SCENARIO, measure);
