import { type ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { constants } from 'node:os';
import { VigilError } from '../errors.js';
import type { StartedChild } from './remote-child.js';
import type { Spawner } from './spawner.js';

/** Options of `ChildRun.start`. */
export interface ChildRunOptions {
  /** A string runs with `/bin/sh -c`; an array is argv, run without a shell. */
  readonly command: string | readonly string[];
  /** Working directory. Default: this process's. */
  readonly cwd?: string;
  /** Variables merged over `process.env`. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long `kill()` waits after its signal before SIGKILL to the process group. */
  readonly killGraceMs: number;
  /**
   * An open, writable file descriptor (opened with `O_APPEND`): the child's stdout and stderr, both
   * written to it directly in the order the child writes them. Output never passes through this
   * process. The caller keeps ownership of the descriptor and may close it once `start` returned.
   * With `spawner`: the path of that file, which the spawner opens.
   */
  readonly output: number | string;
  /** Start the child from this helper process rather than by forking this one. */
  readonly spawner?: Spawner;
}

/** How a run ended: the child exited (or was killed by `signal`), or it never started. */
export type ChildEnd =
  | { readonly kind: 'exited'; readonly exitCode: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly kind: 'failed_start'; readonly error: string };

/** Callbacks of one run. They must not throw. */
export interface ChildRunHandlers {
  /**
   * Called once the child runs, before `onEnd`, when its `pid` was not known yet as `start` returned
   * (a spawner starts it). Never when it failed to start.
   */
  onStarted?(): void;
  /** Called exactly once, when the child's stdin and timers are released. */
  onEnd(end: ChildEnd): void;
}

/**
 * One background command in its own process group, its output written straight to a file. The end
 * is the child's own exit: a grandchild that keeps the output file open cannot delay it.
 */
export class ChildRun {
  readonly #handlers: ChildRunHandlers;
  readonly #killGraceMs: number;
  readonly #child: StartedChild | undefined;
  /** A signal asked for while a spawner was still starting the child. */
  #deferredSignal: NodeJS.Signals | undefined;
  readonly #ended: Promise<void>;
  #resolveEnded: () => void = () => {};
  #exit: ChildEnd | undefined;
  #finishing = false;
  #finished = false;
  #killSent = false;
  #stdinClosed = false;
  #graceTimer: NodeJS.Timeout | undefined;

  /**
   * Spawns the command. Start failures (no such command, missing cwd) never throw: they reach
   * `onEnd` as `failed_start`, asynchronously. Invalid options throw `ERR_INVALID_INPUT`.
   */
  static start(options: ChildRunOptions, handlers: ChildRunHandlers): ChildRun {
    return new ChildRun(options, handlers);
  }

  private constructor(options: ChildRunOptions, handlers: ChildRunHandlers) {
    const { command, killGraceMs, output } = options;
    if (command.length === 0) {
      throw new VigilError('ERR_INVALID_INPUT', 'command must not be empty');
    }
    if (!Number.isFinite(killGraceMs) || killGraceMs < 0) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `killGraceMs must be a non-negative number, got ${killGraceMs}`,
      );
    }
    const wantsPath = options.spawner !== undefined;
    if (wantsPath ? typeof output !== 'string' : !Number.isSafeInteger(output) || (output as number) < 0) {
      const expected = wantsPath ? 'a path (with a spawner)' : 'a file descriptor';
      throw new VigilError('ERR_INVALID_INPUT', `output must be ${expected}, got ${output}`);
    }
    this.#handlers = handlers;
    this.#killGraceMs = killGraceMs;
    this.#ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
    const [file, ...args] = typeof command === 'string' ? ['/bin/sh', '-c', command] : command;
    const env = { ...process.env, ...options.env };
    let child: StartedChild;
    try {
      // detached: own process group (pgid = pid) so kill(-pid) reaches grandchildren. Not unref'd.
      child =
        options.spawner?.spawn(file as string, args, { cwd: options.cwd, env, output: output as string }) ??
        (spawn(file as string, args, {
          cwd: options.cwd,
          env,
          detached: true,
          stdio: ['pipe', output as number, output as number],
        }) satisfies ChildProcess);
    } catch (error) {
      this.#child = undefined;
      const end = failedStart(error, options.cwd);
      process.nextTick(() => this.#finish(end));
      return;
    }
    this.#child = child;
    if (child.pid === undefined) {
      child.once('spawn', () => {
        if (this.#deferredSignal !== undefined) this.#signalGroup(this.#deferredSignal);
        handlers.onStarted?.();
      });
    }
    // EPIPE when the child stops reading: `write()` reports it through its callback.
    child.stdin?.on('error', () => {});
    child.once('exit', (exitCode, signal) => this.#onExit(exitCode, signal));
    child.on('error', (error) => {
      if (this.pid === undefined) this.#finish(failedStart(error, options.cwd));
    });
  }

  /**
   * The child's pid, which is also its process group id; undefined when it failed to start, and
   * while a spawner is starting it.
   */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** True from a successful spawn until `onEnd` has been called. */
  get running(): boolean {
    return this.pid !== undefined && !this.#finished;
  }

  /** Writes to the child's stdin; resolves once handed to the OS. `ERR_INVALID_INPUT` once it exited or stdin closed. */
  write(data: string | Uint8Array): Promise<void> {
    const stdin = this.#child?.stdin;
    const open =
      this.#child !== undefined && this.#exit === undefined && !this.#finishing && !this.#stdinClosed;
    if (!open || !stdin?.writable) return Promise.reject(stdinError());
    return new Promise((resolve, reject) => {
      stdin.write(data, (error) => (error ? reject(stdinError(error)) : resolve()));
    });
  }

  /** Ends the child's stdin (EOF). Idempotent. */
  closeStdin(): void {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    this.#child?.stdin?.end();
  }

  /**
   * Sends `signal` to the whole process group, then SIGKILL after `killGraceMs` if the group leader is
   * still alive. Resolves after `onEnd`. Idempotent (repeats only escalate to SIGKILL) and safe after the end.
   * Stragglers that outlive the leader are `killGroup()`'s job.
   */
  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!Object.hasOwn(constants.signals, signal)) {
      return Promise.reject(new VigilError('ERR_INVALID_INPUT', `Unknown signal ${String(signal)}`));
    }
    if (this.#child === undefined || this.#exit !== undefined || this.#finishing) return this.#ended;
    if (!this.#killSent || signal === 'SIGKILL') this.#signalGroup(signal);
    if (!this.#killSent && signal !== 'SIGKILL') {
      this.#graceTimer = setTimeout(() => {
        this.#graceTimer = undefined;
        if (this.#exit === undefined) this.#signalGroup('SIGKILL');
      }, this.#killGraceMs);
    }
    this.#killSent = true;
    return this.#ended;
  }

  /** SIGKILL to the process group, also after the leader exited (grandchildren). Never throws. */
  killGroup(): void {
    this.#signalGroup('SIGKILL');
  }

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.pid === undefined) {
      // Still starting in the spawner: sent once it runs (SIGKILL wins over an earlier signal).
      if (this.#deferredSignal !== 'SIGKILL') this.#deferredSignal = signal;
      return;
    }
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is gone. Nothing else can fail for a valid signal and our own child.
    }
  }

  #onExit(exitCode: number | null, signal: NodeJS.Signals | null): void {
    // Everything the child wrote before it exited is in the file already.
    this.#exit = { kind: 'exited', exitCode, signal };
    this.#finish(this.#exit);
  }

  /** Releases stdin and timers, then calls `onEnd` once: the one way out of every path. */
  #finish(end: ChildEnd): void {
    if (this.#finishing) return;
    this.#finishing = true;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    const stdin = this.#child?.stdin;
    const done = (): void => {
      this.#finished = true;
      try {
        this.#handlers.onEnd(end);
      } finally {
        this.#resolveEnded();
      }
    };
    // onEnd waits for stdin's handle to close, so a caller sees no pipe of ours once it runs.
    if (stdin == null || stdin.closed) {
      done();
      return;
    }
    stdin.once('close', done);
    stdin.destroy();
  }
}

function failedStart(error: unknown, cwd: string | undefined): ChildEnd {
  if (cwd !== undefined) {
    // Node reports a bad cwd as the command's ENOENT (or throws ENOTDIR): name the cwd instead.
    try {
      if (!statSync(cwd).isDirectory())
        return { kind: 'failed_start', error: `cwd ${cwd} is not a directory` };
    } catch {
      return { kind: 'failed_start', error: `cwd ${cwd} does not exist` };
    }
  }
  return { kind: 'failed_start', error: error instanceof Error ? error.message : String(error) };
}

function stdinError(cause?: Error): VigilError {
  return cause === undefined
    ? new VigilError('ERR_INVALID_INPUT', 'The process has ended or its stdin is closed')
    : new VigilError('ERR_INVALID_INPUT', `Writing to stdin failed: ${cause.message}`, { cause });
}
