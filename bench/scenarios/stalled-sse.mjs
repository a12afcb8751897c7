/**
 * Server memory with SSE clients that never read (issue 14, item 7). The embedded gateway (worker
 * host, default settings) serves one session with 10 processes, each printing a 4 KiB line every
 * 100 ms; 200 clients open `GET /v1/stream` on it and, for DURATION seconds, either read everything
 * (the baseline) or read nothing (a paused response: backpressure reaches the socket). Each kind of
 * client runs in its own child process (the "host" column names it), so RSS is compared from the
 * same start. Reported: RSS growth (peak during the run, and at its end after a GC), the peak of
 * bytes the server held unsent for all streams together (`stats().http.streamBufferedBytes`), and
 * how many clients the server dropped for falling behind (`stream.stallTimeoutMs`, 10 s).
 *
 * The clients live in the measured process too (a paused `node:http` response holds at most its
 * 16 KiB high-water mark). A stalled loopback connection absorbs about 4 MB in the kernel's socket
 * buffers before the server sees backpressure (kernel memory, not the process's RSS); at the ~64 KB/s
 * of coalesced output a client gets here, that takes about a minute. So the full run lasts 90 s
 * (backpressure, then drops after `stallTimeoutMs`); `--quick` (20 s) shows only the kernel's part.
 */
import { get } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway } from '../../packages/gateway-plugin/dist/index.js';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { mb, pooled, round, snapshot } from '../lib/measure.mjs';

const SCENARIO = 'stalled-sse';
const READING = '200 reading clients';
const STALLED = '200 stalled clients';
const CLIENTS = 200;
const PRINTERS = 10;
const TOKEN = 'bench-stalled-token-0123456789abcdef';
const PRINTER = `line=$(printf '%4096s' '' | tr ' ' x); while :; do echo "$line"; sleep 0.1; done`;

/** Opens a stream; a stalled client pauses its response, a reading one consumes it. */
function openStream(url, stalled) {
  return new Promise((resolve, reject) => {
    const req = get(
      `${url}/v1/stream?sessions=bench`,
      { headers: { authorization: `Bearer ${TOKEN}` } },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`stream: HTTP ${res.statusCode}`));
        if (stalled) res.pause();
        else res.resume();
        res.on('error', () => {});
        resolve(req);
      },
    );
    req.on('error', reject);
  });
}

/** @param {string} kind @param {{ quick: boolean }} opts */
export async function measure(kind, { quick }) {
  const seconds = quick ? 20 : 90;
  const gateway = await startGateway({ port: 0, token: TOKEN });
  const { vigil } = gateway.plugin;
  const requests = [];
  try {
    await vigil.sessions.open('bench');
    for (let i = 0; i < PRINTERS; i++) vigil.processes.spawn({ sessionId: 'bench', command: PRINTER });
    await pooled(CLIENTS, 20, async () => requests.push(await openStream(gateway.url, kind === STALLED)));
    const before = await snapshot();
    let peakRss = process.memoryUsage.rss();
    let peakBuffered = 0;
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
      await sleep(250);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      peakBuffered = Math.max(peakBuffered, gateway.handler.stats().streamBufferedBytes);
    }
    const after = await snapshot();
    const { streamsDropped, streams } = gateway.handler.stats();
    return [
      metric(
        `RSS growth over ${seconds} s, peak / at the end (after GC)`,
        `${round(mb(peakRss) - before.rssMb)} / ${round(after.rssMb - before.rssMb)}`,
        'MB',
      ),
      metric('bytes held unsent for all streams, peak', round(peakBuffered / 1024), 'KiB'),
      metric('clients dropped for falling behind / streams still open', `${streamsDropped} / ${streams}`, ''),
    ];
  } finally {
    for (const req of requests) req.destroy();
    await gateway.close();
  }
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [READING, STALLED], opts);
}

childMain(import.meta.url, SCENARIO, measure);
