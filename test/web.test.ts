import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TapeEvent } from '@vigil/core';
import { type EmbeddedGateway, startGateway } from '@vigil/gateway-plugin';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from './support/http.js';
import {
  launchChromium,
  measured,
  openMeasuredPage,
  processCounts,
  sessionIds,
  startScaledGateway,
} from './support/page-scale.mjs';

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/screenshots/', import.meta.url));
const FEED = new Set(['watch.match', 'watch.disabled', 'watch.resumed', 'heartbeat', 'process.exited']);

let gateway: EmbeddedGateway;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;

async function api(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const answer = await apiClient(gateway.url, gateway.token)(
    method,
    path,
    body === undefined ? {} : { body },
  );
  return answer.body as Record<string, unknown>;
}

async function feedSeqs(sessionId: string): Promise<number[]> {
  return page
    .locator(`[data-session="${sessionId}"] .feed li`)
    .evaluateAll((items) => items.map((item) => Number(item.getAttribute('data-seq'))));
}

async function tapeFeed(sessionId: string): Promise<number[]> {
  const { events } = (await api('GET', `/v1/sessions/${sessionId}/events?limit=1000`)) as {
    events: TapeEvent[];
  };
  return events.filter((e) => FEED.has(e.type)).map((e) => e.seq);
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  gateway = await startGateway({ port: 0, config: { watch: { cooldownMs: 0 } }, keepAliveMs: 1000 });
  browser = await launchChromium();
  page = await browser.context.newPage();
  await api('POST', '/v1/sessions', { sessionId: 'web-demo' });
  await page.goto(`${gateway.url}/#token=${gateway.token}`);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.close();
});

describe('web page (headless Chromium)', () => {
  it('takes the token from the fragment and removes it from the address bar', async () => {
    await page.locator('#connection[data-state="live"]').waitFor();
    expect(new URL(page.url()).hash).toBe('');
    await page.locator('[data-session="web-demo"]').waitFor();
  });

  it("shows a session's process, its output and its watch match as they arrive", async () => {
    const spawned = await api('POST', '/v1/sessions/web-demo/processes', {
      command: "echo 'booting the log producer'; echo 'service READY'; read x",
      watch: ['READY'],
    });
    const row = page.locator(`[data-process="${String(spawned.processId)}"]`);
    await row.locator('.state[data-state="running"]').waitFor();
    await row.locator('.tail', { hasText: 'service READY' }).waitFor();
    await page
      .locator('[data-session="web-demo"] .feed li[data-type="watch.match"]', { hasText: 'READY' })
      .waitFor();
    await page.locator('.delivery[data-delivery="delivered"]').first().waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'process-output.png'), fullPage: true });
    await api('POST', `/v1/processes/${String(spawned.processId)}/kill`, {});
  });

  it('approves the head approval card and shows the next one', async () => {
    const first = await api('POST', '/v1/sessions/web-demo/processes', {
      command: 'echo first deploy',
      requireApproval: true,
      description: 'first deploy',
    });
    await api('POST', '/v1/sessions/web-demo/processes', {
      command: 'echo second deploy',
      requireApproval: true,
      description: 'second deploy',
    });
    const card = page.locator('[data-session="web-demo"] .approval');
    await card.filter({ hasText: '2 pending' }).filter({ hasText: 'echo first deploy' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'approval-card.png'), fullPage: true });
    await card.locator('button[data-action="approve"]').click();
    await card.filter({ hasText: '1 pending' }).filter({ hasText: 'echo second deploy' }).waitFor();
    await page.locator(`[data-process="${String(first.processId)}"] .state[data-state="exited"]`).waitFor();
    await card.locator('button[data-action="deny"]').click();
    await card.waitFor({ state: 'detached' });
  });

  it('approves a command for the session from the card, and denies all that are pending at once', async () => {
    const spawn = (command: string) =>
      api('POST', '/v1/sessions/web-demo/processes', { command, requireApproval: true });
    await spawn('echo trusted');
    const card = page.locator('[data-session="web-demo"] .approval');
    await card.filter({ hasText: 'echo trusted' }).waitFor();
    await card.locator('button[data-action="approve_session"]').click();
    await card.waitFor({ state: 'detached' });
    // The same command no longer asks.
    expect((await spawn('echo trusted')).state).toBe('running');
    for (const command of ['echo a', 'echo b', 'echo c']) await spawn(command);
    await card.filter({ hasText: '3 pending' }).waitFor();
    await card.locator('button[data-action="deny_all"]').click();
    await card.waitFor({ state: 'detached' });
    expect(await api('GET', '/v1/sessions/web-demo/approvals')).toMatchObject({ count: 0 });
  });

  it('kills a process from its row and shows its final state', async () => {
    const spawned = await api('POST', '/v1/sessions/web-demo/processes', {
      command: 'echo serving; sleep 300',
    });
    const row = page.locator(`[data-process="${String(spawned.processId)}"]`);
    await row.locator('button[data-action="kill"]').click();
    await row.locator('.state[data-state="killed"]').waitFor();
    await expect(row.locator('.exit').textContent()).resolves.toBe('');
    await page.screenshot({ path: join(ARTIFACTS, 'killed.png'), fullPage: true });
  });

  it('says when it is disconnected and resumes the feed without a gap or a duplicate', async () => {
    const before = await tapeFeed('web-demo');
    await expect.poll(() => feedSeqs('web-demo')).toEqual(before);
    // Drop every connection, including the stream, then make events while the page is away.
    gateway.server.closeAllConnections();
    await page.locator('#connection[data-state="disconnected"]').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'disconnected.png'), fullPage: true });
    const offline = await api('POST', '/v1/sessions/web-demo/processes', {
      command: 'for i in 1 2 3; do echo "READY $i"; sleep 0.05; done; echo \'ERROR while you were away\'',
      watch: ['READY', 'ERROR'],
    });
    await api('POST', `/v1/processes/${String(offline.processId)}/wait`);
    await page.locator('#connection[data-state="live"]').waitFor();
    const after = await tapeFeed('web-demo');
    expect(after.length).toBeGreaterThan(before.length);
    await expect.poll(() => feedSeqs('web-demo')).toEqual(after);
    const seqs = await feedSeqs('web-demo');
    expect(new Set(seqs).size).toBe(seqs.length);
    await page.screenshot({ path: join(ARTIFACTS, 'resumed.png'), fullPage: true });
  });
});

describe('web page at scale (headless Chromium, 1,000 sessions, 5,000 processes)', () => {
  const SESSIONS = 1000;
  const PROCESSES = 5000;
  /** What the page shows at once (web/app.js, web/view.js). */
  const SESSION_PAGE = 24;
  const PROCESS_PAGE = 10;
  const FEED_SHOWN = 50;
  let scaled: Awaited<ReturnType<typeof startScaledGateway>>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let big: Page;
  let polls: string[];

  beforeAll(async () => {
    [scaled, browser] = await Promise.all([
      startScaledGateway({ sessions: SESSIONS, processes: PROCESSES }),
      launchChromium(),
    ]);
    ({ page: big, polls } = await openMeasuredPage(browser.context, scaled.gateway, {
      shown: SESSION_PAGE,
      heavy: PROCESSES / 10,
    }));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await scaled?.gateway.close();
  });

  it('draws the first page of sessions, live, with every process of the session that ran 500', async () => {
    const pager = big.locator('#pager');
    await expect(pager.getAttribute('data-total')).resolves.toBe(String(SESSIONS));
    await expect(pager.getAttribute('data-shown')).resolves.toBe(String(SESSION_PAGE));
    await expect(big.locator('#connection').getAttribute('data-state')).resolves.toBe('live');
    const shown = await big
      .locator('[data-session]')
      .evaluateAll((cards) => cards.map((card) => card.getAttribute('data-session')));
    expect(shown).toEqual(sessionIds(SESSIONS).slice(0, SESSION_PAGE));
    const heavy = big.locator('[data-session="s-0000"]');
    await expect(heavy.locator('.counts').getAttribute('data-processes')).resolves.toBe('500');
    await expect(heavy.locator('[data-process]').count()).resolves.toBe(PROCESS_PAGE);
    await expect(heavy.locator('.feed li').count()).resolves.toBe(FEED_SHOWN);
    // Exited processes are drawn from the tape: no request per process.
    expect(polls).toEqual([]);
    const measures = await measured(big);
    console.log(`page at scale: ${JSON.stringify(measures)}`);
    expect(measures.timeToInteractiveMs).toBeGreaterThan(0);
  });

  it('pages the processes of a session and the session list', async () => {
    const heavy = big.locator('[data-session="s-0000"]');
    await heavy.locator('button[data-action="older"]').click();
    await heavy.locator('[data-pager="processes"][data-offset="10"]').waitFor();
    await expect(heavy.locator('[data-process]').count()).resolves.toBe(PROCESS_PAGE);
    await big.locator('button[data-action="sessions-next"]').click();
    const second = sessionIds(SESSIONS)[SESSION_PAGE] as string;
    const counts = processCounts(SESSIONS, PROCESSES);
    await big
      .locator(`[data-session="${second}"] .counts[data-processes="${counts[SESSION_PAGE]}"]`)
      .waitFor();
    await big.locator('#pager[data-from="24"]').waitFor();
    await big.locator('#connection[data-state="live"]').waitFor();
    expect(polls).toEqual([]);
    await big.screenshot({ path: join(ARTIFACTS, 'at-scale.png') });
  });
});
