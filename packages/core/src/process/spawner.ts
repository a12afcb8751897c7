import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VigilError } from '../errors.js';
import { type EnvScrub, VIGIL_SECRETS_ONLY } from '../secrets/child-env.js';
import { type ProcessIdentity, readIdentity } from './process-identity.js';
import { RemoteChild } from './remote-child.js';
import type { TerminalSize } from './spawn-spec.js';
import type { SpawnerReport, SpawnerRequest } from './spawner-protocol.js';

/** How long `close()` lets the helper take to exit on its own before SIGKILL. */
const EXIT_GRACE_MS = 2_000;
/** Two levels up from both `src/process` and `dist/process`. */
const SPAWNER_ENTRY = new URL('../../spawner/spawner-process.mjs', import.meta.url);

/** What a child is started with. */
export interface RemoteSpawnOptions {
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The file its stdout and stderr are appended to (the spawner opens it). */
  readonly output: string;
  /** Where the spawner writes its exit status when it ends. */
  readonly status: string | undefined;
  /** Run it in a pseudo-terminal of this size, whose output the spawner copies to `output`. */
  readonly pty: TerminalSize | null;
}

/**
 * Starts a vigil instance's children from a small helper process (`spawner/spawner-process.mjs`),
 * so that a spawn costs the main thread a message, whatever its memory: Node forks to spawn, and a
 * fork copies the forking process's page tables (about 25 ms per GB of RSS, measured by
 * `pnpm bench spawn`). The helper is started at the first spawn and again after it died; while no
 * child runs it does not keep Node alive.
 */
export class Spawner {
  readonly #onError: (error: VigilError) => void;
  readonly #scrub: EnvScrub;
  readonly #children = new Map<number, RemoteChild>();
  #helper: ChildProcess | undefined;
  /** The running helper's identity: the recorder of its children's exit statuses. */
  #helperIdentity: ProcessIdentity | null = null;
  #nextId = 0;
  #closed = false;

  /**
   * `onError` hears when the helper died while children ran (they are killed: nothing follows them).
   * The helper inherits no variable `scrub` denies (default: vigil's own secrets).
   */
  constructor(onError: (error: VigilError) => void, options: { readonly scrub?: EnvScrub } = {}) {
    if (!existsSync(SPAWNER_ENTRY)) {
      // Bundled without it: every spawn would fail, one by one. Say so once, at createVigil.
      throw new VigilError(
        'ERR_INVALID_CONFIG',
        `processes.spawner: 'helper' needs ${fileURLToPath(SPAWNER_ENTRY)}, which is missing (was @vigil/core bundled?); ship that file or set processes.spawner to 'direct'`,
        { details: { field: 'processes.spawner' } },
      );
    }
    this.#onError = onError;
    this.#scrub = options.scrub ?? VIGIL_SECRETS_ONLY;
  }

  /** The helper's pid, once started. */
  get pid(): number | undefined {
    return this.#helper?.pid;
  }

  /** Starts `file` with `args` in its own process group; throws `ERR_CLOSED` after `close()`. */
  spawn(file: string, args: readonly string[], options: RemoteSpawnOptions): RemoteChild {
    if (this.#closed) throw new VigilError('ERR_CLOSED', 'this vigil instance is closed');
    const helper = this.#helper ?? this.#start();
    const id = ++this.#nextId;
    const child = new RemoteChild(id, (request) => this.#send(helper, request), this.#helperIdentity);
    this.#children.set(id, child);
    if (this.#children.size === 1) this.#ref(helper, true);
    this.#send(helper, { type: 'spawn', id, file, args, ...options });
    return child;
  }

  /**
   * Lets the helper go once every child ended (their groups are the caller's to end first). With
   * `keepProcesses`, children still run: the helper is let go at once and lives on until the last of
   * them ended, recording each exit status, while nothing here follows them or kills them. Idempotent.
   */
  async close(options: { readonly keepProcesses?: boolean } = {}): Promise<void> {
    this.#closed = true;
    const helper = this.#helper;
    if (helper === undefined) return;
    if (options.keepProcesses === true) {
      this.#helper = undefined;
      this.#children.clear();
      this.#ref(helper, false);
      if (helper.connected) helper.disconnect();
      return;
    }
    if (helper.exitCode === null && helper.signalCode === null) {
      const exited = new Promise((resolve) => helper.once('exit', resolve));
      // Held until it is gone: a caller awaiting close() keeps Node alive meanwhile.
      this.#ref(helper, true);
      if (helper.connected) helper.disconnect();
      const stuck = setTimeout(() => helper.kill('SIGKILL'), EXIT_GRACE_MS);
      await exited;
      clearTimeout(stuck);
    }
  }

  #start(): ChildProcess {
    const helper = fork(SPAWNER_ENTRY, [], {
      execArgv: [],
      // Without the secrets: its children could read them from /proc/<its pid>/environ.
      env: this.#scrub.childEnv(undefined),
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      // Its own group: a terminal's Ctrl-C reaches the gateway, which ends the children, not this.
      detached: true,
    });
    this.#helper = helper;
    // Read before the helper could exit and be reaped: its pid still names it.
    this.#helperIdentity = helper.pid === undefined ? null : (readIdentity(helper.pid) ?? null);
    this.#ref(helper, false);
    helper.on('message', (report: SpawnerReport) => this.#report(report));
    // It could not start, or a message could not reach it: either way it is lost.
    helper.on('error', (error) => {
      helper.kill('SIGKILL');
      this.#exited(helper, error.message);
    });
    helper.once('exit', (code, signal) => this.#exited(helper, code ?? signal));
    return helper;
  }

  #send(helper: ChildProcess, request: SpawnerRequest): void {
    // A send after the helper died is answered by `lost` from its exit handler.
    if (helper.connected) helper.send(request);
  }

  #report(report: SpawnerReport): void {
    if (report.type === 'ready') return;
    const child = this.#children.get(report.id);
    if (report.type === 'exit' || report.type === 'failed') this.#forget(report.id);
    child?.report(report);
  }

  #exited(helper: ChildProcess, how: number | string | null): void {
    if (this.#helper !== helper) return;
    this.#helper = undefined;
    const children = [...this.#children.values()];
    this.#children.clear();
    if (children.length === 0) return;
    const why = `vigil's spawner process exited (${String(how)})`;
    this.#onError(
      new VigilError('ERR_INTERNAL', `${why}; the ${children.length} processes it ran were killed`),
    );
    for (const child of children) child.lost(why);
  }

  #forget(id: number): void {
    this.#children.delete(id);
    if (this.#children.size === 0 && this.#helper !== undefined) this.#ref(this.#helper, false);
  }

  /** Keeps Node alive through the helper only while one of its children runs. */
  #ref(helper: ChildProcess, ref: boolean): void {
    const channel = helper.channel as { ref(): void; unref(): void } | null | undefined;
    if (ref) {
      helper.ref();
      channel?.ref();
    } else {
      helper.unref();
      channel?.unref();
    }
  }
}
