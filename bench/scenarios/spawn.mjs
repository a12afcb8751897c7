/**
 * Spawn cost on the main thread as the process's memory grows. Node forks to spawn, and a fork
 * copies the forking process's page tables: its cost grows with RSS. The process is grown with
 * ballast (Buffers, every page touched) to each RSS level; at each level, one child at a time:
 *
 * - `child_process.spawn` as vigil's direct mode calls it (detached, stdin a pipe, output a file):
 *   the synchronous call, which includes the fork;
 * - `vigil.processes.spawn` with `processes.spawner: 'direct'` and `'helper'`: the synchronous call
 *   (validation, spool, tape events, and the fork or the message to the helper), and the main
 *   thread's busy time per process from spawn to `process:exited` (event-loop utilisation), which
 *   adds what the exit and the helper's reports cost.
 *
 * The ratio compares the largest RSS level with the first; flat is 1.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, SHARED } from '../lib/hosts.mjs';
import { mb, percentile, round } from '../lib/measure.mjs';

const SCENARIO = 'spawn';
const CHUNK = 64 << 20;

/** RSS levels in MB and spawns per measurement. */
function plan(quick) {
  return quick ? { levels: [0, 1024], spawns: 30 } : { levels: [0, 1024, 3072], spawns: 100 };
}

const rssMb = () => mb(process.memoryUsage().rss);

/** Grows RSS to `targetMb` with touched Buffers kept in `ballast`. */
function grow(ballast, targetMb) {
  while (rssMb() < targetMb) ballast.push(Buffer.alloc(CHUNK, 1));
}

/** Synchronous time of the bare `child_process.spawn` call, one child at a time. */
async function bareSpawn(count) {
  const output = openSync('/dev/null', 'a');
  const times = [];
  try {
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const child = spawn('/bin/sh', ['-c', 'true'], {
        detached: true,
        env: { ...process.env },
        stdio: ['pipe', output, output],
      });
      times.push(performance.now() - started);
      await new Promise((resolve) => child.once('exit', resolve));
    }
  } finally {
    closeSync(output);
  }
  return times;
}

/** `vigil.processes.spawn` of `true`, one at a time: the call's time and the main thread's busy time per process. */
async function vigilSpawn(vigil, count) {
  const sid = `spawn-${Math.random().toString(16).slice(2, 10)}`;
  await vigil.sessions.open(sid);
  const times = [];
  let exited;
  const off = vigil.on('process:exited', () => exited?.());
  let elu;
  // One warm-up spawn: the helper starts at the first.
  for (let i = -1; i < count; i++) {
    if (i === 0) elu = performance.eventLoopUtilization();
    const done = new Promise((resolve) => {
      exited = resolve;
    });
    const started = performance.now();
    vigil.processes.spawn({ sessionId: sid, command: 'true', notifyOnComplete: false });
    if (i >= 0) times.push(performance.now() - started);
    await done;
  }
  const used = performance.eventLoopUtilization(elu);
  off();
  await vigil.sessions.close(sid);
  return { times, busyPerSpawn: used.active / count };
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const { levels, spawns } = plan(quick);
  const ballast = [];
  const modes = ['direct', 'helper'];
  const vigils = Object.fromEntries(
    modes.map((mode) => [mode, createBenchVigil(host, { options: { processes: { spawner: mode } } }).vigil]),
  );
  const results = [];
  try {
    for (const level of levels) {
      grow(ballast, level);
      const rss = round(rssMb(), 0);
      const bare = await bareSpawn(spawns);
      const measured = { rss, bare };
      for (const mode of modes) measured[mode] = await vigilSpawn(vigils[mode], spawns);
      results.push(measured);
    }
  } finally {
    await Promise.all(Object.values(vigils).map((vigil) => vigil.close()));
    ballast.length = 0;
  }
  const rows = [];
  const describe = (label, pick) => {
    for (const at of results) {
      const times = pick(at);
      rows.push(
        metric(
          `${label} at RSS ${at.rss} MB, p50 / p99`,
          `${round(percentile(times, 50), 2)} / ${round(percentile(times, 99), 2)}`,
          'ms',
        ),
      );
    }
    const first = percentile(pick(results[0]), 50);
    const last = percentile(pick(results.at(-1)), 50);
    rows.push(
      metric(
        `${label}: p50 at ${results.at(-1).rss} MB / at ${results[0].rss} MB`,
        round(last / first, 2),
        '×',
      ),
    );
  };
  describe('child_process.spawn call (direct fork)', (at) => at.bare);
  describe("vigil.processes.spawn call, spawner 'direct'", (at) => at.direct.times);
  describe("vigil.processes.spawn call, spawner 'helper'", (at) => at.helper.times);
  for (const mode of modes) {
    for (const at of results) {
      rows.push(
        metric(
          `main thread busy per process (spawn → exit), spawner '${mode}', RSS ${at.rss} MB`,
          round(at[mode].busyPerSpawn, 2),
          'ms',
        ),
      );
    }
  }
  const helperRatio = results.at(-1).helper.busyPerSpawn / results[0].helper.busyPerSpawn;
  rows.push(
    metric(
      `main thread busy per process, spawner 'helper': ${results.at(-1).rss} MB / ${results[0].rss} MB`,
      round(helperRatio, 2),
      '×',
      { op: '<=', value: 1.5 },
    ),
  );
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [SHARED], opts);
}

childMain(import.meta.url, SCENARIO, measure);
