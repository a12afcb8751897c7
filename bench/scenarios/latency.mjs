/**
 * Latency: a matching line written by a child → `deliver` called. One session, one Node child
 * watched for 'PING' that writes `PING <i> <hrtime>` every 2 ms, stamping the monotonic clock (the
 * same clock in every process) right before each write; `deliver` takes the difference. Lines come
 * while vigil is otherwise idle, as a build's error line does. References, with no vigil: the same
 * child's lines read by a bare worker thread woken by inotify (`fs.watch`, what the pollers use)
 * and by one that polls the file every millisecond, each posting the stamp to the main thread.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, HOSTS, IN_THREAD, SHARED } from '../lib/hosts.mjs';
import { percentile, round, within } from '../lib/measure.mjs';
import { pinger } from '../lib/pinger.mjs';

const SCENARIO = 'latency';
/** Samples before this index warm the code paths and are not counted. */
const WARM_UP = 100;
const INTERVAL_MS = 2;
/** Rate limits out of the way: every match is delivered. */
const OPTIONS = {
  watch: { cooldownMs: 0, lifetimeMaxHits: 1_000_000, breaker: { maxMatches: 1_000_000 } },
};

/** A bare reader of a spool, in a worker thread: posts `[index, stamp]` of each PING line it reads. */
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const fd = fs.openSync(workerData.file, 'r');
const buffer = Buffer.alloc(65536);
let position = 0;
function drain() {
  for (;;) {
    const read = fs.readSync(fd, buffer, 0, buffer.length, position);
    if (read === 0) return;
    position += read;
    for (const found of buffer.toString('utf8', 0, read).matchAll(/PING (\\d+) (\\d+)/g)) parentPort.postMessage([found[1], found[2]]);
  }
}
if (workerData.wake === 'inotify') fs.watch(workerData.file, drain);
else setInterval(drain, 1);
parentPort.postMessage('ready');`;

/** Collects the latency of each stamped line after the warm-up; resolves once all `count` came. */
function collector(count) {
  const times = [];
  let seen = 0;
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const record = (index, stamp, at) => {
    if (Number(index) >= WARM_UP) times.push(Number(at - BigInt(stamp)) / 1e6);
    if (++seen === count) done(times);
  };
  return { all, record };
}

/** Percentile rows of `times` (ms). */
function latencyRows(label, times, target) {
  return [
    metric(`${label} p50`, round(percentile(times, 50), 3), 'ms'),
    metric(`${label} p99`, round(percentile(times, 99), 3), 'ms', target),
    metric(`${label} max`, round(Math.max(...times), 3), 'ms'),
  ];
}

/** The pinger writing to a file, read by a bare worker thread woken by `wake`: ms per line. */
async function bareReader(wake, count) {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-latency-'));
  const file = join(dir, 'out');
  const fd = openSync(file, 'a');
  const worker = new Worker(READER, { eval: true, workerData: { file, wake } });
  let child;
  try {
    await new Promise((resolve) => worker.once('message', resolve));
    const { all, record } = collector(count);
    worker.on('message', ([index, stamp]) => record(index, stamp, process.hrtime.bigint()));
    child = spawn('/bin/sh', ['-c', pinger(count, INTERVAL_MS)], { stdio: ['ignore', fd, 'inherit'] });
    return await within(all, 60_000, `${wake} reader`);
  } finally {
    closeSync(fd);
    child?.kill();
    await worker.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const samples = quick ? 500 : 2000;
  const count = WARM_UP + samples;
  const { all, record } = collector(count);
  const deliver = (notification) => {
    const at = process.hrtime.bigint();
    for (const line of notification.data.lines ?? []) {
      const found = /PING (\d+) (\d+)/.exec(line);
      if (found !== null) record(found[1], found[2], at);
    }
  };
  const { vigil } = createBenchVigil(host, { options: OPTIONS });
  const rows = [];
  try {
    await vigil.sessions.open('latency', { deliver });
    vigil.processes.spawn({ sessionId: 'latency', command: pinger(count, INTERVAL_MS), watch: ['PING'] });
    const times = await within(all, 60_000, 'the pinged lines');
    const target = host === IN_THREAD ? undefined : { op: '<', value: 1 };
    rows.push(
      ...latencyRows(`line written → deliver (${samples} lines, one per ${INTERVAL_MS} ms)`, times, target),
    );
  } finally {
    await vigil.close();
  }
  if (host === SHARED) {
    // How a reader learns of an append, without vigil: measured once, beside the shared host.
    rows.push(
      ...latencyRows(
        'reference: bare worker thread woken by inotify (fs.watch), line written → main thread',
        await bareReader('inotify', count),
      ),
      ...latencyRows(
        'reference: bare worker thread polling the file every 1 ms, line written → main thread',
        await bareReader('poll', count),
      ),
    );
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts);
}

childMain(import.meta.url, SCENARIO, measure);
