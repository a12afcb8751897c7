import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Recorder } from '../../../test/support/recorder.js';
import {
  createGatewayPlugin,
  type GatewayPlugin,
  processToolInputSchema,
  type RenderedNotification,
} from '../src/index.js';

const plugins: GatewayPlugin[] = [];
afterEach(async () => {
  await Promise.all(plugins.splice(0).map((plugin) => plugin.hooks.gatewayStop()));
});

function gateway(options: { failFirst?: number } = {}) {
  const injected = new Recorder<RenderedNotification>();
  let failures = options.failFirst ?? 0;
  const plugin = createGatewayPlugin({
    host: 'worker',
    config: { delivery: { retry: { initialDelayMs: 1 } } },
    inject: (_sessionId, message) => {
      if (failures > 0) {
        failures--;
        throw new Error('gateway busy');
      }
      injected.push(message);
    },
  });
  plugins.push(plugin);
  const next = (match: (m: RenderedNotification) => boolean) => injected.next(match);
  return { plugin, inbox: injected.items, next };
}

const tool = (plugin: GatewayPlugin) => plugin.tools.find((t) => t.name === 'process')!;

describe('gateway plugin', () => {
  it('publishes the process tool with a JSON Schema generated from its zod schema', () => {
    const { plugin } = gateway();
    expect(tool(plugin).inputSchema).toEqual(z.toJSONSchema(processToolInputSchema, { io: 'input' }));
    expect(tool(plugin).inputSchema).toMatchObject({ type: 'object', required: ['action'] });
  });

  it('makes sessionStart idempotent, also under concurrent calls, and shares one vigil', async () => {
    const { plugin } = gateway();
    const [a, b] = await Promise.all([
      plugin.hooks.sessionStart({ sessionId: 'chat-1' }),
      plugin.hooks.sessionStart({ sessionId: 'chat-1' }),
    ]);
    await plugin.hooks.sessionStart({ sessionId: 'chat-1' });
    expect(a?.sessionId).toBe('chat-1');
    expect(b?.sessionId).toBe('chat-1');
    expect(plugin.vigil).toBe(plugin.vigil);
    expect(plugin.vigil.stats()).toMatchObject({ sessions: 1, pollers: 1 });
  });

  it('ends sessions idempotently, ignores unknown ones, and stops safely even if nothing started', async () => {
    const idle = gateway().plugin;
    await idle.hooks.sessionEnd({ sessionId: 'never' });
    await idle.hooks.gatewayStop();
    await idle.hooks.gatewayStop();
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    await Promise.all([
      plugin.hooks.sessionEnd({ sessionId: 's' }),
      plugin.hooks.sessionEnd({ sessionId: 's' }),
    ]);
    await plugin.hooks.sessionEnd({ sessionId: 'unknown' });
    expect(plugin.vigil.sessions.get('s').state).toBe('closed');
    expect(plugin.vigil.stats().pollers).toBe(0);
    await plugin.hooks.gatewayStop();
    await expect(plugin.hooks.sessionStart({ sessionId: 'late' })).rejects.toMatchObject({
      code: 'ERR_CLOSED',
    });
  });

  it('injects a clear completion text, retrying while the gateway refuses it', async () => {
    const { plugin, next, inbox } = gateway({ failFirst: 2 });
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const started = await tool(plugin).execute(
      { action: 'spawn', command: "echo 'compiling'; echo 'build failed: 2 errors'; exit 2" },
      { sessionId: 's' },
    );
    expect(started.text).toMatch(/^Started proc_[0-9a-f]{12} `echo/);
    const message = await next((m) => m.notification.type === 'completion');
    expect(message.text).toContain('exited with code 2');
    expect(message.text).toContain('build failed: 2 errors');
    expect(message.text).toContain(`processId "${message.notification.processId}"`);
    expect(message.notification).toMatchObject({ sessionId: 's', data: { exitCode: 2 } });
    expect(inbox.filter((m) => m.notification.type === 'completion')).toHaveLength(1);
  });

  it('renders watch matches with the matching lines and the pattern', async () => {
    const { plugin, next } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    await tool(plugin).execute(
      { action: 'spawn', command: 'echo booting; echo "server READY on :8080"; read x', watch: ['READY'] },
      { sessionId: 's' },
    );
    const match = await next((m) => m.notification.type === 'watch_match');
    expect(match.text).toContain('"READY"');
    expect(match.text).toContain('server READY on :8080');
    expect(match.notification).toMatchObject({
      type: 'watch_match',
      data: { lines: ['server READY on :8080'] },
    });
  });

  it('runs poll, log, write, wait and kill for the calling session only', async () => {
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 'mine' });
    await plugin.hooks.sessionStart({ sessionId: 'theirs' });
    const run = tool(plugin);
    const { data } = await run.execute(
      { action: 'spawn', command: 'read line; echo "got $line"; sleep 60' },
      { sessionId: 'mine' },
    );
    const processId = (data as { processId: string }).processId;
    await expect(run.execute({ action: 'poll', processId }, { sessionId: 'theirs' })).rejects.toMatchObject({
      code: 'ERR_UNKNOWN_PROCESS',
    });
    await run.execute({ action: 'write', processId, data: 'hello\n' }, { sessionId: 'mine' });
    const early = await run.execute({ action: 'wait', processId, timeoutMs: 0 }, { sessionId: 'mine' });
    expect(early.text).toContain('still running');
    const killed = await run.execute({ action: 'kill', processId }, { sessionId: 'mine' });
    expect(killed.text).toContain('killed');
    const log = await run.execute({ action: 'log', processId }, { sessionId: 'mine' });
    expect(log.text).toBe('got hello');
    const list = await run.execute({ action: 'list' }, { sessionId: 'theirs' });
    expect(list.text).toBe('No processes.');
  });

  it('log without an offset shows the last lines, where they sit, and how to page back', async () => {
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    const { data } = await run.execute({ action: 'spawn', command: 'seq 1 500' }, { sessionId: 's' });
    const processId = (data as { processId: string }).processId;
    await run.execute({ action: 'wait', processId, timeoutMs: 10_000 }, { sessionId: 's' });
    const last = await run.execute({ action: 'log', processId, limit: 10 }, { sessionId: 's' });
    expect(last.text.split('\n')).toEqual([
      '[lines 491-500 of 500]',
      ...Array.from({ length: 10 }, (_, i) => String(491 + i)),
      '(earlier lines: offset 480)',
    ]);
    const earlier = await run.execute(
      { action: 'log', processId, offset: 480, limit: 10 },
      { sessionId: 's' },
    );
    expect(earlier.text.split('\n')).toEqual([
      '[lines 481-490 of 500]',
      ...Array.from({ length: 10 }, (_, i) => String(481 + i)),
      '(earlier lines: offset 470; more: offset 490)',
    ]);
  });

  it('shows output without escape sequences and secrets; log keeps the escapes with ansi', async () => {
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    const command = String.raw`printf '\033[31mfailed\033[0m key=sk-ant-api03-abcdefghijklmnopqrstuv\n'`;
    const { data } = await run.execute({ action: 'spawn', command }, { sessionId: 's' });
    const processId = (data as { processId: string }).processId;
    const waited = await run.execute({ action: 'wait', processId, timeoutMs: 10_000 }, { sessionId: 's' });
    expect(waited.text).toContain('\nfailed key=[REDACTED]\n');
    const plain = await run.execute({ action: 'log', processId }, { sessionId: 's' });
    expect(plain.text).toBe('failed key=[REDACTED]');
    const colored = await run.execute({ action: 'log', processId, ansi: true }, { sessionId: 's' });
    expect(colored.text).toBe('\u001b[31mfailed\u001b[0m key=[REDACTED]');
  });

  it('rejects bad tool input with ERR_INVALID_INPUT naming the field', async () => {
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    await expect(run.execute({ action: 'spawn' }, { sessionId: 's' })).rejects.toThrow(
      /command: is required/,
    );
    await expect(run.execute({ action: 'poll' }, { sessionId: 's' })).rejects.toThrow(
      /processId: is required/,
    );
    await expect(run.execute({ action: 'explode' }, { sessionId: 's' })).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      message: expect.stringContaining('action'),
    });
    await expect(
      run.execute({ action: 'spawn', command: 'true', watch: [{ regex: '(' }] }, { sessionId: 's' }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_PATTERN' });
  });

  it('refuses a plugin without inject', () => {
    expect(() => createGatewayPlugin({} as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }),
    );
  });
});
