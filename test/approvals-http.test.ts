import type { AddressInfo } from 'node:net';
import type { ApprovalSnapshot } from '@vigil/core';
import { startGateway } from '@vigil/gateway-plugin';
import { describe, expect } from 'vitest';
import { raceIt } from './support/race.js';

describe('approvals over HTTP', () => {
  raceIt(
    'shows counts 1..8 in order under eight concurrent HTTP spawns that need approval, 200 rounds',
    async () => {
      const gateway = await startGateway({ port: 0, token: 'approval-test-token-0123456789' });
      try {
        const { port } = gateway.server.address() as AddressInfo;
        const headers = { authorization: `Bearer ${gateway.token}`, 'content-type': 'application/json' };
        const post = (path: string, body: unknown) =>
          fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
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
          const made = (await Promise.all(responses.map((r) => r.json()))) as { approvalId: string }[];
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
      } finally {
        await gateway.close();
      }
    },
    120_000,
  );
});
