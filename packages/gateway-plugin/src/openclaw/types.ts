/**
 * The slice of OpenClaw's plugin API (openclaw 2026.9.x, `openclaw/plugin-sdk`) that vigil uses,
 * declared here so that vigil has no dependency on the `openclaw` package.
 */

/** How OpenClaw loaded the plugin; only `full` is a live gateway activation. */
export type OpenClawRegistrationMode =
  | 'full'
  | 'discovery'
  | 'tool-discovery'
  | 'setup-only'
  | 'setup-runtime'
  | 'cli-metadata';

export interface OpenClawLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface OpenClawSystemEventOptions {
  readonly sessionKey: string;
  readonly agentId?: string;
  /**
   * Events with the same context key and text are queued once, while the first still waits in the
   * session's in-memory queue: OpenClaw has no idempotency key that outlives a turn or the process.
   */
  readonly contextKey?: string;
}

export interface OpenClawWakeRequest {
  readonly source: 'hook';
  readonly intent: 'immediate';
  readonly reason?: string;
  readonly sessionKey?: string;
  readonly agentId?: string;
}

export interface OpenClawRuntime {
  /** Optional: an API host that does not offer it leaves vigil in memory unless `stateDir` is configured. */
  readonly state?: {
    /** OpenClaw's state directory (`OPENCLAW_STATE_DIR`, else `~/.openclaw`). */
    resolveStateDir(): string;
  };
  readonly system: {
    /** Queues a system event for the session's next turn; false if it was a duplicate. */
    enqueueSystemEvent(text: string, options: OpenClawSystemEventOptions): boolean;
    /** Wakes the session so that it takes its next turn now. */
    requestHeartbeat(request: OpenClawWakeRequest): void;
  };
}

export interface OpenClawService {
  readonly id: string;
  start(context: unknown): void | Promise<void>;
  stop?(context: unknown): void | Promise<void>;
}

/** What a tool factory learns about the run that assembles its tools. */
export interface OpenClawToolContext {
  readonly agentId?: string;
  readonly sessionKey?: string;
  /** Ephemeral session UUID. */
  readonly sessionId?: string;
}

export interface OpenClawToolResult {
  readonly content: readonly { readonly type: 'text'; readonly text: string }[];
  /** Structured result; `status`, `ok`, `error`, `timedOut` and `exitCode` at its top level grade the call. */
  readonly details: unknown;
}

export interface OpenClawTool {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of `params`. */
  readonly parameters: Record<string, unknown>;
  execute(toolCallId: string, params: unknown, signal?: AbortSignal): Promise<OpenClawToolResult>;
}

export type OpenClawToolFactory = (context: OpenClawToolContext) => OpenClawTool | null | undefined;

export interface OpenClawSessionStartEvent {
  readonly sessionId: string;
  readonly sessionKey?: string;
  readonly resumedFrom?: string;
}

export interface OpenClawSessionEndEvent {
  readonly sessionId: string;
  readonly sessionKey?: string;
  /** `new`, `reset`, `idle`, `daily`, `compaction`, `deleted`, `shutdown`, `restart` or `unknown`. */
  readonly reason?: string;
}

export interface OpenClawGatewayStopEvent {
  /** `gateway restarting`, `gateway stopping` or `plugin replacement` (an in-process plugin reload). */
  readonly reason?: string;
}

export interface OpenClawSessionContext {
  readonly agentId?: string;
  readonly sessionId: string;
  readonly sessionKey?: string;
}

export interface OpenClawHooks {
  session_start(event: OpenClawSessionStartEvent, context: OpenClawSessionContext): void | Promise<void>;
  session_end(event: OpenClawSessionEndEvent, context: OpenClawSessionContext): void | Promise<void>;
  gateway_stop(event: OpenClawGatewayStopEvent, context: unknown): void | Promise<void>;
}

export interface OpenClawPluginApi {
  readonly id: string;
  readonly registrationMode: OpenClawRegistrationMode;
  /** This plugin's entry under `plugins.entries.<id>.config`. */
  readonly pluginConfig?: Record<string, unknown>;
  /** Throws on access in `cli-metadata` and `setup-only` modes. */
  readonly runtime: OpenClawRuntime;
  readonly logger: OpenClawLogger;
  /** Optional: an API host without a managed plugin instance omits it. */
  readonly lifecycle?: {
    onDispose?(dispose: () => void | Promise<void>): () => void;
  };
  registerService(service: OpenClawService): void;
  registerTool(factory: OpenClawToolFactory, options?: { readonly name?: string }): void;
  on<K extends keyof OpenClawHooks>(hookName: K, handler: OpenClawHooks[K]): void;
}

/** The default export OpenClaw expects from a plugin's entry module. */
export interface OpenClawPluginEntry {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  register(api: OpenClawPluginApi): void;
}
