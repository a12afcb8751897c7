/**
 * vigil inside a real OpenClaw gateway: openclaw 2026.9.6 on Node 24, both installed from the npm
 * registry into test/.cache/openclaw and reused by later runs. The built plugin is deployed as a
 * self-contained package (`pnpm deploy` with hoisted dependencies: OpenClaw's install scan refuses
 * node_modules symlinks that leave the plugin root, which pnpm's workspace links do), installed with
 * `openclaw plugins install --link`, and driven through `openclaw gateway run` and `openclaw agent`.
 * The model is a local OpenAI-compatible stub on 127.0.0.1 whose scripted replies call the `process`
 * tool; nothing is simulated. Every install step works from empty npm and pnpm caches (it reads the
 * registry); test/.cache only makes later runs faster.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const NODE_VERSION = '24.21.0';
const OPENCLAW_VERSION = '2026.9.6';
const CACHE = fileURLToPath(new URL('./.cache/openclaw/', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PLUGIN = join(ROOT, 'packages/gateway-plugin');
const KEY_A = 'agent:main:vigil-e2e-a';
const KEY_B = 'agent:main:vigil-e2e-b';
const SLEEPER = 'sleep 300; echo vigil-e2e-sleeper';

interface Result {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** Runs a command in its own process group, killing the group if it outlives `timeoutMs`. */
async function run(
  file: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number },
): Promise<Result> {
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk;
  });
  const watchdog = setTimeout(() => killGroup(child.pid, 'SIGKILL'), options.timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(watchdog);
  return { code, out, err };
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  try {
    if (pid !== undefined) process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** `npm install spec` into `dir`, unless an earlier run completed it (marked by `.complete`). */
async function npmInstall(dir: string, spec: string, env: NodeJS.ProcessEnv): Promise<void> {
  if (existsSync(join(dir, '.complete'))) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "private": true }\n');
  const args = ['install', spec, '--no-audit', '--no-fund', '--loglevel=error'];
  const result = await run('npm', args, { cwd: dir, env, timeoutMs: 480_000 });
  if (result.code !== 0) throw new Error(`npm install ${spec} failed:\n${result.err}`);
  writeFileSync(join(dir, '.complete'), `${new Date().toISOString()}\n`);
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

interface ChatRequest {
  readonly model?: string;
  readonly stream?: boolean;
  readonly messages?: { readonly role: string }[];
  readonly tools?: { readonly function?: { readonly name?: string } }[];
}
interface StubRequest {
  readonly at: number;
  /** The request's messages as JSON. */
  readonly all: string;
}
type Reply = { readonly text: string } | { readonly calls: readonly Record<string, unknown>[] };

const isCompletion = (all: string): boolean =>
  all.includes('[vigil] Background process') &&
  all.includes('vigil-e2e-done') &&
  all.includes('exited with code 0');

/** The stub model's script: session A spawns `echo` and a sleeper, session B a sleeper. */
const script =
  (echo: string) =>
  (body: ChatRequest): Reply => {
    const messages = body.messages ?? [];
    const all = JSON.stringify(messages);
    if (messages.at(-1)?.role === 'tool') return { text: 'Started in the background; vigil will tell me.' };
    if (isCompletion(all)) return { text: 'SAW-COMPLETION: the build finished.' };
    const offered = (body.tools ?? []).some((tool) => tool.function?.name === 'process');
    if (!offered || messages.some((m) => m.role === 'tool')) return { text: 'stub reply' };
    if (all.includes('VIGIL-E2E-A'))
      return {
        calls: [
          { action: 'spawn', command: echo },
          { action: 'spawn', command: SLEEPER },
        ],
      };
    if (all.includes('VIGIL-E2E-B')) return { calls: [{ action: 'spawn', command: SLEEPER }] };
    return { text: 'stub reply' };
  };

/** A minimal OpenAI-compatible `/v1/chat/completions` (streamed or not) on 127.0.0.1. */
async function startStubModel(decide: (body: ChatRequest) => Reply) {
  const requests: StubRequest[] = [];
  const events = new EventEmitter<{ request: [StubRequest] }>();
  let n = 0;
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (!req.url?.endsWith('/chat/completions')) {
      res.writeHead(req.url?.endsWith('/models') ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'stub-1', object: 'model' }] }));
      return;
    }
    const body = JSON.parse(raw || '{}') as ChatRequest;
    const request = { at: Date.now(), all: JSON.stringify(body.messages ?? []) };
    requests.push(request);
    events.emit('request', request);
    const reply = decide(body);
    const head = {
      id: `chatcmpl-${++n}`,
      created: Math.floor(Date.now() / 1000),
      model: body.model ?? 'stub-1',
    };
    const calls =
      'calls' in reply
        ? reply.calls.map((args, index) => ({
            index,
            id: `call_${n}_${index}`,
            type: 'function',
            function: { name: 'process', arguments: JSON.stringify(args) },
          }))
        : undefined;
    const message =
      'text' in reply
        ? { role: 'assistant', content: reply.text }
        : { role: 'assistant', content: null, tool_calls: calls };
    const finish = calls ? 'tool_calls' : 'stop';
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...head,
          object: 'chat.completion',
          choices: [{ index: 0, message, finish_reason: finish }],
          usage,
        }),
      );
      return;
    }
    const event = (choice: unknown, extra = {}) =>
      `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices: [choice], ...extra })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(
      event({
        index: 0,
        delta: calls ? { role: 'assistant', tool_calls: calls } : message,
        finish_reason: null,
      }),
    );
    res.write(event({ index: 0, delta: {}, finish_reason: finish }, { usage }));
    res.end('data: [DONE]\n\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  /** The first request, received already or later, whose messages satisfy `match`. */
  const next = (match: (all: string) => boolean) =>
    new Promise<StubRequest>((resolve) => {
      const seen = requests.find((r) => match(r.all));
      if (seen) return resolve(seen);
      const listener = (request: StubRequest) => {
        if (!match(request.all)) return;
        events.off('request', listener);
        resolve(request);
      };
      events.on('request', listener);
    });
  return { url: `http://127.0.0.1:${port}/v1`, next, close: () => server.close() };
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

interface Trace {
  readonly pid: number;
  readonly event: string;
  readonly [field: string]: unknown;
}

const traces = (file: string): Trace[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Trace)
    : [];

/** Waits for a line of the plugin's trace file (VIGIL_OPENCLAW_LOG); a file has no event to await. */
async function traced(file: string, match: (trace: Trace) => boolean, timeoutMs: number): Promise<Trace> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await delay(100)) {
    const found = traces(file).find(match);
    if (found) return found;
  }
  throw new Error(`no matching trace within ${timeoutMs} ms in:\n${readFileSync(file, 'utf8')}`);
}

interface Proc {
  readonly pid: number;
  readonly state: string;
  readonly ppid: number;
  readonly pgid: number;
}

function proc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: state!, ppid: Number(ppid), pgid: Number(pgid) };
  } catch {
    return undefined;
  }
}

/** Processes that are neither gone nor zombies (PID 1 here does not reap: a zombie is dead). */
function living(): Proc[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => proc(Number(name)))
    .filter((p): p is Proc => p !== undefined && p.state !== 'Z');
}

function descendants(pid: number): number[] {
  const all = living();
  const found: number[] = [];
  for (const queue = [pid]; queue.length > 0; ) {
    const parent = queue.shift()!;
    for (const p of all.filter((p) => p.ppid === parent)) {
      found.push(p.pid);
      queue.push(p.pid);
    }
  }
  return found;
}

const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
};

describe('vigil in a real OpenClaw gateway', () => {
  const began = Date.now();
  const timings: Record<string, number> = {};
  const mark = (step: string) => {
    timings[step] = Date.now() - began;
  };
  let home = '';
  let node = '';
  let openclaw = '';
  let env: NodeJS.ProcessEnv = {};
  let trace = '';
  let port = 0;
  let release = '';
  let echo = '';
  let stub: Awaited<ReturnType<typeof startStubModel>> | undefined;
  let gateway: ChildProcess | undefined;
  let sessionA = '';
  let firstPollerRun = 0;
  let sleeperA = 0;
  let sleeperB = 0;

  const cli = (args: readonly string[]) => run(node, [openclaw, ...args], { env, timeoutMs: 120_000 });
  const agent = (key: string, message: string) =>
    cli(['agent', '--agent', 'main', '--session-key', key, '--message', message, '--json']);

  beforeAll(async () => {
    const nodeDir = join(CACHE, `node-${NODE_VERSION}`);
    const clawDir = join(CACHE, `openclaw-${OPENCLAW_VERSION}`);
    node = join(nodeDir, 'node_modules/node/bin/node');
    openclaw = join(clawDir, 'node_modules/openclaw/openclaw.mjs');
    await npmInstall(nodeDir, `node@${NODE_VERSION}`, process.env);
    const path = `${dirname(node)}:${process.env.PATH}`;
    await npmInstall(clawDir, `openclaw@${OPENCLAW_VERSION}`, { ...process.env, PATH: path });
    mark('installed');

    if (!existsSync(join(PLUGIN, 'dist/openclaw/entry.js'))) throw new Error('build first: pnpm build');
    home = mkdtempSync(join(tmpdir(), 'vigil-openclaw-'));
    // The README's install path: a self-contained copy with real (hoisted) dependencies.
    const stage = join(home, 'vigil-plugin');
    const deploy = [
      '--filter',
      '@vigil/gateway-plugin',
      'deploy',
      '--prod',
      '--legacy',
      '--config.node-linker=hoisted',
      stage,
    ];
    // The pnpm that runs this test command (a fresh machine has no global pnpm), else npx's.
    const execPath = process.env.npm_execpath;
    const [pnpm, ...pnpmArgs] =
      execPath !== undefined && /pnpm/.test(execPath)
        ? [process.execPath, execPath]
        : ['npx', '-y', 'pnpm@10.34.8'];
    const deployed = await run(pnpm!, [...pnpmArgs, ...deploy], {
      cwd: ROOT,
      env: process.env,
      timeoutMs: 120_000,
    });
    expect(deployed.code, deployed.out + deployed.err).toBe(0);
    trace = join(home, 'vigil-trace.jsonl');
    release = join(home, 'release');
    // Ends only when the test releases it after the agent's run ended: only a wake-up can report it.
    echo = `until [ -e '${release}' ]; do sleep 0.1; done; echo vigil-e2e-done; exit 0`;
    stub = await startStubModel(script(echo));
    const state = join(home, '.openclaw');
    const {
      NODE_OPTIONS: _o,
      VITEST: _v,
      VITEST_POOL_ID: _p,
      VITEST_WORKER_ID: _w,
      ...inherited
    } = process.env;
    env = {
      ...inherited,
      PATH: path,
      HOME: home,
      OPENCLAW_HOME: home,
      OPENCLAW_STATE_DIR: state,
      OPENCLAW_CONFIG_PATH: join(state, 'openclaw.json'),
      OPENCLAW_SKIP_CHANNELS: '1',
      OPENCLAW_DISABLE_BONJOUR: '1',
      OPENCLAW_NO_AUTO_UPDATE: '1',
      OPENCLAW_NO_RESPAWN: '1',
      NO_COLOR: '1',
      VIGIL_OPENCLAW_LOG: trace,
    };
    const install = await cli(['plugins', 'install', '--link', stage, '--force', '--accept-capabilities']);
    expect(install.code, install.out + install.err).toBe(0);

    port = await freePort();
    const file = join(state, 'openclaw.json');
    const config = readJson<{ plugins: { entries: Record<string, object> } }>(file);
    config.plugins.entries.vigil = {
      ...config.plugins.entries.vigil,
      config: { processes: { killGraceMs: 1000 } },
    };
    const model = {
      id: 'stub-1',
      name: 'Stub',
      reasoning: false,
      input: ['text'],
      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
      contextWindow: 128_000,
      maxTokens: 4096,
    };
    Object.assign(config, {
      logging: { file: join(home, 'openclaw.log') },
      models: {
        mode: 'merge',
        providers: {
          stub: { baseUrl: stub.url, apiKey: 'stub-key', api: 'openai-completions', models: [model] },
        },
      },
      agents: { defaults: { model: { primary: 'stub/stub-1' } } },
      gateway: { mode: 'local', bind: 'loopback', port, auth: { mode: 'none' } },
      tools: { toolSearch: false },
    });
    writeFileSync(file, JSON.stringify(config, null, 2));
    mark('set up');
  }, 900_000);

  afterAll(async () => {
    if (gateway !== undefined && gateway.exitCode === null && gateway.signalCode === null) {
      const exited = once(gateway, 'exit');
      killGroup(gateway.pid, 'SIGKILL');
      await exited;
    }
    for (const pid of [sleeperA, sleeperB]) if (pid > 0) killGroup(pid, 'SIGKILL');
    stub?.close();
    console.log(`openclaw e2e, ms since start: ${JSON.stringify(timings)}`);
    if (home && !process.env.VIGIL_E2E_KEEP) rmSync(home, { recursive: true, force: true });
  }, 30_000);

  it('loads vigil with its process tool, service and hooks, and the gateway starts the service', async () => {
    const inspecting = cli(['plugins', 'inspect', 'vigil', '--runtime', '--json']);
    const child = spawn(
      node,
      [openclaw, 'gateway', 'run', '--port', String(port), '--auth', 'none', '--bind', 'loopback'],
      {
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    gateway = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const read = (chunk: Buffer) => {
        output += chunk;
        if (/\[gateway\] ready/.test(output)) resolve();
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      child.once('exit', (code) =>
        reject(new Error(`the gateway exited (${code}) before it was ready:\n${output}`)),
      );
    });
    mark('gateway ready');
    expect(await traced(trace, (t) => t.event === 'service.start', 10_000)).toMatchObject({ pid: child.pid });

    const inspected = await inspecting;
    expect(inspected.code, inspected.err).toBe(0);
    const report = JSON.parse(inspected.out.slice(inspected.out.indexOf('{'))) as {
      plugin: Record<string, unknown>;
      typedHooks: { name: string }[];
    };
    expect(report.plugin).toMatchObject({ status: 'loaded', toolNames: ['process'], services: ['vigil'] });
    expect(report.typedHooks.map((h) => h.name).sort()).toEqual([
      'gateway_stop',
      'session_end',
      'session_start',
    ]);
  }, 180_000);

  it("opens a vigil session with its poller when a session starts, and the agent's process tool spawns into it", async () => {
    const [a, b] = await Promise.all([
      agent(KEY_A, 'VIGIL-E2E-A: run the build'),
      agent(KEY_B, 'VIGIL-E2E-B: start a server'),
    ]);
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    mark('agent runs ended');
    const opened = await traced(trace, (t) => t.event === 'session_start' && t.sessionKey === KEY_A, 10_000);
    sessionA = String(opened.sessionId);
    expect(opened.session).toMatchObject({ sessionId: sessionA, state: 'open', poller: { running: true } });
    firstPollerRun = (opened.session as { poller: { runId: number } }).poller.runId;
    const spawned = async (key: string, command: string) => {
      const found = await traced(
        trace,
        (t) =>
          t.event === 'tool' && t.sessionKey === key && (t.data as { command: string }).command === command,
        10_000,
      );
      return found as Trace & { sessionId: string; data: { pid: number; state: string } };
    };
    expect(await spawned(KEY_A, echo)).toMatchObject({ sessionId: sessionA, data: { state: 'running' } });
    sleeperA = (await spawned(KEY_A, SLEEPER)).data.pid;
    sleeperB = (await spawned(KEY_B, SLEEPER)).data.pid;
    expect(proc(sleeperA)).toMatchObject({ ppid: gateway!.pid, pgid: sleeperA });
    expect(proc(sleeperB)).toMatchObject({ ppid: gateway!.pid, pgid: sleeperB });
  }, 180_000);

  it("wakes the session with the background command's completion through OpenClaw's system events", async () => {
    writeFileSync(release, '');
    const released = Date.now();
    const seen = await stub!.next(isCompletion);
    mark('completion reached the model');
    // A new turn of session A, started by vigil's wake-up after the agent's run had ended.
    expect(seen.at).toBeGreaterThan(released);
    expect(seen.all).toContain('VIGIL-E2E-A');
    const injected = await traced(
      trace,
      (t) => t.event === 'inject' && String(t.text).includes('vigil-e2e-done'),
      1000,
    );
    expect(injected).toMatchObject({
      sessionId: sessionA,
      sessionKey: KEY_A,
      queued: true,
      type: 'completion',
    });
  }, 120_000);

  it('closes the vigil session and ends its processes when the session ends (/new), then reopens it', async () => {
    const reset = await agent(KEY_A, '/new');
    expect(reset.code, reset.err).toBe(0);
    expect(
      await traced(trace, (t) => t.event === 'session_end' && t.sessionId === sessionA, 20_000),
    ).toMatchObject({ reason: 'new' });
    mark('session ended');
    expect(living().filter((p) => p.pgid === sleeperA)).toEqual([]);
    expect(proc(sleeperB)?.state).not.toBe('Z');
    // OpenClaw starts the next session under the same id: a new poller serves it.
    const runId = (t: Trace) => (t.session as { poller: { runId: number } }).poller.runId;
    const reopened = await traced(
      trace,
      (t) => t.event === 'session_start' && t.sessionId === sessionA && runId(t) > firstPollerRun,
      10_000,
    );
    expect(reopened.session).toMatchObject({ state: 'open', poller: { running: true } });
  }, 120_000);

  it('leaves no vigil thread and no child process behind when the gateway stops', async () => {
    const child = gateway!;
    const tree = descendants(child.pid!);
    expect(tree).toContain(sleeperB);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
    mark('gateway stopped');
    expect(
      traces(trace)
        .filter((t) => t.event === 'stopped')
        .at(-1),
    ).toMatchObject({
      why: 'gateway_stop',
      stats: { sessions: 0, pollers: 0, threads: 0, processes: 0 },
    });
    const alive = living();
    expect(alive.filter((p) => tree.includes(p.pid) || p.pgid === sleeperB)).toEqual([]);
    expect(alive.filter((p) => cmdline(p.pid).includes('vigil-e2e-'))).toEqual([]);
  }, 60_000);
});
