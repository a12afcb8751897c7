/**
 * Throughput: MB/s of one process's output through 10 watch patterns (5 substrings, 5 regexes, one
 * with a flag), and what it costs the main thread: its busy time per MB (event-loop utilisation,
 * `performance.eventLoopUtilization()`) and its event-loop delay at 1 ms resolution. The child cats a
 * 10 MB block of realistic 100-byte log lines (one FATAL line per 10,000) N times into its spool;
 * the time runs from spawn to `process:exited`, which vigil emits only after the poller matched
 * every byte. References: the generator alone, and Node reading the same output from a pipe.
 */
import { execFileSync, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, HOSTS, IN_THREAD, SHARED } from '../lib/hosts.mjs';
import { round, within } from '../lib/measure.mjs';
import { TEN_PATTERNS } from '../lib/patterns.mjs';

const SCENARIO = 'throughput';
const LINES_PER_BLOCK = 100_000;
const MATCH_EVERY = 10_000;
const LINE_BYTES = 100;
/** A 10 MB block, then this pause: about 100 MB/s offered. */
const PACE_SLEEP_S = 0.085;
const UNPACED = 'unpaced: spawn → process:exited';
const BUSY = 'unpaced: main-thread busy per MB (event-loop utilisation)';

const OPTIONS = {
  watch: { cooldownMs: 0, lifetimeMaxHits: 1_000_000, breaker: { maxMatches: 1_000_000 } },
  output: { maxBytes: 1 << 30 },
};

/** A 10 MB block: 100,000 lines of 100 bytes, every 10,000th a FATAL line. */
function writeBlock(file) {
  const lines = [];
  for (let i = 0; i < LINES_PER_BLOCK; i++) {
    const text =
      i % MATCH_EVERY === MATCH_EVERY / 2
        ? `2024-05-01T12:00:00.000Z FATAL worker-3 database connection lost (line ${i}), shutting down`
        : `2024-05-01T12:00:${String(i % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}Z INFO  worker-${i % 8} GET /api/v1/items/${String(i).padStart(7, '0')} status=200 dur=${i % 97}ms`;
    lines.push(`${text.padEnd(LINE_BYTES - 1, '.').slice(0, LINE_BYTES - 1)}\n`);
  }
  writeFileSync(file, lines.join(''));
}

/** `blocks` times the block file, with `sleepS` seconds after each block when given (pacing). */
const generator = (file, blocks, sleepS) =>
  `i=0; while [ $i -lt ${blocks} ]; do cat '${file}';${sleepS === undefined ? '' : ` sleep ${sleepS};`} i=$((i+1)); done`;

/** Node reading the generator's pipe and discarding it: the ceiling without vigil. */
function nodePipeOnly(command) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'inherit'] });
    let bytes = 0;
    child.stdout.on('data', (chunk) => {
      bytes += chunk.length;
    });
    child.on('error', reject);
    child.on('close', () => resolve({ bytes, seconds: (performance.now() - started) / 1000 }));
  });
}

/**
 * Streams `command` through one watched process on a fresh vigil; returns the rate, the main
 * thread's busy time and event-loop delay meanwhile, and the matching lines delivered.
 */
async function stream(host, command) {
  let matchedLines = 0;
  const deliver = (notification) => {
    if (notification.type === 'watch_match') matchedLines += notification.data.lines.length;
  };
  const { vigil } = createBenchVigil(host, { options: OPTIONS });
  try {
    await vigil.sessions.open('throughput', { deliver });
    const eld = monitorEventLoopDelay({ resolution: 1 });
    let exited;
    const done = new Promise((resolve) => {
      exited = resolve;
    });
    let processId;
    const off = vigil.on('process:exited', (info) => {
      if (info.processId === processId) exited(info);
    });
    eld.enable();
    const elu = performance.eventLoopUtilization();
    const started = performance.now();
    processId = vigil.processes.spawn({ sessionId: 'throughput', command, watch: TEN_PATTERNS }).processId;
    const info = await within(done, 120_000, 'the streaming process');
    const seconds = (performance.now() - started) / 1000;
    const busy = performance.eventLoopUtilization(elu);
    eld.disable();
    off();
    const deadline = Date.now() + 10_000;
    while (vigil.stats().outboxDepth > 0 && Date.now() < deadline) await sleep(10);
    return {
      bytes: info.outputBytes,
      seconds,
      busyMsPerMb: busy.active / (info.outputBytes / 1e6),
      eldP99: round(eld.percentile(99) / 1e6, 2),
      eldMax: round(eld.max / 1e6, 2),
      matchedLines,
    };
  } finally {
    await vigil.close();
  }
}

/** The main-thread and delivery rows of one stream. */
function costRows(tag, result, expected) {
  return [
    metric(`${tag}: main-thread busy per MB (event-loop utilisation)`, round(result.busyMsPerMb, 3), 'ms/MB'),
    metric(`${tag}: main-thread event-loop delay p99 (1 ms resolution)`, result.eldP99, 'ms'),
    metric(`${tag}: main-thread event-loop delay max`, result.eldMax, 'ms'),
    metric(`${tag}: matching lines delivered (of ${expected})`, result.matchedLines, 'lines', {
      op: '==',
      value: expected,
    }),
  ];
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const blocks = quick ? 3 : 20;
  const file = join(tmpdir(), `vigil-bench-throughput-${process.pid}.log`);
  writeBlock(file);
  const command = generator(file, blocks);
  const totalBytes = blocks * LINES_PER_BLOCK * LINE_BYTES;
  const totalMb = totalBytes / 1e6;
  const expected = blocks * (LINES_PER_BLOCK / MATCH_EVERY);
  const mbps = (bytes, seconds) => round(bytes / 1e6 / seconds);
  const rows = [];
  try {
    // References: the generator alone, and node reading its pipe with no vigil involved.
    let started = performance.now();
    execFileSync('/bin/sh', ['-c', `${command} | cat > /dev/null`]);
    const alone = (performance.now() - started) / 1000;
    const plain = await nodePipeOnly(command);
    rows.push(
      metric(
        `reference: generator alone (| cat > /dev/null, ${totalMb} MB)`,
        mbps(totalBytes, alone),
        'MB/s',
      ),
      metric(
        'reference: node reads the same output from a pipe, no vigil',
        mbps(plain.bytes, plain.seconds),
        'MB/s',
      ),
    );
    // A short stream first, so that the measured ones see warm code rather than the one-time cost
    // of compiling vigil's main-thread paths (about 25 ms, which would read as 0.1 ms per MB).
    await stream(host, generator(file, 1));
    const unpaced = await stream(host, command);
    rows.push(
      metric(UNPACED, mbps(unpaced.bytes, unpaced.seconds), 'MB/s'),
      ...costRows('unpaced', unpaced, expected),
    );
    // Paced at ~100 MB/s offered: the cost at a rate a busy build can reach.
    const paced = generator(file, blocks, PACE_SLEEP_S);
    started = performance.now();
    execFileSync('/bin/sh', ['-c', `${paced} | cat > /dev/null`]);
    const offered = mbps(totalBytes, (performance.now() - started) / 1000);
    const steady = await stream(host, paced);
    rows.push(
      metric(
        `paced (${offered} MB/s offered): spawn → process:exited`,
        mbps(steady.bytes, steady.seconds),
        'MB/s',
      ),
      ...costRows('paced', steady, expected),
    );
  } finally {
    rmSync(file, { force: true });
  }
  return rows;
}

/** The worker host against the in-thread host, from the rows of both. */
function comparisons(rows) {
  const value = (host, metricName) =>
    rows.find((row) => row.host === host && row.metric === metricName)?.value;
  const rate = value(SHARED, UNPACED) / value(IN_THREAD, UNPACED);
  const busy = value(SHARED, BUSY) / value(IN_THREAD, BUSY);
  const host = `${SHARED} / ${IN_THREAD}`;
  return [
    {
      scenario: SCENARIO,
      host,
      ...metric('throughput ratio (unpaced)', round(rate, 2), '×', { op: '>=', value: 1.5 }),
    },
    {
      scenario: SCENARIO,
      host,
      ...metric('main-thread busy per MB ratio (unpaced)', round(busy, 3), '×', { op: '<=', value: 0.1 }),
    },
  ];
}

/** @param {{ quick: boolean }} opts */
export async function run(opts) {
  const rows = await runHosts(import.meta.url, SCENARIO, HOSTS, opts);
  return [...rows, ...comparisons(rows)];
}

childMain(import.meta.url, SCENARIO, measure);
