/**
 * Latency: a matching line written by a child → `deliver` called. One session, one long-running
 * echo child watching 'PING'; each sample writes `PING <i> <hrtime>` to its stdin and waits for the
 * notification before the next. The time includes the child echoing through two pipes, so a
 * pipe-only baseline (same child, no watch: write → `outputBytes` grows) shows what vigil adds.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, HOSTS, IN_THREAD } from '../lib/hosts.mjs';
import { percentile, round, within } from '../lib/measure.mjs';

const SCENARIO = 'latency';
const ECHO = 'while read line; do echo "$line"; done';
const WARM_UP = 20;
/** Rate limits out of the way: every match is delivered. */
const OPTIONS = {
  watch: { cooldownMs: 0, lifetimeMaxHits: 1_000_000, breaker: { maxMatches: 1_000_000 } },
};

const ms = (ns) => Number(ns) / 1e6;

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const samples = quick ? 500 : 2000;
  /** Resolvers of the sample waiting for its notification, by index. */
  const pending = new Map();
  const deliver = (notification) => {
    const arrived = process.hrtime.bigint();
    const line = notification.data.lines?.[0];
    const index = typeof line === 'string' ? /PING (\d+)/.exec(line)?.[1] : undefined;
    if (index !== undefined) pending.get(Number(index))?.(arrived);
  };
  const { vigil } = createBenchVigil(host, { options: OPTIONS });
  const rows = [];
  try {
    await vigil.sessions.open('latency', { deliver });
    const watched = vigil.processes.spawn({ sessionId: 'latency', command: ECHO, watch: ['PING'] });
    const times = [];
    for (let i = 0; i < WARM_UP + samples; i++) {
      const arrived = new Promise((resolve) => pending.set(i, resolve));
      const sent = process.hrtime.bigint();
      await vigil.processes.write(watched.processId, `PING ${i} ${sent}\n`);
      const at = await within(arrived, 5_000, `sample ${i}`);
      pending.delete(i);
      if (i >= WARM_UP) times.push(ms(at - sent));
    }

    // Baseline: the same child without watch patterns; time until its echo is in the buffer.
    const plain = vigil.processes.spawn({ sessionId: 'latency', command: ECHO });
    const pipe = [];
    for (let i = 0; i < WARM_UP + samples; i++) {
      const before = vigil.processes.poll(plain.processId).process.outputBytes;
      const sent = process.hrtime.bigint();
      await vigil.processes.write(plain.processId, `PONG ${i} ${sent}\n`);
      const deadline = Date.now() + 5_000;
      while (vigil.processes.poll(plain.processId).process.outputBytes <= before) {
        if (Date.now() > deadline) throw new Error(`pipe sample ${i}: no echo within 5 s`);
        await tick();
      }
      if (i >= WARM_UP) pipe.push(ms(process.hrtime.bigint() - sent));
    }

    const p50 = percentile(times, 50);
    const p99 = percentile(times, 99);
    const pipeP50 = percentile(pipe, 50);
    const pipeP99 = percentile(pipe, 99);
    const target = host === IN_THREAD ? undefined : { op: '<', value: 5 };
    rows.push(
      metric(`write → deliver p50 (${samples} samples)`, round(p50, 2), 'ms'),
      metric('write → deliver p99', round(p99, 2), 'ms', target),
      metric('write → deliver max', round(Math.max(...times), 2), 'ms'),
      metric('pipe-only baseline p50 (write → echo in buffer, no watch)', round(pipeP50, 2), 'ms'),
      metric('pipe-only baseline p99', round(pipeP99, 2), 'ms'),
      metric(
        'vigil adds over the pipe, p50 (p99s differ mostly by scheduling noise)',
        round(p50 - pipeP50, 2),
        'ms',
      ),
    );
  } finally {
    await vigil.close();
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts);
}

childMain(import.meta.url, SCENARIO, measure);
