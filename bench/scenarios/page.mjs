/**
 * The web page at scale, measured by headless Chromium itself (`/usr/bin/chromium`): time to
 * interactive (navigation → the connection is live and the first page of sessions is drawn, the
 * first session with every one of its processes) and the main thread's longest task
 * (PerformanceObserver 'longtask', tasks over 50 ms; 0 when there was none) and longest gap
 * between animation frames, up to that point. Side by side: a baseline of 10 sessions and 50
 * processes, and 1,000 sessions and 5,000 processes (the first session ran a tenth of them; every
 * process is a real `true` that exited, its completion delivered). Each size runs in its own child
 * process on the worker host (shared threads) through `startGateway`; the harness is the one
 * `test/web.test.ts` uses (test/support/page-scale.mjs).
 */
import { existsSync } from 'node:fs';
import {
  launchChromium,
  measured,
  openMeasuredPage,
  startScaledGateway,
} from '../../test/support/page-scale.mjs';
import { childMain, metric, runHosts } from '../lib/child.mjs';

const SCENARIO = 'page';
const SIZES = {
  '10 sessions / 50 processes': { sessions: 10, processes: 50 },
  '1,000 sessions / 5,000 processes': { sessions: 1000, processes: 5000 },
};
/** Sessions on the first page of the list (web/app.js). */
const SESSION_PAGE = 24;

async function measure(host) {
  const size = SIZES[host];
  if (size === undefined) throw new Error(`unknown size ${host}`);
  const filling = performance.now();
  const { gateway } = await startScaledGateway(size);
  const fillMs = performance.now() - filling;
  const browser = await launchChromium();
  try {
    const { page, polls } = await openMeasuredPage(browser.context, gateway, {
      shown: Math.min(SESSION_PAGE, size.sessions),
      heavy: size.processes / 10,
    });
    const { timeToInteractiveMs, longestTaskMs, longTasks, longestFrameGapMs } = await measured(page);
    return [
      metric(
        'time to interactive (navigation → first page of sessions drawn, live)',
        timeToInteractiveMs,
        'ms',
      ),
      metric(
        'longest task until interactive (long tasks > 50 ms: count)',
        longestTaskMs,
        `ms (${longTasks})`,
      ),
      metric('longest gap between animation frames until interactive', longestFrameGapMs, 'ms'),
      metric('/poll requests until interactive (every process exited)', polls.length, 'requests', {
        op: '==',
        value: 0,
      }),
      metric('filling the gateway (sessions opened, processes spawned and exited)', Math.round(fillMs), 'ms'),
    ];
  } finally {
    await browser.close();
    await gateway.close();
  }
}

export async function run({ quick }) {
  if (!existsSync('/usr/bin/chromium'))
    throw new Error('/usr/bin/chromium is missing (apt-get install chromium)');
  return runHosts(import.meta.url, SCENARIO, Object.keys(SIZES), { quick });
}

childMain(import.meta.url, SCENARIO, measure);
