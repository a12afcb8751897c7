/**
 * Throughput: MB/s of one process's output through 10 watch patterns (5 substrings, 5 regexes, one
 * with a flag), with the main thread's event-loop delay while streaming. The child cats a 10 MB
 * block of realistic ~100-byte log lines (one FATAL line per 10,000) N times; the time runs from
 * spawn to `process:exited`, which vigil emits only after the poller drained (matched) all output.
 */
import { execFileSync, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, HOSTS, IN_THREAD } from '../lib/hosts.mjs';
import { round, within } from '../lib/measure.mjs';

const SCENARIO = 'throughput';
const LINES_PER_BLOCK = 100_000;
const MATCH_EVERY = 10_000;
const LINE_BYTES = 100;
/** A 10 MB block, then this pause: about 100 MB/s offered. */
const PACE_SLEEP_S = 0.085;
const DEFAULT_RING_BYTES = 1 << 20;

const PATTERNS = [
  'FATAL',
  'panic:',
  'Traceback (most recent call last)',
  'OutOfMemoryError',
  'Segmentation fault',
  { regex: 'ERROR\\s+\\[\\d{3}\\]' },
  { regex: 'timed? ?out after \\d+ ?ms', flags: 'i' },
  { regex: 'exit(ed)? with code [1-9]' },
  { regex: '\\bFAIL(ED)?\\b' },
  { regex: 'assert(ion)? failed' },
];

const OPTIONS = {
  watch: { cooldownMs: 0, lifetimeMaxHits: 1_000_000, breaker: { maxMatches: 1_000_000 } },
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

/** The event-loop delay and delivered-lines rows of one stream. */
function eldRows(tag, result, expected, targets) {
  return [
    metric(
      `  ${tag}: main-thread event-loop delay p99`,
      result.eldP99,
      'ms',
      targets ? { op: '<', value: 20 } : undefined,
    ),
    metric(`  ${tag}: main-thread event-loop delay max`, result.eldMax, 'ms'),
    metric(`  ${tag}: matching lines delivered (of ${expected})`, result.matchedLines, 'lines', {
      op: '==',
      value: expected,
    }),
  ];
}

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
 * Streams `command` through one watched process on a fresh vigil with `bufferBytes` of output
 * retained per process; returns the rate, the event-loop delay and the matching lines delivered.
 */
async function stream(host, bufferBytes, command) {
  let matchedLines = 0;
  const deliver = (notification) => {
    if (notification.type === 'watch_match') matchedLines += notification.data.lines.length;
  };
  const options = { ...OPTIONS, output: { bufferBytes } };
  const { vigil } = createBenchVigil(host, { options });
  try {
    await vigil.sessions.open('throughput', { deliver });
    const eld = monitorEventLoopDelay({ resolution: 10 });
    let exited;
    const done = new Promise((resolve) => {
      exited = resolve;
    });
    let processId;
    const off = vigil.on('process:exited', (info) => {
      if (info.processId === processId) exited(info);
    });
    eld.enable();
    const started = performance.now();
    processId = vigil.processes.spawn({ sessionId: 'throughput', command, watch: PATTERNS }).processId;
    const info = await within(done, 120_000, 'the streaming process');
    const seconds = (performance.now() - started) / 1000;
    eld.disable();
    off();
    const deadline = Date.now() + 10_000;
    while (vigil.stats().outboxDepth > 0 && Date.now() < deadline) await sleep(10);
    return {
      bytes: info.outputBytes,
      seconds,
      eldP99: round(eld.percentile(99) / 1e6, 2),
      eldMax: round(eld.max / 1e6, 2),
      matchedLines,
    };
  } finally {
    await vigil.close();
  }
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
  const worker = host !== IN_THREAD;
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
      metric('reference: node reads the pipe, no vigil', mbps(plain.bytes, plain.seconds), 'MB/s'),
    );
    // Unpaced, with the default ring (1 MiB): backpressure pauses the child whenever the poller is
    // behind, so this is the rate at which vigil really matches, with nothing skipped.
    const label = (what) => `${what}: spawn → process:exited`;
    const unpaced = await stream(host, DEFAULT_RING_BYTES, command);
    rows.push(
      metric(
        label('unpaced, default bufferBytes (1 MiB)'),
        mbps(unpaced.bytes, unpaced.seconds),
        'MB/s',
        worker ? { op: '>=', value: 100 } : undefined,
      ),
      ...eldRows('unpaced', unpaced, expected, worker),
    );
    // Paced at ~100 MB/s offered: the event-loop delay while streaming at the target rate.
    const paced = generator(file, blocks, PACE_SLEEP_S);
    started = performance.now();
    execFileSync('/bin/sh', ['-c', `${paced} | cat > /dev/null`]);
    const offered = mbps(totalBytes, (performance.now() - started) / 1000);
    const steady = await stream(host, DEFAULT_RING_BYTES, paced);
    rows.push(
      metric(
        label(`paced (${offered} MB/s offered), default bufferBytes`),
        mbps(steady.bytes, steady.seconds),
        'MB/s',
      ),
      ...eldRows('paced', steady, expected, worker),
    );
    // Reference: a ring that holds the whole output, so backpressure never engages (its growth
    // copies show in the event-loop delay).
    const ringBytes = 2 ** Math.ceil(Math.log2(totalBytes));
    const full = await stream(host, ringBytes, command);
    rows.push(
      metric(
        label(`reference: unpaced, bufferBytes ${ringBytes >> 20} MiB (≥ output)`),
        mbps(full.bytes, full.seconds),
        'MB/s',
      ),
      ...eldRows('reference', full, expected, false),
    );
  } finally {
    rmSync(file, { force: true });
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts);
}

childMain(import.meta.url, SCENARIO, measure);
