/**
 * vigil inside a real OpenClaw gateway (test/support/openclaw/harness.ts): the stub model's
 * scripted replies call the `process` tool; nothing is simulated. The steps below run in order and
 * build on each other: each `it` is one stage of one gateway's life.
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HarnessPaths, OpenClawHarness } from './support/openclaw/harness.js';
import type { ChatRequest, Reply } from './support/openclaw/stub-model.js';
import { type Trace, traced, traces } from './support/openclaw/trace.js';
import { cmdline, descendants, living, procStat } from './support/proc.js';

const KEY_A = 'agent:main:vigil-e2e-a';
const KEY_B = 'agent:main:vigil-e2e-b';
/** Each session's sleeper says which it is, so the test can tell their processes apart. */
const SLEEPER_A = 'sleep 300; echo vigil-e2e-sleeper-a';
const SLEEPER_B = 'sleep 300; echo vigil-e2e-sleeper-b';

/** Ends only when the test creates the release file after the agent's run ended: only a wake-up can report it. */
const echoCommand = (paths: HarnessPaths) =>
  `until [ -e '${paths.release}' ]; do sleep 0.1; done; echo vigil-e2e-done; exit 0`;

const isCompletion = (all: string): boolean =>
  all.includes('[vigil] Background process') &&
  all.includes('vigil-e2e-done') &&
  all.includes('exited with code 0');

/** The stub model's script: session A spawns `echo` and a sleeper, session B a sleeper. */
function script(body: ChatRequest, paths: HarnessPaths): Reply {
  const messages = body.messages ?? [];
  const all = JSON.stringify(messages);
  if (messages.at(-1)?.role === 'tool') return { text: 'Started in the background; vigil will tell me.' };
  if (isCompletion(all)) return { text: 'SAW-COMPLETION: the build finished.' };
  const offered = (body.tools ?? []).some((tool) => tool.function?.name === 'process');
  if (!offered || messages.some((m) => m.role === 'tool')) return { text: 'stub reply' };
  if (all.includes('VIGIL-E2E-A')) {
    return {
      calls: [
        { action: 'spawn', command: echoCommand(paths) },
        { action: 'spawn', command: SLEEPER_A },
      ],
    };
  }
  if (all.includes('VIGIL-E2E-B')) return { calls: [{ action: 'spawn', command: SLEEPER_B }] };
  return { text: 'stub reply' };
}

/** The pid of the process group leader whose command line holds `command`, once it runs. */
async function groupLeaderRunning(command: string): Promise<number> {
  for (let tries = 0; tries < 500; tries++) {
    const leader = living().find((p) => p.pid === p.pgid && cmdline(p.pid).includes(command));
    if (leader !== undefined) return leader.pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no process runs ${command}`);
}

interface SessionStart extends Trace {
  readonly sessionId: string;
  readonly session: { readonly poller: { readonly runId: number } };
}

const runIdOf = (trace: Trace): number => (trace as SessionStart).session.poller.runId;

describe('vigil in a real OpenClaw gateway', () => {
  let harness: OpenClawHarness;
  /** What the stages learn and later stages check. */
  const seen = { sessionA: '', firstPollerRun: 0, sleeperA: 0, sleeperB: 0 };

  beforeAll(async () => {
    harness = await OpenClawHarness.create(script);
  }, 900_000);

  afterAll(async () => {
    for (const pid of [seen.sleeperA, seen.sleeperB]) {
      try {
        if (pid > 0) process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone, as it should be.
      }
    }
    await harness?.[Symbol.asyncDispose]();
  }, 30_000);

  it('loads vigil with its process tool, service and hooks, and the gateway starts the service', async () => {
    const inspecting = harness.cli(['plugins', 'inspect', 'vigil', '--runtime', '--json']);
    const gateway = await harness.startGateway();
    expect(await traced(harness.trace, (t) => t.event === 'service.start', 10_000)).toMatchObject({
      pid: gateway.pid,
    });

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
    // One agent run at a time: two `openclaw agent` processes contend for OpenClaw's state lock,
    // and on a loaded machine the second gives up ("another OpenClaw process owns state-lifecycle").
    const a = await harness.agent(KEY_A, 'VIGIL-E2E-A: run the build');
    const b = await harness.agent(KEY_B, 'VIGIL-E2E-B: start a server');
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    harness.mark('agent runs ended');
    const opened = await traced(
      harness.trace,
      (t) => t.event === 'session_start' && t.sessionKey === KEY_A,
      10_000,
    );
    seen.sessionA = String(opened.sessionId);
    expect(opened.session).toMatchObject({
      sessionId: seen.sessionA,
      state: 'open',
      poller: { running: true },
    });
    seen.firstPollerRun = runIdOf(opened);
    const spawned = async (key: string, command: string) => {
      const found = await traced(
        harness.trace,
        (t) =>
          t.event === 'tool' && t.sessionKey === key && (t.data as { command: string }).command === command,
        10_000,
      );
      return found as Trace & { sessionId: string; data: { pid: number; state: string } };
    };
    expect(await spawned(KEY_A, echoCommand(harness.paths))).toMatchObject({
      sessionId: seen.sessionA,
      data: { state: 'running' },
    });
    await spawned(KEY_A, SLEEPER_A);
    await spawned(KEY_B, SLEEPER_B);
    // The spawner process starts them a moment after the tool answered (its pid was still null).
    seen.sleeperA = await groupLeaderRunning(SLEEPER_A);
    seen.sleeperB = await groupLeaderRunning(SLEEPER_B);
    // Started by the gateway's spawner process (processes.spawner: helper), each in its own group.
    for (const pid of [seen.sleeperA, seen.sleeperB]) {
      const stat = procStat(pid);
      expect(stat).toMatchObject({ pgid: pid });
      expect(procStat(stat!.ppid)).toMatchObject({ ppid: harness.gateway.pid });
    }
  }, 180_000);

  it("wakes the session with the background command's completion through OpenClaw's system events", async () => {
    writeFileSync(harness.paths.release, '');
    const released = Date.now();
    const completed = await harness.model.next(isCompletion);
    harness.mark('completion reached the model');
    // A new turn of session A, started by vigil's wake-up after the agent's run had ended.
    expect(completed.at).toBeGreaterThan(released);
    expect(completed.all).toContain('VIGIL-E2E-A');
    const injected = await traced(
      harness.trace,
      (t) => t.event === 'inject' && String(t.text).includes('vigil-e2e-done'),
      1000,
    );
    expect(injected).toMatchObject({
      sessionId: seen.sessionA,
      sessionKey: KEY_A,
      queued: true,
      type: 'completion',
    });
  }, 120_000);

  it('closes the vigil session and ends its processes when the session ends (/new), then reopens it', async () => {
    const reset = await harness.agent(KEY_A, '/new');
    expect(reset.code, reset.err).toBe(0);
    expect(
      await traced(harness.trace, (t) => t.event === 'session_end' && t.sessionId === seen.sessionA, 20_000),
    ).toMatchObject({ reason: 'new' });
    harness.mark('session ended');
    expect(living().filter((p) => p.pgid === seen.sleeperA)).toEqual([]);
    expect(procStat(seen.sleeperB)?.state).not.toBe('Z');
    // OpenClaw starts the next session under the same id: a new poller serves it.
    const reopened = await traced(
      harness.trace,
      (t) => t.event === 'session_start' && t.sessionId === seen.sessionA && runIdOf(t) > seen.firstPollerRun,
      10_000,
    );
    expect(reopened.session).toMatchObject({ state: 'open', poller: { running: true } });
  }, 120_000);

  it('leaves no vigil thread and no child process behind when the gateway stops', async () => {
    const gateway = harness.gateway;
    const tree = descendants(gateway.pid!);
    expect(tree).toContain(seen.sleeperB);
    const exited = once(gateway, 'exit');
    gateway.kill('SIGTERM');
    await exited;
    harness.mark('gateway stopped');
    expect(
      traces(harness.trace)
        .filter((t) => t.event === 'stopped')
        .at(-1),
    ).toMatchObject({ why: 'gateway_stop', stats: { sessions: 0, pollers: 0, threads: 0, processes: 0 } });
    const alive = living();
    expect(alive.filter((p) => tree.includes(p.pid) || p.pgid === seen.sleeperB)).toEqual([]);
    expect(alive.filter((p) => cmdline(p.pid).includes('vigil-e2e-'))).toEqual([]);
  }, 60_000);
});
