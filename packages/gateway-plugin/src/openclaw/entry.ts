import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  configSchema,
  isSessionId,
  type SessionInfo,
  toVigilError,
  type Vigil,
  type VigilConfig,
  VigilError,
} from '@vigil/core';
import { deadline, parse } from '@vigil/core/host';
import { createGatewayPlugin, type GatewayPlugin } from '../plugin/plugin.js';
import { createProcessTool, type ToolDefinition } from '../plugin/process-tool.js';
import type { RenderedNotification } from '../plugin/render.js';
import { Routes } from './routes.js';
import type {
  OpenClawPluginApi,
  OpenClawPluginEntry,
  OpenClawTool,
  OpenClawToolContext,
  OpenClawToolResult,
} from './types.js';

/** Where every registration in the process finds the one shared vigil. */
const SHARED = Symbol.for('vigil.openclaw');
const PLUGIN_ID = 'vigil';
/** Within OpenClaw's 5 s budget for `gateway_stop`; `service.stop` and disposal wait again if needed. */
const STOP_BUDGET_MS = 4_000;
/** OpenClaw gives all `session_end` handlers 2 s together at shutdown. */
const SESSION_END_BUDGET_MS = 1_500;
/**
 * `gateway_stop`'s reason when the gateway restarts (`openclaw gateway restart`, SIGUSR2, a config
 * change that needs a restart, an update); a stop says `gateway stopping`, a plugin reload
 * `plugin replacement` (openclaw 2026.9.6: the reason of `server.close`, which has no other flag).
 */
const GATEWAY_RESTARTING = 'gateway restarting';
/** `session_end`'s reason for the sessions still active when the gateway closes to restart. */
const SESSION_END_RESTART = 'restart';

/**
 * State shared by every registration: OpenClaw evaluates the entry module afresh for each
 * `register` (full, discovery, tool-discovery), so module-level state would be split.
 */
interface SharedState {
  config: VigilConfig;
  /** The state directory of the current vigil, resolved when it starts (`stateDirOf`). */
  stateDir: string | undefined;
  plugin: GatewayPlugin | undefined;
  vigil: Vigil | undefined;
  /** The running `vigil.close()`; callers each wait for it within their own budget. */
  closing: Promise<void> | undefined;
  /** Registrations not yet disposed, oldest first; the last disposal stops vigil. */
  readonly apis: OpenClawPluginApi[];
  /** vigil session id → where OpenClaw routes system events for it; kept in `stateDir` when there is one. */
  readonly routes: Routes;
}

// Metadata only: every call goes through the shared plugin.
const processTool: ToolDefinition = createProcessTool(() => {
  throw new VigilError('ERR_CLOSED', 'process tool metadata has no vigil');
});

/**
 * The name vigil's process tool has in OpenClaw: not `process`, which is OpenClaw's own background
 * tool (paired with `exec`). The README's OpenClaw section says why and how the two are kept apart.
 */
export const OPENCLAW_TOOL_NAME = 'vigil_process';

/** Maps an OpenClaw session id or key to a vigil session id, the same way every time. */
export function vigilSessionId(openClawId: string): string {
  if (isSessionId(openClawId)) return openClawId;
  return `openclaw-${createHash('sha256').update(openClawId).digest('hex').slice(0, 40)}`;
}

function shared(config: VigilConfig): SharedState {
  const root = globalThis as { [SHARED]?: SharedState };
  root[SHARED] ??= {
    config,
    stateDir: undefined,
    plugin: undefined,
    vigil: undefined,
    closing: undefined,
    apis: [],
    routes: new Routes(),
  };
  return root[SHARED];
}

/** Appends one JSON line to `VIGIL_OPENCLAW_LOG` when set (tests and operators follow it). */
function trace(event: string, fields: Record<string, unknown> = {}): void {
  const file = process.env.VIGIL_OPENCLAW_LOG;
  if (!file) return;
  try {
    appendFileSync(file, `${JSON.stringify({ at: Date.now(), pid: process.pid, event, ...fields })}\n`);
  } catch {
    // Tracing must never break the gateway.
  }
}

/** The registration whose runtime delivers notifications: the latest `full` one, else the latest. */
function deliveryApi(state: SharedState): OpenClawPluginApi | undefined {
  return state.apis.findLast((api) => api.registrationMode === 'full') ?? state.apis.at(-1);
}

function inject(state: SharedState, sessionId: string, message: RenderedNotification): void {
  const route = state.routes.get(sessionId);
  const api = deliveryApi(state);
  if (api === undefined || route?.sessionKey === undefined) {
    // Thrown so that the outbox retries: the route appears with the session's next hook or tool call.
    throw new VigilError('ERR_UNKNOWN_SESSION', `no OpenClaw session key is known for ${sessionId}`);
  }
  const { sessionKey, agentId } = route;
  const scope = agentId === undefined ? { sessionKey } : { sessionKey, agentId };
  const system = api.runtime.system;
  // false means the same event is already queued (a retried delivery): that counts as delivered.
  const queued = system.enqueueSystemEvent(message.text, {
    ...scope,
    contextKey: `vigil:${(message.notifications ?? [message.notification]).map((n) => n.id).join(',')}`,
  });
  system.requestHeartbeat({ source: 'hook', intent: 'immediate', reason: 'hook:vigil', ...scope });
  trace('inject', { sessionId, sessionKey, queued, type: message.notification.type, text: message.text });
}

/**
 * vigil's state directory in OpenClaw: the configured `stateDir` (a relative one is taken from
 * OpenClaw's state directory), else `<OpenClaw state dir>/plugins/vigil`, OpenClaw's convention for a
 * plugin's files. Without a host that names its state directory, a relative or absent one stays as is.
 */
function stateDirOf(config: VigilConfig, api: OpenClawPluginApi | undefined): string | undefined {
  let openClawState: string | undefined;
  try {
    openClawState = api?.runtime.state?.resolveStateDir();
  } catch {
    // `runtime` throws in the registration modes that have none.
  }
  if (openClawState === undefined) return config.stateDir;
  return resolve(openClawState, config.stateDir ?? join('plugins', PLUGIN_ID));
}

function current(state: SharedState): GatewayPlugin {
  if (state.plugin !== undefined) return state.plugin;
  const api = deliveryApi(state);
  const stateDir = stateDirOf(state.config, api);
  state.stateDir = stateDir;
  if (stateDir === undefined) {
    api?.logger.warn(
      'vigil: OpenClaw names no state directory and no stateDir is set; vigil keeps its state in memory',
    );
  } else {
    state.routes.persistIn(stateDir, (error) =>
      api?.logger.warn(`vigil: saving the OpenClaw routes failed: ${toVigilError(error).message}`),
    );
  }
  state.plugin = createGatewayPlugin({
    config: { ...state.config, stateDir },
    pool: state.config.pool,
    hookTimeoutMs: SESSION_END_BUDGET_MS,
    // The notifications ready at once reach the agent as one system event (one turn, not one each).
    batch: true,
    inject: (sessionId, message) => inject(state, sessionId, message),
  });
  return state.plugin;
}

/** Opens the session (idempotent); a session still closing (a `/new` on the same id) is reopened after. */
async function openSession(state: SharedState, sessionId: string): Promise<SessionInfo | undefined> {
  const plugin = current(state);
  state.vigil = plugin.vigil;
  const known = state.vigil.sessions.list().find((session) => session.sessionId === sessionId);
  if (known?.state === 'closing') await state.vigil.sessions.close(sessionId).catch(() => undefined);
  return plugin.hooks.sessionStart({ sessionId });
}

/**
 * Attaches every session vigil restored from its state directory that has an OpenClaw route: its
 * pending notifications (a completion while the gateway was down among them) are delivered at once.
 * A restored session without a route stays dormant until its session comes back, or is reaped.
 */
async function reattach(state: SharedState): Promise<void> {
  const vigil = current(state).vigil;
  const known = new Map(vigil.sessions.list().map((session) => [session.sessionId, session]));
  for (const sessionId of state.routes.ids()) {
    const session = known.get(sessionId);
    if (session === undefined || session.state === 'closed') {
      state.routes.forget(sessionId, state.routes.get(sessionId));
    } else if (session.state === 'open' && !session.poller.running) {
      try {
        trace('reattach', { sessionId, session: await openSession(state, sessionId) });
      } catch (error) {
        deliveryApi(state)?.logger.warn(
          `vigil: reattaching ${sessionId} failed: ${toVigilError(error).message}`,
        );
      }
    }
  }
}

/**
 * Stops vigil (idempotent, safe if nothing started); each caller waits at most `STOP_BUDGET_MS`.
 * For a gateway that restarts, with a state directory, the stop is restart-safe: the commands run on
 * and the journal keeps the sessions open, for the vigil of the restarted gateway to take back.
 * Else every command ends (G17). The first caller decides.
 */
function stop(state: SharedState, why: string, restarting = false): Promise<void> {
  const { plugin, vigil } = state;
  if (plugin !== undefined) {
    const keepProcesses = restarting && state.stateDir !== undefined;
    state.plugin = undefined;
    state.vigil = undefined;
    trace('stopping', { why, keepProcesses });
    state.closing = plugin.hooks.gatewayStop({ keepProcesses }).then(
      () => trace('stopped', { why, keepProcesses, stats: vigil?.stats() }),
      (error: unknown) =>
        deliveryApi(state)?.logger.error(`vigil: stop failed: ${toVigilError(error).message}`),
    );
  }
  return state.closing === undefined
    ? Promise.resolve()
    : deadline(state.closing, STOP_BUDGET_MS).then(() => undefined);
}

function failure(error: VigilError): OpenClawToolResult {
  // OpenClaw's own shape for a failed tool call: `status: 'error'` marks it failed.
  const details = { status: 'error', tool: OPENCLAW_TOOL_NAME, code: error.code, error: error.message };
  return { content: [{ type: 'text', text: `process tool error: ${error.message}` }], details };
}

function bindTool(state: SharedState, context: OpenClawToolContext): OpenClawTool {
  const openClawId = context.sessionId ?? context.sessionKey;
  const sessionId = openClawId === undefined ? undefined : vigilSessionId(openClawId);
  if (sessionId !== undefined) {
    state.routes.remember(sessionId, { sessionKey: context.sessionKey, agentId: context.agentId });
  }
  return {
    name: OPENCLAW_TOOL_NAME,
    description: processTool.description,
    parameters: processTool.inputSchema,
    async execute(_toolCallId, params, signal) {
      try {
        if (sessionId === undefined) {
          throw new VigilError(
            'ERR_UNKNOWN_SESSION',
            'the process tool runs only inside an OpenClaw session',
          );
        }
        await openSession(state, sessionId);
        const tool = current(state).tools.find((t) => t.name === processTool.name)!;
        const result = await tool.execute(
          params,
          signal === undefined ? { sessionId } : { sessionId, signal },
        );
        trace('tool', { sessionId, sessionKey: context.sessionKey, params, data: result.data });
        const action = (params as { action?: unknown }).action;
        // The result sits under `result`: its `exitCode` or `timedOut` must not grade the call.
        return {
          content: [{ type: 'text', text: result.text }],
          details: { ok: true, action, result: result.data },
        };
      } catch (error) {
        const vigilError = toVigilError(error);
        trace('tool.error', { sessionId, code: vigilError.code, message: vigilError.message });
        return failure(vigilError);
      }
    },
  };
}

function registerRuntime(state: SharedState, api: OpenClawPluginApi): void {
  const warn = (what: string, error: unknown) =>
    api.logger.warn(`vigil: ${what} failed: ${toVigilError(error).message}`);
  api.registerService({
    id: 'vigil',
    // With a state directory vigil starts now and takes back what a previous gateway left running;
    // in memory it starts lazily with the first session or tool call.
    start: async () => {
      // The vigil of a gateway that restarts in this process must have let go of the state directory.
      await state.closing;
      current(state);
      trace('service.start', { stateDir: state.stateDir });
      if (state.stateDir !== undefined) await reattach(state);
    },
    stop: () => stop(state, 'service.stop'),
  });
  api.on('session_start', async (event, context) => {
    const sessionId = vigilSessionId(event.sessionId);
    state.routes.remember(sessionId, {
      sessionKey: event.sessionKey ?? context.sessionKey,
      agentId: context.agentId,
    });
    try {
      const session = await openSession(state, sessionId);
      trace('session_start', { sessionId, sessionKey: event.sessionKey, session });
    } catch (error) {
      warn(`opening session ${sessionId}`, error);
    }
  });
  api.on('session_end', async (event) => {
    const sessionId = vigilSessionId(event.sessionId);
    // The session goes on after the restart: its commands and its route stay for the next vigil.
    if (event.reason === SESSION_END_RESTART) {
      trace('session_end.kept', { sessionId, reason: event.reason });
      return;
    }
    // Never creates vigil: at shutdown gateway_stop already closed it.
    const plugin = state.plugin;
    if (plugin === undefined) return;
    const route = state.routes.get(sessionId);
    try {
      await plugin.hooks.sessionEnd({
        sessionId,
        reason: `openclaw session end (${event.reason ?? 'unknown'})`,
      });
      // A session_start for the same id (OpenClaw's /new) may have come meanwhile: keep its route.
      state.routes.forget(sessionId, route);
      trace('session_end', { sessionId, reason: event.reason, stats: state.vigil?.stats() });
    } catch (error) {
      warn(`closing session ${sessionId}`, error);
    }
  });
  api.on('gateway_stop', (event) => stop(state, 'gateway_stop', event.reason === GATEWAY_RESTARTING));
}

function register(api: OpenClawPluginApi): void {
  const mode = api.registrationMode;
  if (mode !== 'full' && mode !== 'discovery' && mode !== 'tool-discovery') return;
  const config = parse(configSchema, api.pluginConfig ?? {}, {
    what: 'vigil config (plugins.entries.vigil.config)',
    code: 'ERR_INVALID_CONFIG',
  });
  const state = shared(config);
  // A running vigil keeps the config it started with; the next start picks up a changed one.
  if (state.plugin === undefined) state.config = config;
  state.apis.push(api);
  api.lifecycle?.onDispose?.(() => {
    state.apis.splice(state.apis.indexOf(api), 1);
    return state.apis.length === 0 ? stop(state, 'dispose') : undefined;
  });
  api.registerTool((context) => bindTool(state, context), { name: OPENCLAW_TOOL_NAME });
  // Registering starts nothing (the service does, in the gateway); discovery modes list what is here.
  registerRuntime(state, api);
  trace('register', { mode, live: state.apis.length });
}

/** OpenClaw loads this module's default export; the one default export in vigil, as OpenClaw requires. */
const entry: OpenClawPluginEntry = {
  id: PLUGIN_ID,
  name: PLUGIN_ID,
  description:
    'Background processes for agents: spawn, follow and get notified when they finish or print a watched pattern.',
  register,
};
export default entry;
