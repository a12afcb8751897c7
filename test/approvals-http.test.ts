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
