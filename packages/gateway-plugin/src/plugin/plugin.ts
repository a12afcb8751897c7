import {
  createVigil,
  type Notification,
  type NotificationBatch,
  type SessionInfo,
  type Vigil,
  VigilError,
  type VigilOptions,
} from '@vigil/core';
import { deadline } from '@vigil/core/host';
import { createWorkerHost, type WorkerHostOptions } from '@vigil/worker';
import { createProcessTool, type ToolDefinition } from './process-tool.js';
import { type RenderedNotification, renderBatch, renderNotification } from './render.js';

export interface GatewayPluginOptions {
  /** vigil's configuration (see the README's config table). */
  readonly config?: Omit<VigilOptions, 'host'>;
  /** Where pollers run. Default: `'worker'` (pooled worker threads). */
  readonly host?: 'worker' | 'in-thread';
  readonly pool?: WorkerHostOptions['pool'];
  /**
   * The gateway's way of putting a message into a session (a system event plus a wake-up).
   * Resolve once the gateway took it: that acknowledges the notification; throw to have it retried.
   */
  readonly inject: (sessionId: string, message: RenderedNotification) => void | Promise<void>;
  /**
   * Sessions take `deliverBatch`: the notifications ready at once reach `inject` as one message
   * (`renderBatch`). Default false: one message per notification.
   */
  readonly batch?: boolean;
  /** Upper bound for the `sessionEnd` hook. Default: stopTimeoutMs + killGraceMs + 1 s. */
  readonly hookTimeoutMs?: number;
}

export interface SessionHookContext {
  readonly sessionId: string;
  readonly reason?: string;
}

/** A gateway-agnostic plugin: lifecycle hooks, agent tools, and the vigil behind them. */
export interface GatewayPlugin {
  /** The plugin's vigil, created on first use; every registration of this plugin shares it. */
  readonly vigil: Vigil;
  readonly hooks: {
    /**
     * Opens the vigil session; a no-op for a session that is already open. A session restored from
     * `stateDir` is attached: it gets `deliver` (its pending notifications follow) and its poller.
     */
    sessionStart(context: SessionHookContext): Promise<SessionInfo | undefined>;
    /** Closes the session within `hookTimeoutMs`; a no-op for an unknown or closed session. */
    sessionEnd(context: SessionHookContext): Promise<void>;
    /**
     * Closes vigil (every session, then the pool). Idempotent; safe if nothing ever started.
     * `keepProcesses` makes it restart-safe (see `vigil.close`): for a gateway that restarts.
     */
    gatewayStop(options?: { readonly keepProcesses?: boolean }): Promise<void>;
  };
  readonly tools: readonly ToolDefinition[];
  /** The `deliver` every session gets: renders the notification and calls `inject`. */
  deliver(notification: Notification): Promise<void>;
  /** The `deliverBatch` of sessions with `batch`: renders the batch as one message and calls `inject`. */
  deliverBatch(batch: NotificationBatch): Promise<void>;
}

/** Creates the plugin. Nothing starts until the first hook or tool call. */
export function createGatewayPlugin(options: GatewayPluginOptions): GatewayPlugin {
  if (typeof options?.inject !== 'function') {
    throw new VigilError('ERR_INVALID_CONFIG', 'gateway plugin: inject must be a function', {
      details: { field: 'inject' },
    });
  }
  let vigil: Vigil | undefined;
  let stopped = false;
  const get = (): Vigil => {
    if (stopped) throw new VigilError('ERR_CLOSED', 'the gateway is stopping; vigil is closed');
    vigil ??= createVigil({
      ...options.config,
      ...(options.host === 'in-thread' ? {} : { host: createWorkerHost({ pool: options.pool ?? {} }) }),
    });
    return vigil;
  };
  const deliver = async (notification: Notification): Promise<void> => {
    await options.inject(notification.sessionId, renderNotification(notification));
  };
  const deliverBatch = async ({ notifications }: NotificationBatch): Promise<void> => {
    await options.inject(notifications[0]!.sessionId, renderBatch(notifications));
  };
  const delivery = options.batch === true ? { deliverBatch } : { deliver };
  const bound = (): number => {
    const config = get().config;
    return options.hookTimeoutMs ?? config.stopTimeoutMs + config.processes.killGraceMs + 1000;
  };

  return {
    get vigil() {
      return get();
    },
    hooks: {
      async sessionStart({ sessionId }) {
        const v = get();
        const known = v.sessions.list().find((s) => s.sessionId === sessionId);
        // A session restored after a restart is open but dormant (no poller): `open` attaches it.
        if (known?.state === 'opening' || (known?.state === 'open' && known.poller.running)) return known;
        try {
          return await v.sessions.open(sessionId, delivery);
        } catch (error) {
          // A concurrent sessionStart for the same id won the race: that is the idempotent outcome.
          if (error instanceof VigilError && error.code === 'ERR_SESSION_EXISTS')
            return v.sessions.get(sessionId);
          throw error;
        }
      },
      async sessionEnd({ sessionId, reason }) {
        if (vigil === undefined || stopped) return;
        const known = vigil.sessions.list().find((s) => s.sessionId === sessionId);
        if (known === undefined || known.state === 'closed') return;
        await deadline(vigil.sessions.close(sessionId, { reason: reason ?? 'session ended' }), bound());
      },
      async gatewayStop(options = {}) {
        stopped = true;
        await vigil?.close({ keepProcesses: options.keepProcesses === true });
      },
    },
    tools: [createProcessTool(get)],
    deliver,
    deliverBatch,
  };
}
