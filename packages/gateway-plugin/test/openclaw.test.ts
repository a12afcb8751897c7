import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type SessionInfo, type Vigil } from '@vigil/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { outputContains } from '../../../test/support/fixtures.js';
import { cmdline, liveMembers, living } from '../../../test/support/proc.js';
import { startedPid } from '../../../test/support/processes.js';
import { raceIt } from '../../../test/support/race.js';
import entry, { vigilSessionId } from '../src/openclaw/entry.js';
import type {
  OpenClawHooks,
  OpenClawPluginApi,
  OpenClawPluginEntry,
  OpenClawRegistrationMode,
  OpenClawService,
  OpenClawSystemEventOptions,
  OpenClawToolContext,
  OpenClawToolFactory,
  OpenClawWakeRequest,
} from '../src/openclaw/types.js';

const SHARED = Symbol.for('vigil.openclaw');
type Shared = { plugin?: { vigil: Vigil } };
const root = globalThis as { [SHARED]?: Shared };

interface SystemEvent {
  readonly text: string;
  readonly options: OpenClawSystemEventOptions;
}

/** An OpenClaw plugin API that records what the plugin registers and what it sends into sessions. */
function fakeApi(mode: OpenClawRegistrationMode = 'full', pluginConfig: Record<string, unknown> = {}) {
  const hooks: Partial<OpenClawHooks> = {};
  const services: OpenClawService[] = [];
  const factories: OpenClawToolFactory[] = [];
  const disposers: (() => void | Promise<void>)[] = [];
  const events: SystemEvent[] = [];
  const wakes: OpenClawWakeRequest[] = [];
  const waiters = new Set<{ match: (e: SystemEvent) => boolean; resolve: (e: SystemEvent) => void }>();
  const api: OpenClawPluginApi = {
    id: 'vigil',
    registrationMode: mode,
    pluginConfig,
    runtime: {
      system: {
        enqueueSystemEvent(text, options) {
          const event = { text, options };
          events.push(event);
          for (const waiter of waiters) {
            if (!waiter.match(event)) continue;
            waiters.delete(waiter);
            waiter.resolve(event);
          }
          return true;
        },
        requestHeartbeat: (request) => {
          wakes.push(request);
        },
      },
    },
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    lifecycle: {
      onDispose: (dispose) => {
        disposers.push(dispose);
        return () => undefined;
      },
    },
    registerService: (service) => {
      services.push(service);
    },
    registerTool: (factory) => {
      factories.push(factory);
    },
    on: (name, handler) => {
      (hooks as Record<string, unknown>)[name] = handler;
    },
  };
  const nextEvent = (match: (e: SystemEvent) => boolean) =>
    new Promise<SystemEvent>((resolve) => {
      const seen = events.find(match);
      if (seen) resolve(seen);
      else waiters.add({ match, resolve });
    });
  const tool = (context: OpenClawToolContext) => factories[0]!(context)!;
  return { api, hooks, services, disposers, events, wakes, nextEvent, tool };
}

type Fake = ReturnType<typeof fakeApi>;
const registered: Fake[] = [];

function register(fake: Fake, from: OpenClawPluginEntry = entry): Fake {
  from.register(fake.api);
  registered.push(fake);
  return fake;
}

/** The process group whose leader runs `command` (vigil may learn its pid after its first output). */
function groupOf(command: string): number {
  const leader = living().find((p) => p.pid === p.pgid && cmdline(p.pid).includes(command));
  if (leader === undefined) throw new Error(`no process group runs ${command}`);
  return leader.pgid;
}

const vigil = (): Vigil => root[SHARED]!.plugin!.vigil;
const session = (sessionId: string): SessionInfo | undefined =>
  vigil()
    .sessions.list()
    .find((s) => s.sessionId === sessionId);

afterEach(async () => {
  // OpenClaw's shutdown order: gateway_stop, service.stop, then disposal of every registration.
  for (const fake of registered.splice(0)) {
    await fake.hooks.gateway_stop?.({}, {});
    await fake.services[0]?.stop?.({});
    for (const dispose of fake.disposers) await dispose();
  }
  delete root[SHARED];
});

describe('OpenClaw plugin entry', () => {
  it('declares the manifest id and registers the service, the process tool and the three hooks', () => {
    const fake = register(fakeApi());
    expect(entry.id).toBe('vigil');
    expect(fake.services.map((s) => s.id)).toEqual(['vigil']);
    expect(Object.keys(fake.hooks).sort()).toEqual(['gateway_stop', 'session_end', 'session_start']);
    const tool = fake.tool({ sessionId: 's', sessionKey: 'agent:main:s' });
    expect(tool.name).toBe('vigil_process');
    expect(tool.parameters).toMatchObject({ type: 'object', required: ['action'] });
  });

  it('shares one vigil between registrations, also when OpenClaw loads the entry module afresh', async () => {
    vi.resetModules();
    const fresh = (await import('../src/openclaw/entry.js')).default;
    expect(fresh).not.toBe(entry);
    const full = register(fakeApi('full'));
    const discovery = register(fakeApi('tool-discovery'), fresh);
    await full.hooks.session_start!({ sessionId: 's1', sessionKey: 'agent:main:a' }, { sessionId: 's1' });
    const started = await discovery
      .tool({ sessionId: 's1', sessionKey: 'agent:main:a' })
      .execute('call-1', { action: 'spawn', command: 'sleep 30' });
    const listed = await full.tool({ sessionId: 's1' }).execute('call-2', { action: 'list' });
    expect(listed.content[0]!.text).toContain(
      (started.details as { result: { processId: string } }).result.processId,
    );
    expect(vigil().stats()).toMatchObject({ sessions: 1, processes: 1 });
  });

  it('stops idempotently, also before start ran, and starts a fresh vigil afterwards', async () => {
    const fake = register(fakeApi());
    const [service] = fake.services;
    await service!.stop!({});
    await service!.stop!({});
    await fake.hooks.gateway_stop!({}, {});
    expect(root[SHARED]!.plugin).toBeUndefined();
    await service!.start({});
    await fake.hooks.session_start!({ sessionId: 's1', sessionKey: 'k' }, { sessionId: 's1' });
    const first = vigil();
    await Promise.all([fake.hooks.gateway_stop!({}, {}), service!.stop!({}), service!.stop!({})]);
    expect(first.stats()).toMatchObject({ sessions: 0, pollers: 0, processes: 0 });
    await fake.hooks.session_start!({ sessionId: 's2', sessionKey: 'k' }, { sessionId: 's2' });
    expect(vigil()).not.toBe(first);
    expect(session('s2')?.state).toBe('open');
  });

  it("ends every member of a session's process groups on the service stop, a TERM-ignoring grandchild included (G17)", async () => {
    const fake = register(fakeApi('full', { processes: { killGraceMs: 200 } }));
    await fake.services[0]!.start({});
    const route = { sessionId: 'stop-1', sessionKey: 'agent:main:stop' };
    // The leader dies of SIGTERM; the grandchild says "ready" once it ignores SIGTERM.
    const command = `sh -c 'trap "" TERM; echo ready; exec sleep 1000' & wait`;
    await fake.tool(route).execute('c', { action: 'spawn', command });
    const [spawned] = vigil().processes.list();
    await outputContains(vigil(), spawned!.processId, 'ready');
    const pgid = await startedPid(vigil(), spawned!.processId);
    expect(liveMembers(pgid)).toHaveLength(2);
    await fake.services[0]!.stop!({});
    expect(liveMembers(pgid)).toEqual([]);
  });

  raceIt(
    "keeps a session's commands running across OpenClaw's restart (session_end 'restart', gateway_stop 'gateway restarting') for the restarted gateway's vigil, and ends them on a stop",
    async () => {
      const stateDir = mkdtempSync(join(tmpdir(), 'vigil-openclaw-restart-'));
      try {
        const config = { stateDir, processes: { killGraceMs: 200 } };
        const ids = { sessionId: 'restart-1', sessionKey: 'agent:main:restart' };
        const release = join(stateDir, 'release');
        const before = register(fakeApi('full', config));
        await before.services[0]!.start({});
        await before.hooks.session_start!(ids, ids);
        const command = `echo ready; until [ -e '${release}' ]; do sleep 0.05; done; echo released`;
        await before.tool(ids).execute('c', { action: 'spawn', command });
        const [spawned] = vigil().processes.list();
        await outputContains(vigil(), spawned!.processId, 'ready');
        const pgid = groupOf(release);
        // Restarted right after its first output: the stop waits for the spawner's report of its pid.

        // OpenClaw's in-process restart: the sessions still active end with reason 'restart', the
        // gateway stops with reason 'gateway restarting', then the service stops and the registration goes.
        await before.hooks.session_end!({ ...ids, reason: 'restart' }, ids);
        await before.hooks.gateway_stop!({ reason: 'gateway restarting' }, {});
        await before.services[0]!.stop!({});
        for (const dispose of before.disposers) await dispose();
        expect(liveMembers(pgid)).not.toEqual([]);

        const after = register(fakeApi('full', config));
        await after.services[0]!.start({});
        expect(session(ids.sessionId)).toMatchObject({ state: 'open', poller: { running: true } });
        writeFileSync(release, '');
        const event = await after.nextEvent((e) => e.text.includes('released'));
        expect(event.text).toContain('exited with code 0');
        expect(event.options.sessionKey).toBe(ids.sessionKey);

        // A stop (not a restart) ends every command, also with a state directory (G17).
        const never = `${release}-never`;
        const waiting = `echo up; until [ -e '${never}' ]; do sleep 0.05; done`;
        await after.tool(ids).execute('c', { action: 'spawn', command: waiting });
        const sleeper = vigil()
          .processes.list()
          .find((p) => p.command === waiting)!;
        await outputContains(vigil(), sleeper.processId, 'up');
        const sleeperGroup = groupOf(never);
        await after.hooks.gateway_stop!({ reason: 'gateway stopping' }, {});
        expect(liveMembers(sleeperGroup)).toEqual([]);
      } finally {
        // What a failed run left running; a passing one leaves nothing.
        for (const p of living().filter((p) => p.pid === p.pgid && cmdline(p.pid).includes(stateDir))) {
          process.kill(-p.pgid, 'SIGKILL');
        }
        rmSync(stateDir, { recursive: true, force: true });
      }
    },
  );

  it('keeps vigil while another registration lives, and stops it when the last one is disposed', async () => {
    const listing = register(fakeApi('tool-discovery'));
    const full = register(fakeApi('full'));
    await full.hooks.session_start!({ sessionId: 's1', sessionKey: 'k' }, { sessionId: 's1' });
    const running = vigil();
    await listing.disposers[0]!();
    expect(session('s1')?.state).toBe('open');
    await full.disposers[0]!();
    expect(root[SHARED]!.plugin).toBeUndefined();
    expect(running.stats()).toMatchObject({ sessions: 0, pollers: 0 });
  });

  it('opens a session with its poller on session_start, closes it on session_end and reopens the same id', async () => {
    const fake = register(fakeApi());
    const start = () =>
      fake.hooks.session_start!({ sessionId: 'chat-1', sessionKey: 'k' }, { sessionId: 'chat-1' });
    await start();
    expect(session('chat-1')).toMatchObject({ state: 'open', poller: { running: true } });
    await fake.hooks.session_end!({ sessionId: 'chat-1', reason: 'new' }, { sessionId: 'chat-1' });
    expect(session('chat-1')).toMatchObject({ state: 'closed', closeReason: 'openclaw session end (new)' });
    expect(vigil().stats().pollers).toBe(0);
    await start();
    expect(session('chat-1')).toMatchObject({ state: 'open', poller: { running: true } });
  });

  it('keeps delivering to a session that /new ends and restarts under the same id at once', async () => {
    const fake = register(fakeApi());
    const ids = { sessionId: 'chat-2', sessionKey: 'agent:main:chat' };
    const tool = fake.tool(ids);
    await fake.hooks.session_start!(ids, ids);
    // OpenClaw fires session_start while session_end still closes the session.
    await Promise.all([
      fake.hooks.session_end!({ ...ids, reason: 'new' }, ids),
      fake.hooks.session_start!(ids, ids),
    ]);
    expect(session('chat-2')).toMatchObject({ state: 'open', poller: { running: true } });
    await tool.execute('c', { action: 'spawn', command: 'echo again' });
    const event = await fake.nextEvent((e) => e.text.includes('again'));
    expect(event.options.sessionKey).toBe('agent:main:chat');
  });

  it('delivers a completion as a system event plus an immediate wake-up for the session key', async () => {
    const fake = register(fakeApi());
    const route = { sessionId: 'uuid-1', sessionKey: 'agent:main:build', agentId: 'main' };
    const tool = fake.tool(route);
    const started = await tool.execute('call-1', { action: 'spawn', command: 'echo built; exit 0' });
    expect(started.content[0]!.text).toMatch(/^Started proc_[0-9a-f]{12} `echo built; exit 0`/);
    expect(started.details).toMatchObject({ ok: true, action: 'spawn', result: { sessionId: 'uuid-1' } });
    const event = await fake.nextEvent((e) => e.text.includes('exited with code 0'));
    expect(event.text).toContain('built');
    expect(event.options).toMatchObject({ sessionKey: 'agent:main:build', agentId: 'main' });
    expect(event.options.contextKey).toMatch(/^vigil:/);
    expect(fake.wakes).toContainEqual({
      source: 'hook',
      intent: 'immediate',
      reason: 'hook:vigil',
      sessionKey: 'agent:main:build',
      agentId: 'main',
    });
  });

  it('returns tool failures as an error result instead of throwing', async () => {
    const fake = register(fakeApi());
    const bad = await fake.tool({ sessionId: 's', sessionKey: 'k' }).execute('c', { action: 'spawn' });
    expect(bad.content[0]!.text).toMatch(/^process tool error: .*command: is required/);
    expect(bad.details).toMatchObject({ status: 'error', tool: 'vigil_process', code: 'ERR_INVALID_INPUT' });
    const orphan = await fake.tool({}).execute('c', { action: 'list' });
    expect(orphan.details).toMatchObject({ status: 'error', code: 'ERR_UNKNOWN_SESSION' });
  });

  it('closes a session whose session_end never comes through the idle reaper', async () => {
    const fake = register(fakeApi('full', { sessionIdleTtlMs: 50 }));
    await fake.hooks.session_start!({ sessionId: 'local-1', sessionKey: 'k' }, { sessionId: 'local-1' });
    const closed = new Promise<SessionInfo>((resolve) => vigil().on('session:closed', resolve));
    expect(await closed).toMatchObject({ sessionId: 'local-1', closeReason: 'idle' });
  });

  it('maps OpenClaw ids outside vigil session id alphabet to a stable safe id', () => {
    expect(vigilSessionId('agent:main:build')).toBe('agent:main:build');
    const mapped = vigilSessionId('agent:main:whatsapp/+1 555 0100');
    expect(mapped).toMatch(/^openclaw-[0-9a-f]{40}$/);
    expect(vigilSessionId('agent:main:whatsapp/+1 555 0100')).toBe(mapped);
  });

  it('rejects an invalid plugin config with ERR_INVALID_CONFIG naming the field', () => {
    expect(() => entry.register(fakeApi('full', { pool: { minThreads: 4, maxThreads: 2 } }).api)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_CONFIG',
        message: expect.stringMatching(/pool\.minThreads/),
      }),
    );
    expect(() => entry.register(fakeApi('full', { stopTimeoutMs: -1 }).api)).toThrow(/stopTimeoutMs/);
  });

  it("keeps openclaw.plugin.json's configSchema equal to vigil's zod config", () => {
    const manifest = JSON.parse(readFileSync(new URL('../openclaw.plugin.json', import.meta.url), 'utf8'));
    expect(manifest.configSchema).toEqual(z.toJSONSchema(configSchema, { io: 'input' }));
    expect(manifest).toMatchObject({
      id: entry.id,
      activation: { onStartup: true },
      contracts: { tools: ['vigil_process'] },
    });
  });
});
