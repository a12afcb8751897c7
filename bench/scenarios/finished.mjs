/**
 * Finished processes: processes that each printed 1 MiB and exited, kept as finished (20 sessions,
 * within the per-session and total caps). Their output stays in the spool files on disk, so what a
 * finished process costs in memory is its bookkeeping, not its output. Measured in one vigil: RSS
 * (after a full GC) once half of them finished, then once all did; the difference, per process,
 * leaves out what any vigil that ran them costs once (its threads' heaps and read buffers).
 */
import { statSync } from 'node:fs';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, IN_THREAD, SHARED } from '../lib/hosts.mjs';
import { pooled, round, snapshot, within } from '../lib/measure.mjs';

const SCENARIO = 'finished';
const SESSIONS = 20;
const IN_FLIGHT = 8;
const OUTPUT_BYTES = 1 << 20;
const LINE =
  '2024-05-01T12:00:00.000Z INFO  worker-3 GET /api/v1/items/0001234 status=200 dur=12ms ............';

/** Runs processes `from..to-1`, each printing OUTPUT_BYTES, spread over the sessions. */
async function runProcesses(vigil, from, to) {
  const waiting = new Map();
  const off = vigil.on('process:exited', (info) => waiting.get(info.processId)?.(info));
  try {
    await pooled(to - from, IN_FLIGHT, async (i) => {
      let exited;
      const done = new Promise((resolve) => {
        exited = resolve;
      });
      const { processId } = vigil.processes.spawn({
        sessionId: `s${(from + i) % SESSIONS}`,
        command: `yes '${LINE}' | head -c ${OUTPUT_BYTES}`,
        watch: ['FATAL'],
      });
      waiting.set(processId, exited);
      const info = await within(done, 30_000, `process ${from + i}`);
      waiting.delete(processId);
      if (info.outputBytes !== OUTPUT_BYTES) {
        throw new Error(`process ${from + i} printed ${info.outputBytes} bytes, not ${OUTPUT_BYTES}`);
      }
    });
  } finally {
    off();
  }
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const count = quick ? 200 : 1000;
  const half = count / 2;
  const { vigil } = createBenchVigil(host);
  try {
    for (let s = 0; s < SESSIONS; s++) await vigil.sessions.open(`s${s}`);
    const before = await snapshot();
    await runProcesses(vigil, 0, half);
    const middle = await snapshot();
    await runProcesses(vigil, half, count);
    const after = await snapshot();
    const kept = vigil.processes.list();
    if (kept.length !== count) throw new Error(`${kept.length} processes kept, not ${count}`);
    const diskMib = kept.reduce((sum, info) => sum + statSync(info.outputPath).blocks * 512, 0) / (1 << 20);
    const perProcessKb = ((after.rssMb - middle.rssMb) * 1024) / (count - half);
    return [
      metric(`RSS growth, first ${half} finished (after GC)`, round(middle.rssMb - before.rssMb), 'MB'),
      metric(`RSS growth, all ${count} finished`, round(after.rssMb - before.rssMb), 'MB'),
      metric(`their output on disk (${count} × 1 MiB)`, round(diskMib), 'MiB'),
      metric(
        `RSS per further finished process (${half} → ${count}), of 1,024 KiB printed`,
        round(perProcessKb),
        'KiB',
        {
          op: '<',
          value: 64,
        },
      ),
    ];
  } finally {
    await vigil.close();
  }
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [SHARED, IN_THREAD], opts);
}

childMain(import.meta.url, SCENARIO, measure);
