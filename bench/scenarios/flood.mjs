/**
 * Flood: a child that prints as fast as it can (`yes` of a 100-byte log line through `head -c`),
 * and what vigil costs it. The child times itself (its own clock, from before `yes` to after
 * `head`), so the figure is the child's run time and nothing of vigil's bookkeeping after it. The
 * same child runs watched (10 patterns, none matching), unwatched, and with no vigil at all (its
 * output to a plain file). Meanwhile this process's RSS is sampled every 20 ms: with output spooled
 * to disk and read in bounded batches it should not grow with the output. vigil's default spool cap
 * applies (64 MiB): what the poller had not read when the middle was dropped is not scanned, and
 * the rows say how much that was. The targets are for the worker hosts; the in-thread host, which
 * matches on the main thread, is there to compare.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, HOSTS, IN_THREAD } from '../lib/hosts.mjs';
import { mb, round, snapshot, within } from '../lib/measure.mjs';
import { TEN_PATTERNS } from '../lib/patterns.mjs';

const SCENARIO = 'flood';
const LINE =
  '2024-05-01T12:00:00.000Z INFO  worker-3 GET /api/v1/items/0001234 status=200 dur=12ms ............';

/** The flooding child: writes `bytes` bytes, then its own run time in ns to `timing`. */
const flood = (bytes, timing) =>
  `s=$(date +%s%N); yes '${LINE}' | head -c ${bytes}; e=$(date +%s%N); echo $((e - s)) > '${timing}'`;

/** Samples this process's RSS every 20 ms until stopped; returns the peak in bytes. */
function rssSampler() {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage.rss());
  };
}

/** Runs the flood under vigil (watched or not); returns the child's own seconds and the RSS peak growth (MB). */
async function underVigil(host, bytes, dir, watch) {
  const timing = join(dir, `timing-${watch ? 'watched' : 'plain'}-${bytes}`);
  const { vigil } = createBenchVigil(host);
  try {
    await vigil.sessions.open('flood');
    const before = await snapshot();
    const stop = rssSampler();
    const exited = new Promise((resolve) => {
      const off = vigil.on('process:exited', (info) => {
        off();
        resolve(info);
      });
    });
    vigil.processes.spawn({
      sessionId: 'flood',
      command: flood(bytes, timing),
      ...(watch ? { watch: TEN_PATTERNS } : {}),
    });
    const info = await within(exited, 120_000, 'the flooding child');
    const peak = stop();
    if (info.exitCode !== 0) throw new Error(`the flooding child exited with ${info.exitCode}`);
    return {
      seconds: Number(readFileSync(timing, 'utf8')) / 1e9,
      rssGrowthMb: mb(peak) - before.rssMb,
      droppedMb: info.outputDropped / 1e6,
    };
  } finally {
    await vigil.close();
  }
}

/** The same child with no vigil: output to a plain file. */
async function alone(bytes, dir) {
  const timing = join(dir, `timing-alone-${bytes}`);
  const fd = openSync(join(dir, 'alone.out'), 'w');
  try {
    const child = spawn('/bin/sh', ['-c', flood(bytes, timing)], { stdio: ['ignore', fd, fd] });
    await within(new Promise((resolve) => child.on('close', resolve)), 120_000, 'the child alone');
  } finally {
    closeSync(fd);
    rmSync(join(dir, 'alone.out'), { force: true });
  }
  return Number(readFileSync(timing, 'utf8')) / 1e9;
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const big = quick ? 100_000_000 : 500_000_000;
  const small = big / 5;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-flood-'));
  const target = (goal) => (host === IN_THREAD ? undefined : goal);
  const rows = [];
  try {
    const bigMb = big / 1e6;
    // Run times are the median of three, the three kinds taking turns.
    const bares = [];
    const plains = [];
    const watcheds = [];
    for (let i = 0; i < 3; i++) {
      bares.push(await alone(big, dir));
      plains.push(await underVigil(host, big, dir, false));
      watcheds.push(await underVigil(host, big, dir, true));
    }
    const median = (values) => [...values].sort((a, b) => a - b)[1];
    const bare = median(bares);
    const plain = { seconds: median(plains.map((run) => run.seconds)) };
    const watched = {
      seconds: median(watcheds.map((run) => run.seconds)),
      rssGrowthMb: Math.max(...watcheds.map((run) => run.rssGrowthMb)),
      droppedMb: watcheds[0].droppedMb,
    };
    const smaller = await underVigil(host, small, dir, true);
    rows.push(
      metric(`child's run time, ${bigMb} MB, no vigil (output to a file), median of 3`, round(bare, 2), 's'),
      metric(`child's run time, ${bigMb} MB, under vigil, unwatched`, round(plain.seconds, 2), 's'),
      metric(
        `child's run time, ${bigMb} MB, under vigil, watched (10 patterns)`,
        round(watched.seconds, 2),
        's',
      ),
      metric(
        'watched / unwatched run time',
        round(watched.seconds / plain.seconds, 2),
        '×',
        target({ op: '<=', value: 1.1 }),
      ),
      metric(
        `of the ${bigMb} MB, dropped from the middle to hold the spool cap (watched)`,
        round(watched.droppedMb),
        'MB',
      ),
      metric(
        `RSS peak growth while the child prints ${small / 1e6} MB, watched`,
        round(smaller.rssGrowthMb),
        'MB',
      ),
      metric(`RSS peak growth while the child prints ${bigMb} MB, watched`, round(watched.rssGrowthMb), 'MB'),
      metric(
        `RSS growth per extra MB of output (${small / 1e6} → ${bigMb} MB)`,
        round(Math.max(0, watched.rssGrowthMb - smaller.rssGrowthMb) / ((big - small) / 1e6), 3),
        'MB/MB',
        target({ op: '<', value: 0.01 }),
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts);
}

childMain(import.meta.url, SCENARIO, measure);
