import type { ApprovalSnapshot } from '@vigil/core';
import { startGateway } from '@vigil/gateway-plugin';
import { describe, expect } from 'vitest';
import { apiClient } from './support/http.js';
import { raceIt } from './support/race.js';

describe('approvals over HTTP', () => {
  raceIt(
    'shows counts 1..8 in order under eight concurrent HTTP spawns that need approval, 200 rounds',
    async () => {
      await using gateway = await startGateway({ port: 0, token: 'approval-test-token-0123456789' });
      const call = apiClient(gateway.url, gateway.token);
      const post = (path: string, body: unknown) => call('POST', path, { body });
      await post('/v1/sessions', { sessionId: 'burst' });
      const vigil = gateway.plugin.vigil;
      for (let round = 0; round < 200; round++) {
        const seen: ApprovalSnapshot[] = [];
        const off = vigil.approvals.subscribe('burst', (s) => void seen.push(s));
        const responses = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            post('/v1/sessions/burst/processes', { command: `echo ${i}`, requireApproval: true }),
          ),
        );
        expect(responses.map((r) => r.status)).toEqual(Array(8).fill(201));
        const made = responses.map((r) => r.body as { approvalId: string });
        expect(seen.slice(1).map((s) => s.count)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        const head = seen[1]?.head?.approvalId;
        expect(seen.slice(1).every((s) => s.head?.approvalId === head)).toBe(true);
        off();
        for (const { approvalId } of made) {
          const denied = await post(`/v1/sessions/burst/approvals/${approvalId}`, { decision: 'deny' });
          expect(denied.status).toBe(200);
        }
        expect(vigil.approvals.snapshot('burst')).toMatchObject({ head: null, count: 0 });
      }
    },
    120_000,
  );
});

describe('answering approvals over HTTP without an id', () => {
  raceIt('answers the head, for the session, and all at once; refuses bad and stale answers', async () => {
    await using gateway = await startGateway({ port: 0, token: 'approval-test-token-0123456789' });
    const call = apiClient(gateway.url, gateway.token);
    const post = (path: string, body: unknown) => call('POST', path, { body });
    await post('/v1/sessions', { sessionId: 'answers' });
    const spawn = async (command: string) =>
      (await post('/v1/sessions/answers/processes', { command, requireApproval: true })).body as {
        processId: string;
        approvalId: string;
        state: string;
      };

    const empty = await post('/v1/sessions/answers/approvals/head', { decision: 'approve' });
    expect(empty.status).toBe(409);
    expect(empty.body).toMatchObject({ error: { code: 'ERR_NO_PENDING_APPROVAL' } });

    const first = await spawn('echo deploy');
    const unknown = await post('/v1/sessions/answers/approvals/head', { decision: 'always' });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({
      error: { code: 'ERR_INVALID_INPUT', details: { field: 'decision' } },
    });
    expect(JSON.stringify(unknown.body)).toMatch(/approve.*approve_session.*deny/);

    const seen = (await call('GET', '/v1/sessions/answers/approvals')).body as ApprovalSnapshot;
    const head = await post('/v1/sessions/answers/approvals/head', {
      decision: 'approve_session',
      version: seen.version,
    });
    expect(head.status).toBe(200);
    expect(head.body).toMatchObject({
      approvalId: first.approvalId,
      outcome: 'approved',
      snapshot: { count: 0 },
    });
    const stale = await post('/v1/sessions/answers/approvals/head', {
      decision: 'deny',
      version: seen.version,
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ error: { code: 'ERR_STALE_VERSION', details: { field: 'version' } } });

    expect((await spawn('echo deploy')).state).toBe('running');
    const asking = [await spawn('echo one'), await spawn('echo two')];
    const all = await post('/v1/sessions/answers/approvals/all', { decision: 'deny' });
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({
      resolved: asking.map(({ approvalId }) => ({ approvalId, outcome: 'denied' })),
      snapshot: { head: null, count: 0 },
    });
  });
});
