import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FollowResume } from '../src/poller/follow-table.js';
import { PollerLink } from '../src/poller/link.js';
import { runPoller } from '../src/poller/poller.js';
import type { ProcessReport } from '../src/poller/protocol.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-poller-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LIMITS = {
  cooldownMs: 15_000,
  strikeLimit: 3,
  lifetimeMaxHits: 8,
  maxLineLength: 4096,
  maxLinesPerMatch: 20,
  maxCharsPerMatch: 2000,
  heartbeatChars: 100,
};

/** The clock of these runs: never moves, so only the resumed schedule can make a heartbeat due. */
const NOW = 1_000_000;

/**
 * Runs a real poller (in this thread) over a spool holding `text`, following it as a process
 * resumed from `resume`, and returns what its first commit reported.
 */
async function firstReport(name: string, text: string, resume?: FollowResume): Promise<ProcessReport> {
  const spool = join(dir, `${name}.out`);
  writeFileSync(spool, text);
  let resolve!: (report: ProcessReport) => void;
  const reported = new Promise<ProcessReport>((settle) => {
    resolve = settle;
  });
  const link = new PollerLink(
    'session',
    { limits: LIMITS, matchTimeoutMs: 60_000, slots: 4, redaction: { patterns: [], values: [] } },
    { report: (report) => resolve(report), stuck: () => {} },
  );
  link.follow({
    processId: name,
    patterns: [{ kind: 'substring', substring: 'MATCH' }],
    heartbeatMs: 1_000,
    spool,
    drops: new SharedArrayBuffer(16),
    ...(resume === undefined ? {} : { resume }),
  });
  const run = runPoller(link.openRun(1), { runId: 1, threadId: 0, reads: 'async', now: () => NOW });
  const report = await reported;
  link.requestStop();
  await run;
  link.dispose();
  return report;
}

describe('a poller resuming a followed process', () => {
  it('continues the heartbeat schedule: a beat missed while no poller ran is due at once', async () => {
    const report = await firstReport('missed', 'building\n', {
      heartbeatCursor: 0,
      heartbeatAt: NOW - 5_000,
      limiter: null,
    });
    expect(report.heartbeat).toEqual({ from: 0, upTo: 9, text: 'building\n', at: NOW });
  });

  it('starts a new schedule for a process followed afresh', async () => {
    const report = await firstReport('fresh', 'building\n');
    expect(report.heartbeat).toBeUndefined();
    expect(report.cursor).toBe(9);
  });

  it('resumes the rate limiter: a match inside the restored window is dropped, a disabled watch stays so', async () => {
    const window = { windowEndsAt: NOW + 1, suppressed: 0, strikes: 0, hits: 1, disabled: null };
    const open = await firstReport('window', 'MATCH again\n', {
      heartbeatCursor: 0,
      heartbeatAt: NOW,
      limiter: window,
    });
    expect(open).toMatchObject({ matches: [], limiter: { suppressed: 1, strikes: 1, hits: 1 } });
    const disabled = await firstReport('disabled', 'MATCH again\n', {
      heartbeatCursor: 0,
      heartbeatAt: NOW,
      limiter: { ...window, windowEndsAt: null, disabled: 'strikes' },
    });
    expect(disabled).toMatchObject({ matches: [], limiter: { hits: 1, disabled: 'strikes' } });
  });
});
