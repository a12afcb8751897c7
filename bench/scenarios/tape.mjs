/**
 * The session tape (a main-thread structure, the same for every host, so it runs once): appends
 * per second, read throughput with 100 concurrent long-poll readers while a writer appends in
 * bursts, and the latency from an append to a waiting reader's wake-up. `Tape` is not part of the
 * public API, so it is imported from the core package's dist output directly.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { Tape } from '../../packages/core/dist/journal/tape.js';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { percentile, round, within } from '../lib/measure.mjs';

const SCENARIO = 'tape';
const HOST = 'main thread (Tape)';
const READERS = 100;
const BURST = 100;
/** The vigil defaults (`tape` section of the config). */
const DEFAULTS = {
  maxEvents: 10_000,
  maxBytes: 8 << 20,
  defaultLimit: 100,
  maxLimit: 1000,
  maxWaitMs: 60_000,
};

const data = (i) => ({ lines: [`HIT ${i}`], pattern: 'HIT', offset: i * 8, suppressed: 0, hit: i });
const ms = (ns) => Number(ns) / 1e6;

function appendRate(count) {
  const tape = new Tape('bench-append', DEFAULTS);
  const started = performance.now();
  for (let i = 0; i < count; i++) tape.append('watch.match', data(i), { processId: 'proc_bench' });
  return (count * 1000) / (performance.now() - started);
}

/** 100 readers long-poll the same tape while `count` events are appended in bursts. */
async function readThroughput(count) {
  const tape = new Tape('bench-read', { ...DEFAULTS, maxEvents: count + 10, maxBytes: 1 << 30 });
  let delivered = 0;
  let reads = 0;
  let resets = 0;
  const reader = async () => {
    let after = 0;
    while (after < count) {
      const page = await tape.read({ after, limit: DEFAULTS.maxLimit, waitMs: 60_000 });
      reads++;
      if (page.reset) resets++;
      delivered += page.events.length;
      after = page.next;
    }
  };
  const readers = Array.from({ length: READERS }, reader);
  await tick(); // every reader is waiting
  const started = performance.now();
  for (let i = 0; i < count; i += BURST) {
    for (let j = i; j < Math.min(count, i + BURST); j++) {
      tape.append('watch.match', data(j), { processId: 'proc_bench' });
    }
    await tick();
  }
  await within(Promise.all(readers), 60_000, 'the readers');
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: delivered / seconds, delivered, reads, resets, seconds };
}

/** Append → wake-up of `waiting` readers (time until all of them resolved), `samples` times. */
async function wakeLatency(samples, waiting) {
  const tape = new Tape(`bench-wake-${waiting}`, DEFAULTS);
  const times = [];
  for (let i = 0; i < samples; i++) {
    const after = tape.lastSeq;
    const reads = Array.from({ length: waiting }, () => tape.read({ after, waitMs: 60_000 }));
    await tick(); // the reads are registered synchronously; let the loop turn as a real caller's would
    const sent = process.hrtime.bigint();
    tape.append('watch.match', data(i), { processId: 'proc_bench' });
    await Promise.all(reads);
    times.push(ms(process.hrtime.bigint() - sent));
  }
  return times;
}

/** @param {string} _host @param {{ quick: boolean }} opts */
export async function measure(_host, { quick }) {
  const appends = quick ? 200_000 : 1_000_000;
  const events = quick ? 20_000 : 100_000;
  const samples = quick ? 1000 : 5000;
  const rate = appendRate(appends);
  const read = await readThroughput(events);
  const one = await wakeLatency(samples, 1);
  const many = await wakeLatency(quick ? 200 : 1000, READERS);
  return [
    metric(`appends/s (${appends.toLocaleString('en')} appends, default retention)`, Math.round(rate), '/s'),
    metric(
      `events delivered to ${READERS} long-poll readers/s (${events.toLocaleString('en')} appended in bursts of ${BURST})`,
      Math.round(read.perSecond),
      '/s',
    ),
    metric('  events delivered in total', read.delivered, 'events', { op: '==', value: events * READERS }),
    metric('  reads (pages) served', read.reads, 'reads'),
    metric('  reset answers', read.resets, 'reads', { op: '==', value: 0 }),
    metric(
      `append → waiting reader woken, p50 (${samples} samples)`,
      round(percentile(one, 50) * 1000),
      'µs',
    ),
    metric('append → waiting reader woken, p99', round(percentile(one, 99) * 1000), 'µs'),
    metric(`append → all ${READERS} waiting readers woken, p50`, round(percentile(many, 50) * 1000), 'µs'),
    metric(`append → all ${READERS} waiting readers woken, p99`, round(percentile(many, 99) * 1000), 'µs'),
  ];
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [HOST], opts);
}

childMain(import.meta.url, SCENARIO, measure);
