import { startGateway } from '@vigil/gateway-plugin';
import { describe, expect, it } from 'vitest';
import { apiClient } from './support/http.js';

describe('SSE output events', () => {
  it('streams live process output of the streamed sessions only', async () => {
    await using gateway = await startGateway({ port: 0, token: 'stream-output-token-0123456789' });
    const call = apiClient(gateway.url, gateway.token);
    const headers = { authorization: `Bearer ${gateway.token}` };
    const abort = new AbortController();
    try {
      const post = async (path: string, body: unknown) =>
        (await call('POST', path, { body })).body as { processId: string };
      await post('/v1/sessions', { sessionId: 'watched' });
      await post('/v1/sessions', { sessionId: 'other' });
      const response = await fetch(`${gateway.url}/v1/stream?sessions=watched`, {
        headers,
        signal: abort.signal,
      });
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      const mine = await post('/v1/sessions/watched/processes', {
        command: 'echo first line; read x; echo second line',
      });
      await post('/v1/sessions/other/processes', { command: 'echo not for this stream' });
      let text = '';
      const outputs: { processId: string; text: string }[] = [];
      while (!outputs.some((o) => o.text.includes('first line'))) {
        const { value } = await reader.read();
        text += value ?? '';
        for (const block of text.split('\n\n').slice(0, -1)) {
          if (block.includes('event: output')) {
            const data = block.split('\n').find((line) => line.startsWith('data: '))!;
            outputs.push(JSON.parse(data.slice(6)) as { processId: string; text: string });
          }
        }
        text = text.slice(text.lastIndexOf('\n\n') + 2);
      }
      expect(outputs.every((o) => o.processId === mine.processId)).toBe(true);
      expect(outputs.map((o) => o.text).join('')).not.toContain('not for this stream');
    } finally {
      abort.abort();
    }
  });
});
