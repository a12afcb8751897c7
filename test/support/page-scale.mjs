/**
 * The page at scale, shared by `test/web.test.ts` (what it shows) and `bench/scenarios/page.mjs`
 * (how fast): an embedded gateway filled with real sessions and real finished processes, headless
 * Chromium, and what the browser itself measures while the page loads.
 * Plain JavaScript, because the bench (not compiled) imports it too; types in page-scale.d.mts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startGateway } from '../../packages/gateway-plugin/dist/index.js';

/** The first session runs this share of the processes (one session that ran many, as in the issue). */
const HEAVY_SHARE = 10;
/** Spawns in flight at most: each spawn forks, on the gateway's main thread. */
const SPAWNING = 64;

/** The sessions' ids (`s-0000`, ...), in the order the page lists them. */
export function sessionIds(count) {
  return Array.from({ length: count }, (_, i) => `s-${String(i).padStart(4, '0')}`);
}

/** How many processes each session runs: the first a tenth of them, the others the rest in turn. */
export function processCounts(sessions, processes) {
  const counts = new Array(sessions).fill(0);
  const heavy = sessions === 1 ? processes : Math.floor(processes / HEAVY_SHARE);
  counts[0] = heavy;
  for (let k = 0; k < processes - heavy; k++) counts[1 + (k % (sessions - 1))]++;
  return counts;
}

/**
 * An embedded gateway (worker host) with `sessions` open sessions and `processes` processes that
 * ran `true` and exited (their completions delivered), with the process caps raised to hold them.
 */
export async function startScaledGateway({ sessions, processes }) {
  const gateway = await startGateway({
    port: 0,
    config: {
      processes: {
        maxPerSession: processes,
        maxTotal: processes,
        maxFinished: processes,
        maxFinishedPerSession: processes,
      },
    },
  });
  try {
    const vigil = gateway.plugin.vigil;
    const ids = sessionIds(sessions);
    for (let i = 0; i < ids.length; i += 100) {
      await Promise.all(
        ids.slice(i, i + 100).map((id) => gateway.plugin.hooks.sessionStart({ sessionId: id })),
      );
    }
    const counts = processCounts(sessions, processes);
    const owners = counts.flatMap((count, i) => new Array(count).fill(ids[i]));
    let exited = 0;
    let running = 0;
    let wake = () => {};
    const off = vigil.on('process:exited', () => {
      exited++;
      running--;
      wake();
    });
    try {
      for (const sessionId of owners) {
        while (running >= SPAWNING) await new Promise((resolve) => (wake = resolve));
        running++;
        vigil.processes.spawn({ sessionId, command: ['true'] });
      }
      while (exited < owners.length) await new Promise((resolve) => (wake = resolve));
    } finally {
      off();
    }
    return { gateway, ids, counts };
  } catch (error) {
    await gateway.close();
    throw error;
  }
}

/** Headless Chromium (`/usr/bin/chromium`) in a fresh profile; `close()` removes it. */
export async function launchChromium() {
  const profile = mkdtempSync(join(tmpdir(), 'vigil-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Runs in the page before its scripts: records long tasks (> 50 ms, PerformanceObserver), the
 * longest gap between animation frames, and when the page became interactive: the connection is
 * live and the first page of sessions is drawn, the first session with all its processes.
 */
function measureInPage({ shown, heavy }) {
  const measured = { interactiveAt: null, longTasks: [], longestFrameGap: 0 };
  window.__vigilMeasured = measured;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) measured.longTasks.push(entry.duration);
  }).observe({ type: 'longtask' });
  let last = performance.now();
  const frame = (now) => {
    measured.longestFrameGap = Math.max(measured.longestFrameGap, now - last);
    last = now;
    if (measured.interactiveAt === null) {
      const live = document.querySelector('#connection[data-state="live"]');
      const cards = document.querySelectorAll('[data-session]').length;
      const first = document.querySelector('[data-session] .counts');
      if (live && cards === shown && first?.getAttribute('data-processes') === String(heavy)) {
        measured.interactiveAt = now;
      }
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

/**
 * Opens the page on `gateway` and resolves once it is interactive (see `measureInPage`), with the
 * `/poll` requests it made so far.
 */
export async function openMeasuredPage(context, gateway, { shown, heavy }) {
  const page = await context.newPage();
  const polls = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.endsWith('/poll')) polls.push(request.url());
  });
  await page.addInitScript(measureInPage, { shown, heavy });
  await page.goto(`${gateway.url}/#token=${gateway.token}`);
  await page.waitForFunction(() => window.__vigilMeasured.interactiveAt !== null, null, {
    timeout: 60_000,
    polling: 100,
  });
  return { page, polls };
}

/** What the browser measured so far: time to interactive, the longest task and frame gap (ms). */
export function measured(page) {
  return page.evaluate(() => {
    const { interactiveAt, longTasks, longestFrameGap } = window.__vigilMeasured;
    return {
      timeToInteractiveMs: Math.round(interactiveAt),
      longestTaskMs: Math.round(Math.max(0, ...longTasks)),
      longTasks: longTasks.length,
      longestFrameGapMs: Math.round(longestFrameGap),
    };
  });
}
