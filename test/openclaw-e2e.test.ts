/**
 * vigil inside a real OpenClaw gateway (test/support/openclaw/harness.ts): the stub model's
 * scripted replies call vigil's `vigil_process` tool; nothing is simulated. The steps below run in order and
 * build on each other: each `it` is one stage of one gateway's life.
 */
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HarnessPaths, OpenClawHarness } from './support/openclaw/harness.js';
import { run } from './support/openclaw/run.js';
import type { ChatRequest, Reply } from './support/openclaw/stub-model.js';
import { type Trace, traced, traces } from './support/openclaw/trace.js';
import { cmdline, descendants, living, procStat } from './support/proc.js';

/** In every command of this run: a leftover of another run (a test process killed midway) is not this run's. */
const RUN = `vigil-e2e-${process.pid}`;
const KEY_A = 'agent:main:vigil-e2e-a';
const KEY_B = 'agent:main:vigil-e2e-b';
/** Each session's sleeper says which it is, so the test can tell their processes apart. */
const SLEEPER_A = `sleep 300; echo ${RUN}-sleeper-a`;
const SLEEPER_B = `sleep 300; echo ${RUN}-sleeper-b`;

/** Ends only when the test creates the release file after the agent's run ended: only a wake-up can report it. */
const echoCommand = (paths: HarnessPaths) =>
  `until [ -e '${paths.release}' ]; do sleep 0.1; done; echo ${RUN}-done; exit 0`;

/** Like `echoCommand`, released only after the gateway was killed and started again; exits with 3. */
const adoptedCommand = (paths: HarnessPaths) =>
  `until [ -e '${paths.releaseAdopted}' ]; do sleep 0.1; done; echo ${RUN}-adopted; exit 3`;

const completionOf = (marker: string, code: number) => (all: string) =>
  all.includes('[vigil] Background process') &&
  all.includes(marker) &&
  all.includes(`exited with code ${code}`);
const isCompletion = completionOf(`${RUN}-done`, 0);
const isAdoptedCompletion = completionOf(`${RUN}-adopted`, 3);

/** The names of the tools offered to the model in the request where session A's agent spawned. */
let toolsOfferedToA: readonly (string | undefined)[] = [];

/** The stub model's script: session A spawns `echo` and a sleeper, session B a sleeper and the adopted command. */
function script(body: ChatRequest, paths: HarnessPaths): Reply {
  const messages = body.messages ?? [];
  const all = JSON.stringify(messages);
  if (messages.at(-1)?.role === 'tool') return { text: 'Started in the background; vigil will tell me.' };
  if (isCompletion(all)) return { text: 'SAW-COMPLETION: the build finished.' };
  if (isAdoptedCompletion(all)) return { text: 'SAW-ADOPTED: the migration finished.' };
  const names = (body.tools ?? []).map((tool) => tool.function?.name);
  if (!names.includes('vigil_process') || messages.some((m) => m.role === 'tool'))
    return { text: 'stub reply' };
  if (all.includes('VIGIL-E2E-A')) {
    toolsOfferedToA = names;
    return {
      calls: [
        { action: 'spawn', command: echoCommand(paths) },
        { action: 'spawn', command: SLEEPER_A },
      ],
    };
  }
  if (all.includes('VIGIL-E2E-B')) {
    return {
      calls: [
        { action: 'spawn', command: SLEEPER_B },
        { action: 'spawn', command: adoptedCommand(paths) },
      ],
    };
  }
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

/**
 * Lets a scripted command finish (it waits for `release`) and checks that its completion reached the
 * model in a new turn of the session the agent was prompted with `prompt`, started by vigil's wake-up.
 */
async function completionTurn(
  harness: OpenClawHarness,
  turn: { readonly release: string; readonly match: (all: string) => boolean; readonly prompt: string },
): Promise<void> {
  writeFileSync(turn.release, '');
  const released = Date.now();
  const completed = await harness.model.next(turn.match);
  expect(completed.at).toBeGreaterThan(released);
  expect(completed.all).toContain(turn.prompt);
}

interface SessionStart extends Trace {
  readonly sessionId: string;
  readonly session: { readonly poller: { readonly runId: number } };
}

const runIdOf = (trace: Trace): number => (trace as SessionStart).session.poller.runId;

describe('vigil in a real OpenClaw gateway', () => {
  let harness: OpenClawHarness;
  /** What the stages learn and later stages check. */
  const seen = { sessionA: '', sessionB: '', firstPollerRun: 0, sleeperA: 0, sleeperB: 0, adopted: 0 };

  beforeAll(async () => {
    harness = await OpenClawHarness.create(script);
  }, 900_000);

  afterAll(async () => {
    for (const pid of [seen.sleeperA, seen.sleeperB, seen.adopted]) {
      try {
        if (pid > 0) process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone, as it should be.
      }
    }
    await harness?.[Symbol.asyncDispose]();
  }, 30_000);

  it("keeps vigil's journal the same on OpenClaw's Node (node:sqlite) as on the workspace's (better-sqlite3)", async () => {
    const script = fileURLToPath(new URL('./fixtures/journal-drivers.mjs', import.meta.url));
    const outcome = async (node: string) => {
      const { code, out, err } = await run(node, [script], { env: process.env, timeoutMs: 60_000 });
      expect({ code, err }).toEqual({ code: 0, err: '' });
      return JSON.parse(out) as { driver: string };
    };
    const [workspace, openclaw] = await Promise.all([outcome(process.execPath), outcome(harness.node)]);
    expect([workspace.driver, openclaw.driver]).toEqual(['better-sqlite3', 'node:sqlite']);
    // Folds, prunes, restore, the lock and a full journal come out the same on both.
    expect({ ...openclaw, driver: '' }).toEqual({ ...workspace, driver: '' });
    expect(openclaw).toMatchObject({ locked: 'ERR_STATE_LOCKED', full: 'ERR_JOURNAL_FULL', gapless: true });
  });

  it('loads vigil with its process tool, service and hooks, and the gateway starts the service', async () => {
    const gateway = await harness.startGateway();
    // vigil's journal lives in OpenClaw's state directory, under plugins/vigil.
    expect(await traced(harness.trace, (t) => t.event === 'service.start', 10_000)).toMatchObject({
      pid: gateway.pid,
      stateDir: join(harness.home, '.openclaw/plugins/vigil'),
    });

    // After the start: a CLI run beside a starting gateway can lose OpenClaw's state lock under load
    // ("another OpenClaw process owns state-lifecycle").
    const inspected = await harness.cli(['plugins', 'inspect', 'vigil', '--runtime', '--json']);
    expect(inspected.code, inspected.err).toBe(0);
    const report = JSON.parse(inspected.out.slice(inspected.out.indexOf('{'))) as {
      plugin: Record<string, unknown>;
      typedHooks: { name: string }[];
    };
    expect(report.plugin).toMatchObject({
      status: 'loaded',
      toolNames: ['vigil_process'],
      services: ['vigil'],
    });
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
    // One coherent set: vigil's tool for background commands, OpenClaw's `exec` for foreground ones
    // (with `process` denied it runs synchronously), no built-in `process`, no name offered twice.
    expect(toolsOfferedToA).toContain('vigil_process');
    expect(toolsOfferedToA).toContain('exec');
    expect(toolsOfferedToA).not.toContain('process');
    expect(new Set(toolsOfferedToA).size).toBe(toolsOfferedToA.length);
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
    seen.sessionB = (await spawned(KEY_B, SLEEPER_B)).sessionId;
    await spawned(KEY_B, adoptedCommand(harness.paths));
    // The spawner process starts them a moment after the tool answered (its pid was still null).
    seen.sleeperA = await groupLeaderRunning(SLEEPER_A);
    seen.sleeperB = await groupLeaderRunning(SLEEPER_B);
    seen.adopted = await groupLeaderRunning(adoptedCommand(harness.paths));
    // Started by the gateway's spawner process (processes.spawner: helper), each in its own group.
    for (const pid of [seen.sleeperA, seen.sleeperB]) {
      const stat = procStat(pid);
      expect(stat).toMatchObject({ pgid: pid });
      expect(procStat(stat!.ppid)).toMatchObject({ ppid: harness.gateway.pid });
    }
  }, 180_000);

  it("wakes the session with the background command's completion through OpenClaw's system events", async () => {
    await completionTurn(harness, {
      release: harness.paths.release,
      match: isCompletion,
      prompt: 'VIGIL-E2E-A',
    });
    harness.mark('completion reached the model');
    const injected = await traced(
      harness.trace,
      (t) => t.event === 'inject' && String(t.text).includes(`${RUN}-done`),
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

  it('re-adopts a command across a SIGKILL of the gateway and keeps it across a graceful restart, and its completion wakes the session after them', async () => {
    await harness.crashGateway();
    // The commands outlive the gateway: each runs in its own group, started by vigil's detached spawner.
    for (const pid of [seen.adopted, seen.sleeperB]) expect(procStat(pid)?.state).not.toBe('Z');
    expect(existsSync(join(harness.home, '.openclaw/plugins/vigil/journal.db'))).toBe(true);

    const gateway = await harness.startGateway();
    // The service takes back session B from the journal and attaches it to its OpenClaw route at once.
    expect(
      await traced(
        harness.trace,
        (t) => t.event === 'reattach' && t.pid === gateway.pid && t.sessionId === seen.sessionB,
        60_000,
      ),
    ).toMatchObject({ session: { state: 'open', activeProcesses: 2, poller: { running: true } } });

    // A graceful restart: SIGUSR2 makes OpenClaw restart in the same process (OPENCLAW_NO_RESPAWN).
    // gateway_stop says `gateway restarting`: vigil stops restart-safely, the commands run on, and
    // the service of the restarted gateway takes session B back again.
    process.kill(gateway.pid!, 'SIGUSR2');
    const restarted = await traced(
      harness.trace,
      (t) => t.event === 'stopped' && t.pid === gateway.pid,
      120_000,
    );
    expect(restarted).toMatchObject({ why: 'gateway_stop', keepProcesses: true });
    for (const pid of [seen.adopted, seen.sleeperB]) expect(procStat(pid)?.state).not.toBe('Z');
    expect(
      await traced(
        harness.trace,
        (t) =>
          t.event === 'reattach' &&
          t.pid === gateway.pid &&
          Number(t.at) > Number(restarted.at) &&
          t.sessionId === seen.sessionB,
        120_000,
      ),
    ).toMatchObject({ session: { state: 'open', activeProcesses: 2, poller: { running: true } } });
    harness.mark('gateway restarted in process');

    // The restarted gateway's turn of session B shows the completion with the real exit code.
    await completionTurn(harness, {
      release: harness.paths.releaseAdopted,
      match: isAdoptedCompletion,
      prompt: 'VIGIL-E2E-B',
    });
    harness.mark('adopted completion reached the model');
    const injected = traces(harness.trace).filter(
      (t) => t.event === 'inject' && String(t.text).includes(`${RUN}-adopted`),
    );
    expect(injected).toEqual([
      expect.objectContaining({
        pid: gateway.pid,
        sessionId: seen.sessionB,
        sessionKey: KEY_B,
        type: 'completion',
      }),
    ]);
    // Acknowledged before the crash, so never delivered again by the restarted gateway.
    expect(
      traces(harness.trace).filter(
        (t) => t.event === 'inject' && t.pid === gateway.pid && String(t.text).includes(`${RUN}-done`),
      ),
    ).toEqual([]);
    expect(living().filter((p) => p.pgid === seen.adopted)).toEqual([]);
  }, 300_000);

  it('leaves no vigil thread and no child process behind when the gateway stops', async () => {
    const gateway = harness.gateway;
    const tree = descendants(gateway.pid!);
    // Re-adopted after the restart: not a descendant of this gateway, and still ended by its stop.
    expect(procStat(seen.sleeperB)?.state).not.toBe('Z');
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
    expect(alive.filter((p) => cmdline(p.pid).includes(RUN))).toEqual([]);
  }, 60_000);
});
