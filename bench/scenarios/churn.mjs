/**
 * Session churn: sequential `open(id); close(id)` cycles, then what is left over (threads,
 * MessagePorts, RSS) once the sessions are gone, then a concurrent variant, then `vigil.close()`.
 */
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, EXCLUSIVE, HOSTS } from '../lib/hosts.mjs';
import { pooled, round, snapshot } from '../lib/measure.mjs';

const SCENARIO = 'churn';
const IN_FLIGHT = 50;

/** Cycle counts. A thread per session costs ~130 ms per cycle here, so that host runs fewer. */
function plan(host, quick) {
  if (host === EXCLUSIVE) return quick ? { seq: 10, conc: 20 } : { seq: 200, conc: 100 };
  return quick ? { seq: 200, conc: 200 } : { seq: 2000, conc: 2000 };
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const { seq, conc } = plan(host, quick);
  const before = await snapshot();
  const { vigil } = createBenchVigil(host, { maxThreads: IN_FLIGHT + 10 });
  const rows = [];
  try {
    // The first open starts the pool; it is reported apart so the rate is the steady state.
    let started = performance.now();
    await vigil.sessions.open('warm-up');
    await vigil.sessions.close('warm-up');
    rows.push(
      metric(
        'first open+close (starts the pool, not in the rates)',
        round(performance.now() - started),
        'ms',
      ),
    );
    started = performance.now();
    for (let i = 0; i < seq; i++) {
      await vigil.sessions.open(`s${i}`);
      await vigil.sessions.close(`s${i}`);
    }
    const seqRate = (seq * 1000) / (performance.now() - started);
    const fewer = host === EXCLUSIVE && !quick ? ', not 2,000: each cycle starts a thread' : '';
    rows.push(
      metric(`open+close/s, sequential (${seq} cycles${fewer})`, round(seqRate), '/s', {
        op: '>=',
        value: 300,
      }),
    );

    const after = await snapshot();
    const poolThreads = vigil.stats().threads;
    const threads = after.threads - before.threads;
    rows.push(
      metric(`OS threads after ${seq} cycles (Δ before vigil)`, threads, 'threads'),
      metric('  of which not owned by the pool (Δ − stats().threads)', threads - poolThreads, 'threads', {
        op: '<=',
        value: 0,
      }),
      metric('vigil.stats().threads after cycles', poolThreads, 'threads'),
      metric(`MessagePorts after ${seq} cycles (Δ)`, after.ports - before.ports, 'ports', {
        op: '==',
        value: 0,
      }),
      metric(`RSS after ${seq} cycles (Δ)`, round(after.rssMb - before.rssMb), 'MB'),
      metric(
        'closed sessions retained (tape.closedRetentionMs, tape.maxClosedSessions)',
        vigil.sessions.list().length,
        'sessions',
      ),
    );

    started = performance.now();
    await pooled(conc, IN_FLIGHT, async (i) => {
      await vigil.sessions.open(`c${i}`);
      await vigil.sessions.close(`c${i}`);
    });
    const concRate = (conc * 1000) / (performance.now() - started);
    rows.push(metric(`open+close/s, ${IN_FLIGHT} in flight (${conc} cycles)`, round(concRate), '/s'));
  } finally {
    await vigil.close();
  }
  const closed = await snapshot();
  rows.push(
    metric('after vigil.close(): OS threads (Δ)', closed.threads - before.threads, 'threads', {
      op: '==',
      value: 0,
    }),
    metric('after vigil.close(): MessagePorts (Δ)', closed.ports - before.ports, 'ports', {
      op: '==',
      value: 0,
    }),
  );
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts);
}

childMain(import.meta.url, SCENARIO, measure);
