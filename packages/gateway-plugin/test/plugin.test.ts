import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { outputContains } from '../../../test/support/fixtures.js';
import { raceIt } from '../../../test/support/race.js';
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
  raceIt('renders a batch as one message joining the notifications, in tape order', async () => {
    const injected = new Recorder<RenderedNotification>();
    const messages = injected.items;
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const plugin = createGatewayPlugin({
      host: 'worker',
      batch: true,
      inject: async (_sessionId, message) => {
        if (messages.length === 0) await held;
        injected.push(message);
      },
    });
    plugins.push(plugin);
    await plugin.hooks.sessionStart({ sessionId: 'b' });
    const { vigil } = plugin;
    // Each completion is on the tape (so queued) before the next process starts; the first is held.
    for (const code of [1, 2, 3]) {
      const { processId } = vigil.processes.spawn({ sessionId: 'b', command: `exit ${code}` });
      for await (const event of vigil.tape.subscribe('b')) {
        if (event.type === 'process.exited' && event.processId === processId) break;
      }
    }
    release();
    await injected.next((message) => message.text.includes('exited with code 3'));
    expect(messages).toHaveLength(2);
    const [first, batch] = messages as [RenderedNotification, RenderedNotification];
    expect(first.text).toContain('exited with code 1');
    expect(batch.notifications?.map((n) => n.type)).toEqual(['completion', 'completion']);
    expect(batch.notification).toBe(batch.notifications?.[0]);
    const [two, three] = [batch.text.indexOf('exited with code 2'), batch.text.indexOf('exited with code 3')];
    expect(two).toBeGreaterThanOrEqual(0);
    expect(three).toBeGreaterThan(two);
  });

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
    const { plugin, next } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 'mine' });
    await plugin.hooks.sessionStart({ sessionId: 'theirs' });
    const run = tool(plugin);
    const { data } = await run.execute(
      { action: 'spawn', command: 'read line; echo "got $line"; sleep 60', watch: ['got'] },
      { sessionId: 'mine' },
    );
    const processId = (data as { processId: string }).processId;
    await expect(run.execute({ action: 'poll', processId }, { sessionId: 'theirs' })).rejects.toMatchObject({
      code: 'ERR_UNKNOWN_PROCESS',
    });
    await run.execute({ action: 'write', processId, data: 'hello\n' }, { sessionId: 'mine' });
    // The write is in the pipe once it resolves; the answer is printed once the match arrives.
    await next((m) => m.notification.type === 'watch_match');
    const early = await run.execute({ action: 'wait', processId, timeoutMs: 0 }, { sessionId: 'mine' });
    expect(early.text).toContain('still running');
    const killed = await run.execute({ action: 'kill', processId }, { sessionId: 'mine' });
    expect(killed.text).toContain('killed');
    const log = await run.execute({ action: 'log', processId }, { sessionId: 'mine' });
    expect(log.text).toBe('got hello');
    const list = await run.execute({ action: 'list' }, { sessionId: 'theirs' });
    expect(list.text).toBe('No processes.');
  });

  it('writes with eof, closes stdin, and spawns and resizes a terminal', async () => {
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    const context = { sessionId: 's' };
    const spawn = async (input: Record<string, unknown>): Promise<string> =>
      ((await run.execute({ action: 'spawn', ...input }, context)).data as { processId: string }).processId;
    const cat = await spawn({ command: 'cat' });
    const wrote = await run.execute({ action: 'write', processId: cat, data: 'bye\n', eof: true }, context);
    expect(wrote.text).toContain('then EOF');
    expect((await run.execute({ action: 'wait', processId: cat }, context)).text).toContain('exit code 0');
    const reader = await spawn({ command: 'wc -l' });
    await run.execute({ action: 'close_stdin', processId: reader }, context);
    expect((await run.execute({ action: 'wait', processId: reader }, context)).text).toContain('exited');

    const terminal = await spawn({
      command: 'stty size; read line; stty size',
      pty: true,
      cols: 90,
      rows: 20,
    });
    await expect(
      run.execute({ action: 'resize', processId: terminal, cols: 100 }, context),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      message: expect.stringContaining('rows'),
    });
    // Resized once it printed its first size.
    await outputContains(plugin.vigil, terminal, '20 90');
    await run.execute({ action: 'resize', processId: terminal, cols: 100, rows: 40 }, context);
    await run.execute({ action: 'write', processId: terminal, data: '\n' }, context);
    await run.execute({ action: 'wait', processId: terminal }, context);
    const log = await run.execute({ action: 'log', processId: terminal }, context);
    expect(log.text).toMatch(/20 90[\s\S]*40 100/);
  });

  it('spawn with yieldMs answers with the output of a quick command, which is then never notified', async () => {
    const { plugin, inbox, next } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    const quick = await run.execute(
      { action: 'spawn', command: 'echo built; exit 1', yieldMs: 60_000 },
      { sessionId: 's' },
    );
    expect(quick.text).toMatch(
      /^Ran proc_\w+ `echo built; exit 1`: exited, exit code 1 \(exited with code 1\)\.\n/,
    );
    expect(quick.text).toContain('built');
    const { processId } = (quick.data as { process: { processId: string } }).process;
    // Notifications come in tape order: the later one's arrival shows the first never will.
    const later = await run.execute({ action: 'spawn', command: 'echo later' }, { sessionId: 's' });
    await next((m) => m.notification.processId === (later.data as { processId: string }).processId);
    expect(inbox.filter((m) => m.notification.processId === processId)).toEqual([]);
  });

  it('spawn with timeoutMs kills the command and the completion says it timed out', async () => {
    const { plugin, next } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    const started = await run.execute(
      { action: 'spawn', command: 'sleep 30', timeoutMs: 200, yieldMs: 0 },
      { sessionId: 's' },
    );
    expect(started.text).toContain('still running after yieldMs');
    const { processId } = (started.data as { process: { processId: string } }).process;
    const completion = await next((m) => m.notification.processId === processId);
    expect(completion.text).toContain('timed out (timeoutMs 200): killed by SIGTERM');
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
    await expect(
      run.execute({ action: 'spawn', command: 'true', yieldMs: 120_001 }, { sessionId: 's' }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      message: expect.stringContaining('yieldMs: must be at most'),
    });
    await expect(
      run.execute({ action: 'spawn', command: 'true', timeoutMs: -5 }, { sessionId: 's' }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      message: expect.stringContaining('timeoutMs: must not be negative'),
    });
    await expect(
      run.execute({ action: 'wait', processId: 'proc_000000000000', timeoutMs: 600_001 }, { sessionId: 's' }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      message: expect.stringContaining('timeoutMs: must be at most 600000 ms for action "wait"'),
    });
  });

  it('refuses a plugin without inject', () => {
    expect(() => createGatewayPlugin({} as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }),
    );
  });
});

describe('the process tool', () => {
  const idOf = (result: { data: unknown }) => (result.data as { processId: string }).processId;

  it('names a process by a unique id prefix, with or without proc_, and refuses an ambiguous one listing the matches', async () => {
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    await plugin.hooks.sessionStart({ sessionId: 'other' });
    const run = tool(plugin);
    const context = { sessionId: 's' };
    const a = idOf(await run.execute({ action: 'spawn', command: 'sleep 30' }, context));
    const b = idOf(await run.execute({ action: 'spawn', command: 'tail -f /dev/null' }, context));
    // The shortest prefix of a that b does not share.
    let length = 'proc_'.length + 1;
    while (b.startsWith(a.slice(0, length))) length++;
    const polled = await run.execute({ action: 'poll', processId: a.slice(0, length) }, context);
    expect((polled.data as { process: { processId: string } }).process.processId).toBe(a);
    const bare = await run.execute({ action: 'poll', processId: a.slice(5, length) }, context);
    expect((bare.data as { process: { processId: string } }).process.processId).toBe(a);
    const ambiguous = run.execute({ action: 'poll', processId: 'proc_' }, context);
    await expect(ambiguous).rejects.toMatchObject({
      code: 'ERR_AMBIGUOUS_PROCESS',
      message: expect.stringMatching(
        new RegExp(`matches 2 processes: ${a} \\(sleep 30\\), ${b} \\(tail null\\)`),
      ),
      details: { field: 'processId', matches: [a, b] },
    });
    await expect(
      run.execute({ action: 'poll', processId: a.slice(0, length) }, { sessionId: 'other' }),
    ).rejects.toMatchObject({ code: 'ERR_UNKNOWN_PROCESS' });
    await run.execute({ action: 'kill', processId: a }, context);
    await run.execute({ action: 'kill', processId: b }, context);
  });

  it('lists names, removes one finished process, clears the rest, and refuses to remove a running one', async () => {
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    const context = { sessionId: 's' };
    const spawn = async (command: string) => idOf(await run.execute({ action: 'spawn', command }, context));
    const running = await spawn('sleep 30');
    const ended = [await spawn('make --version'), await spawn('npm --version || true'), await spawn('true')];
    for (const processId of ended)
      await run.execute({ action: 'wait', processId, timeoutMs: 10_000 }, context);
    const listed = await run.execute({ action: 'list' }, context);
    expect(listed.text.split('\n').map((line) => line.slice(0, line.indexOf(']') + 1))).toEqual([
      '[sleep 30]',
      '[make]',
      '[npm]',
      '[true]',
    ]);
    await expect(run.execute({ action: 'remove', processId: running }, context)).rejects.toMatchObject({
      code: 'ERR_PROCESS_RUNNING',
    });
    const removed = await run.execute({ action: 'remove', processId: ended[0]! }, context);
    expect(removed.text).toMatch(/^Removed proc_/);
    const cleared = await run.execute({ action: 'clear' }, context);
    expect(cleared.text).toBe('Removed 2 finished processes.');
    const left = await run.execute({ action: 'list' }, context);
    expect((left.data as { processId: string }[]).map((p) => p.processId)).toEqual([running]);
    await run.execute({ action: 'kill', processId: running }, context);
  });

  it('spawns a run that replaces another named by an id prefix, which is killed', async () => {
    const { plugin } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    const context = { sessionId: 's' };
    const old = idOf(await run.execute({ action: 'spawn', command: 'sleep 30', key: 'serve' }, context));
    const fresh = idOf(
      await run.execute({ action: 'spawn', command: 'sleep 30', replaces: old.slice(5, 12) }, context),
    );
    const waited = await run.execute({ action: 'wait', processId: old, timeoutMs: 10_000 }, context);
    expect(waited.data).toMatchObject({ process: { state: 'killed', supersededBy: fresh, key: 'serve' } });
    await expect(
      run.execute({ action: 'spawn', command: 'true', replaces: 'proc_' }, context),
    ).rejects.toMatchObject({ code: 'ERR_AMBIGUOUS_PROCESS', details: { field: 'replaces' } });
    await run.execute({ action: 'kill', processId: fresh }, context);
  });

  it('kill through the tool consumes the completion; a kill from elsewhere is still notified', async () => {
    const { plugin, inbox, next } = gateway();
    await plugin.hooks.sessionStart({ sessionId: 's' });
    const run = tool(plugin);
    const context = { sessionId: 's' };
    const byAgent = idOf(await run.execute({ action: 'spawn', command: 'sleep 30' }, context));
    const byOperator = idOf(await run.execute({ action: 'spawn', command: 'sleep 30' }, context));
    const killed = await run.execute({ action: 'kill', processId: byAgent }, context);
    expect(killed.text).toMatch(/: killed.*SIGTERM/);
    expect(killed.data).toMatchObject({ state: 'killed', completionConsumed: true });
    await plugin.vigil.processes.kill(byOperator);
    await next((m) => m.notification.processId === byOperator && m.notification.type === 'completion');
    // Delivered in tape order: the agent's kill came first, so its completion would have too.
    expect(inbox.map((m) => m.notification.processId)).not.toContain(byAgent);
  });
});
