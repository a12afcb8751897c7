import { type ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { constants } from 'node:os';
import { abortError, VigilError } from '../errors.js';
import { type EnvScrub, VIGIL_SECRETS_ONLY } from '../secrets/child-env.js';
import { AdoptedChild, type AdoptionRecord } from './adopted-child.js';
import { type ExitStatus, writeExitStatus } from './exit-status.js';
import { groupExists, groupProbe, pidInUse } from './process-group.js';
import { bootId, type ProcessIdentity, readIdentity } from './process-identity.js';
import type { StartedChild } from './remote-child.js';
import type { TerminalSize } from './spawn-spec.js';
import type { Spawner } from './spawner.js';

/** Options of `ChildRun.start`. */
export interface ChildRunOptions {
  /** A string runs with `/bin/sh -c`; an array is argv, run without a shell. */
  readonly command: string | readonly string[];
  /** Working directory. Default: this process's. */
  readonly cwd?: string;
  /** Variables merged over `process.env` (less the variables `scrub` denies); these are passed as given. */
  readonly env?: Readonly<Record<string, string>>;
  /** Which variables of `process.env` the child does not inherit. Default: vigil's own secrets. */
  readonly scrub?: EnvScrub;
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
  /**
   * Where its exit status is written when it ends (`<spool>.exit`), by the process that waits for
   * it: the spawner, or this one. A later vigil reads it to learn how an adopted command ended.
   */
  readonly status?: string;
  /** Run it in a pseudo-terminal of this size (only from a `spawner`, which holds the terminal). */
  readonly pty?: TerminalSize | null;
}

/** Options of `ChildRun.adopt`. */
export interface AdoptOptions {
  /** As in `ChildRunOptions`. */
  readonly killGraceMs: number;
  /** How often its fate is checked besides its status file's arrival. Default `ADOPTED_POLL_MS`. */
  readonly pollMs?: number;
}

/** Bounds of one `ChildRun.write`. */
export interface WriteOptions {
  /** How long the child has to read the data. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** How a run ended: the child exited (or was killed by `signal`), it never started, or its fate is unknown. */
export type ChildEnd =
  | { readonly kind: 'exited'; readonly exitCode: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly kind: 'failed_start'; readonly error: string }
  /** An adopted command whose end cannot be known (see `AdoptedChild`). */
  | { readonly kind: 'lost'; readonly reason: string };

/** How long a kill waits for a group to empty after its SIGKILL before it gives up on the survivors. */
export const SURVIVOR_LIMIT_MS = 5_000;

/** Callbacks of one run. They must not throw. */
export interface ChildRunHandlers {
  /**
   * Called once the child runs, before `onEnd`, when its `pid` was not known yet as `start` returned
   * (a spawner starts it). Never when it failed to start.
   */
  onStarted?(): void;
  /**
   * Members of the group outlived a SIGKILL by `SURVIVOR_LIMIT_MS` (a process in uninterruptible
   * sleep, or one vigil may not signal): the kill stopped waiting for them.
   */
  onSurvivors?(pgid: number): void;
  /** Called exactly once, when the child's stdin is released. */
  onEnd(end: ChildEnd): void;
}

/**
 * One background command in its own process group, its output written straight to a file. The end
 * is the child's own exit: a grandchild that keeps the output file open cannot delay it.
 */
export class ChildRun {
  readonly #handlers: ChildRunHandlers;
  readonly #killGraceMs: number;
  #child: StartedChild | undefined;
  /** Set when following a command a previous vigil started. */
  #adopted: AdoptedChild | undefined;
  #identity: ProcessIdentity | undefined;
  /** A signal asked for while a spawner was still starting the child. */
  #deferredSignal: NodeJS.Signals | undefined;
  readonly #ended: Promise<void>;
  #resolveEnded: () => void = () => {};
  #exit: ChildEnd | undefined;
  #finishing = false;
  #finished = false;
  #stdinClosed = false;
  /** When survivors of a kill get SIGKILL (`performance.now()` time). */
  #killAt = Number.POSITIVE_INFINITY;
  /** When the first SIGKILL went to the group (`performance.now()` time). */
  #sigkilledAt: number | undefined;
  /** A signal for what is left of the group once the leader ended, sent when a member is seen alive. */
  #leftoverSignal: NodeJS.Signals | undefined;
  /**
   * The group was seen empty: its id may belong to a new group by now, so it is never signalled
   * again. (While a member lives, the kernel does not give its group's id to another process.)
   */
  #groupGone = false;
  /** The running kill: resolves once the group is empty. */
  #reaping: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** Settles each write not yet taken by the OS. */
  readonly #pendingWrites = new Set<(error: VigilError, discarding: boolean) => void>();

  /**
   * Spawns the command. Start failures (no such command, missing cwd) never throw: they reach
   * `onEnd` as `failed_start`, asynchronously. Invalid options throw `ERR_INVALID_INPUT`.
   */
  static start(options: ChildRunOptions, handlers: ChildRunHandlers): ChildRun {
    const run = new ChildRun(options.killGraceMs, handlers);
    run.#launch(options);
    return run;
  }

  /**
   * Follows a command a previous vigil started, from its record: its end comes from the exit status
   * its recorder writes, or as `lost` when that can never come (see `AdoptedChild`). Kills reach its
   * group only while its pid still names it. Its stdin cannot be written.
   */
  static adopt(record: AdoptionRecord, options: AdoptOptions, handlers: ChildRunHandlers): ChildRun {
    const run = new ChildRun(options.killGraceMs, handlers);
    const child = new AdoptedChild(record, options.pollMs === undefined ? {} : { pollMs: options.pollMs });
    run.#adopted = child;
    run.#attach(child, undefined);
    child.once('lost', (reason) => run.#onLost(reason));
    return run;
  }

  private constructor(killGraceMs: number, handlers: ChildRunHandlers) {
    if (!Number.isFinite(killGraceMs) || killGraceMs < 0) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `killGraceMs must be a non-negative number, got ${killGraceMs}`,
      );
    }
    this.#handlers = handlers;
    this.#killGraceMs = killGraceMs;
    this.#ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  #launch(options: ChildRunOptions): void {
    const { command, output } = options;
    if (command.length === 0) {
      throw new VigilError('ERR_INVALID_INPUT', 'command must not be empty');
    }
    const wantsPath = options.spawner !== undefined;
    if (wantsPath ? typeof output !== 'string' : !Number.isSafeInteger(output) || (output as number) < 0) {
      const expected = wantsPath ? 'a path (with a spawner)' : 'a file descriptor';
      throw new VigilError('ERR_INVALID_INPUT', `output must be ${expected}, got ${output}`);
    }
    const pty = options.pty ?? null;
    if (pty !== null && options.spawner === undefined) {
      throw new VigilError('ERR_INVALID_INPUT', 'a terminal (pty) needs a spawner to hold it');
    }
    const [file, ...args] = typeof command === 'string' ? ['/bin/sh', '-c', command] : command;
    let child: StartedChild;
    try {
      // detached: own process group (pgid = pid) so kill(-pid) reaches grandchildren. Not unref'd.
      const env = (options.scrub ?? VIGIL_SECRETS_ONLY).childEnv(options.env);
      const { spawner, status } = options;
      child =
        spawner?.spawn(file as string, args, {
          cwd: options.cwd,
          env,
          output: output as string,
          status,
          pty,
        }) ??
        (spawn(file as string, args, {
          cwd: options.cwd,
          env,
          detached: true,
          stdio: ['pipe', output as number, output as number],
        }) satisfies ChildProcess);
    } catch (error) {
      const end = failedStart(error, options.cwd);
      process.nextTick(() => this.#finish(end));
      return;
    }
    // Forked here, this process is the one that waits for it, so it records its status.
    this.#attach(child, options.spawner === undefined ? options.status : undefined);
    child.on('error', (error) => {
      if (this.pid === undefined) this.#finish(failedStart(error, options.cwd));
    });
  }

  /** Follows a started child: its start (from a spawner), its stdin's errors, its exit. */
  #attach(child: StartedChild, statusPath: string | undefined): void {
    this.#child = child;
    if (child.pid === undefined) {
      child.once('spawn', () => {
        this.#identify(child);
        if (this.#deferredSignal !== undefined) {
          // The grace counts from the signal the child got, not from the kill that asked for it.
          if (this.#deferredSignal !== 'SIGKILL') {
            this.#killAt = Math.max(this.#killAt, performance.now() + this.#killGraceMs);
          }
          this.#signalGroup(this.#deferredSignal);
        }
        this.#handlers.onStarted?.();
        this.#wake?.();
      });
    } else {
      // Not reaped before this turn of the event loop ends: its pid is still its own.
      this.#identify(child);
    }
    // EPIPE when the child stops reading: `write()` reports it through its callback.
    child.stdin?.on('error', () => {});
    child.once('exit', (exitCode, signal) => {
      if (statusPath !== undefined) recordStatus(statusPath, { exitCode, signal });
      this.#onExit(exitCode, signal);
    });
  }

  #identify(child: StartedChild): void {
    const pid = child.pid!;
    const startTicks = child.startTicks ?? readIdentity(pid)?.startTicks;
    if (startTicks !== undefined) this.#identity = { pid, pgid: pid, startTicks, bootId: bootId() };
  }

  /**
   * The child's pid, which is also its process group id; undefined when it failed to start, and
   * while a spawner is starting it.
   */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Its pid, process group, start time and boot, once it runs: what a record needs to adopt it later
   * (with `recorder` and its status path).
   */
  get identity(): ProcessIdentity | undefined {
    return this.#identity;
  }

  /** The process that waits for it and writes its exit status (null before it runs, or if unknown). */
  get recorder(): ProcessIdentity | null {
    if (this.#child === undefined || this.#identity === undefined) return null;
    const { recorder } = this.#child;
    return recorder === undefined ? (selfIdentity() ?? null) : recorder;
  }

  /** True from a successful spawn until `onEnd` has been called. */
  get running(): boolean {
    return this.pid !== undefined && !this.#finished;
  }

  /** Bytes written to stdin that the child has not read yet. */
  get pendingStdinBytes(): number {
    const stdin = this.#child?.stdin;
    // A destroyed stream dropped its buffer but keeps counting it.
    return stdin == null || stdin.destroyed ? 0 : stdin.writableLength;
  }

  /**
   * Writes to the child's stdin; resolves once the OS took all of it (the pipe holds about 64 KiB,
   * so a large write waits for the child to read). A write that does not get through within
   * `timeoutMs`, or whose `signal` aborts, rejects (`ERR_TIMEOUT`, the signal's reason) and closes
   * stdin: what the child had not read is discarded, as a partial write cannot be taken back.
   * `ERR_INVALID_INPUT` once the child exited, its stdin closed or a kill was sent.
   */
  write(data: string | Uint8Array, options: WriteOptions): Promise<void> {
    const stdin = this.#child?.stdin;
    const open =
      this.#child !== undefined &&
      this.#exit === undefined &&
      !this.#finishing &&
      !this.#stdinClosed &&
      this.#reaping === undefined;
    if (this.#adopted !== undefined && open) return Promise.reject(adoptedError('stdin', 'written'));
    if (!open || !stdin?.writable) return Promise.reject(stdinError());
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const settle = (error?: VigilError, discarding = false): void => {
        if (!this.#pendingWrites.delete(settle)) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) {
          resolve();
          return;
        }
        reject(error);
        if (!discarding) this.#discardStdin();
      };
      this.#pendingWrites.add(settle);
      const onAbort = (): void => settle(abortError(signal!));
      const timer = setTimeout(() => {
        const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
        settle(
          new VigilError(
            'ERR_TIMEOUT',
            `The child did not read a write of ${bytes} bytes to its stdin within ${timeoutMs} ms; its stdin is now closed`,
          ),
        );
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      stdin.write(data, (error) => settle(error ? stdinError(error) : undefined));
    });
  }

  /**
   * Ends the child's stdin (EOF; in a terminal, ^D) after the writes already made. Idempotent.
   * `ERR_INVALID_INPUT` for an adopted child, whose stdin this vigil never had.
   */
  closeStdin(): void {
    if (this.#adopted !== undefined) throw adoptedError('stdin', 'closed');
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    this.#child?.stdin?.end();
  }

  /**
   * Resizes the child's terminal (`ERR_INVALID_INPUT` once it ended or a kill was sent, or when it
   * was adopted: the terminal is held by the spawner of the vigil that started it).
   */
  resize(size: TerminalSize): void {
    if (this.#adopted !== undefined) throw adoptedError('terminal', 'resized');
    const resize = this.#child?.resize;
    if (this.#exit !== undefined || this.#finishing || this.#reaping !== undefined || resize === undefined) {
      throw new VigilError('ERR_INVALID_INPUT', 'The process has ended; its terminal is closed');
    }
    resize.call(this.#child, size.cols, size.rows);
  }

  /**
   * Sends `signal` to the whole process group, then SIGKILL after `killGraceMs` to every member
   * still alive, the leader or not. Resolves after `onEnd`, once no member of the group is alive
   * (zombies do not count). Idempotent: a repeat only escalates, with SIGKILL, at once. After the
   * end it reaps what is left of the group (grandchildren), if a member still lives: a group seen
   * empty is never signalled again, since its id may belong to another by then. Members that
   * outlive the SIGKILL by `SURVIVOR_LIMIT_MS` are reported (`onSurvivors`) and no longer waited for.
   */
  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!Object.hasOwn(constants.signals, signal)) {
      return Promise.reject(new VigilError('ERR_INVALID_INPUT', `Unknown signal ${String(signal)}`));
    }
    if (this.#child === undefined || this.#groupGone) return this.#reaping ?? this.#ended;
    const first = this.#reaping === undefined;
    if (first || signal === 'SIGKILL') {
      // After the leader's end the group id is checked first: signalled only while a member lives.
      if (this.#finished) this.#leftoverSignal = signal;
      else this.#signalGroup(signal);
    }
    if (signal === 'SIGKILL') this.#killAt = 0;
    else if (first) this.#killAt = performance.now() + this.#killGraceMs;
    // Pending writes can never be read now: fail them instead of letting them wait for the end.
    this.#discardStdin(
      new VigilError('ERR_INVALID_INPUT', `The process is being killed (${signal}); its stdin is closed`),
    );
    this.#wake?.();
    this.#reaping ??= this.#reap().finally(() => {
      // Given up on survivors: a later kill starts over.
      if (!this.#groupGone) this.#reaping = undefined;
    });
    return this.#reaping;
  }

  /**
   * Waits until the leader ended and no member of its group is alive, SIGKILLing survivors from
   * `#killAt`; gives up `SURVIVOR_LIMIT_MS` after the SIGKILL (`onSurvivors`).
   */
  async #reap(): Promise<void> {
    // No event announces a grandchild's death: after the leader's end, poll, backing off to 50 ms.
    let pause = 1;
    for (;;) {
      // No pid: still starting in the spawner (its start wakes this), or it never started.
      const pgid = this.pid;
      if (this.#finished) {
        if (pgid === undefined || this.#groupGone) break;
        // The leader was reaped: a process with its pid now is a newcomer, leading a group of its own
        // (an adopted leader may be an unreaped zombie still: its pid is still its own).
        if ((pidInUse(pgid) && this.#adopted?.holdsPid() !== true) || !(await groupProbe.alive(pgid))) {
          this.#groupGone = true;
          break;
        }
        const leftover = this.#leftoverSignal;
        this.#leftoverSignal = undefined;
        if (leftover !== undefined) this.#signalGroup(leftover);
      }
      const now = performance.now();
      const untilKill = this.#killAt - now;
      if (untilKill <= 0) {
        this.#signalGroup('SIGKILL');
        this.#sigkilledAt ??= now;
      }
      if (this.#sigkilledAt !== undefined && now - this.#sigkilledAt >= SURVIVOR_LIMIT_MS) {
        if (pgid !== undefined) this.#handlers.onSurvivors?.(pgid);
        return;
      }
      if (!this.#finished && untilKill > 0) await this.#nap(untilKill);
      else {
        await this.#nap(untilKill > 0 ? Math.min(pause, untilKill) : pause);
        pause = Math.min(pause * 2, 50);
      }
    }
    await this.#ended;
  }

  /** Sleeps `ms`; `#wake` (the leader's end, an escalation) cuts it short. */
  #nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = (): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      timer = setTimeout(wake, ms);
      this.#wake = wake;
    });
  }

  /** Drops what the child has not read and closes its stdin; pending writes fail with `error`. */
  #discardStdin(error: VigilError = stdinError()): void {
    this.#stdinClosed = true;
    for (const settle of [...this.#pendingWrites]) settle(error, true);
    this.#child?.stdin?.destroy();
  }

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.#groupGone) return;
    if (this.pid === undefined) {
      // Still starting in the spawner: sent once it runs (SIGKILL wins over an earlier signal).
      if (this.#deferredSignal !== 'SIGKILL') this.#deferredSignal = signal;
      return;
    }
    // Not our child: its pid is signalled only while it still names it (a reused pid never is).
    if (this.#adopted !== undefined && !this.#finished && !this.#adopted.stillOurs()) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is gone. Nothing else can fail for a valid signal and our own child.
    }
  }

  #onExit(exitCode: number | null, signal: NodeJS.Signals | null): void {
    // Everything the child wrote before it exited is in the file already.
    this.#exit = { kind: 'exited', exitCode, signal };
    // The leader is reaped: with no other member its group is gone, and its id free for reuse.
    if (this.pid !== undefined && !groupExists(this.pid)) this.#groupGone = true;
    this.#finish(this.#exit);
  }

  /** An adopted command's end cannot be known. */
  #onLost(reason: string): void {
    // Its pid names a newcomer, or its group is empty: never signalled again. (An unreaped zombie
    // leader still holds its group's id: what is left of the group can still be killed.)
    const pid = this.pid;
    const newcomer = pid !== undefined && pidInUse(pid) && this.#adopted?.holdsPid() !== true;
    if (pid !== undefined && (newcomer || !groupExists(pid))) this.#groupGone = true;
    this.#finish({ kind: 'lost', reason });
  }

  /**
   * Lets the command go without ending it (a restart-safe stop): it runs on, its recorder still
   * writes its exit status, and a later vigil can adopt it. Its stdin is closed (EOF), as a stop of
   * the vigil that owns the pipe would close it. `onEnd` is never called; `kill` does nothing.
   */
  release(): void {
    if (this.#finishing) return;
    this.#finishing = true;
    this.#groupGone = true;
    this.#adopted?.stop();
    this.#discardStdin(new VigilError('ERR_CLOSED', 'vigil stopped and left the process running'));
    this.#child?.unref?.();
    this.#resolveEnded();
    this.#wake?.();
  }

  /** Releases stdin and timers, then calls `onEnd` once: the one way out of every path. */
  #finish(end: ChildEnd): void {
    if (this.#finishing) return;
    this.#finishing = true;
    this.#discardStdin();
    const stdin = this.#child?.stdin;
    const done = (): void => {
      this.#finished = true;
      try {
        this.#handlers.onEnd(end);
      } finally {
        this.#resolveEnded();
        this.#wake?.();
      }
    };
    // onEnd waits for stdin's handle to close, so a caller sees no pipe of ours once it runs.
    if (stdin == null || stdin.closed) {
      done();
      return;
    }
    stdin.once('close', done);
  }
}

let self: ProcessIdentity | undefined;

/** This process, the recorder of the children it forks itself. */
function selfIdentity(): ProcessIdentity | undefined {
  self ??= readIdentity('self');
  return self;
}

/**
 * Writes a child's exit status for a later vigil. A failure (a full disk) is not this run's: vigil
 * saw the end itself, and only an adoption after a crash in this very instant would miss it.
 */
function recordStatus(path: string, status: ExitStatus): void {
  try {
    writeExitStatus(path, status);
  } catch {
    // See above.
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

/** The stdin (pipe or terminal) of an adopted child belonged to the vigil that started it. */
function adoptedError(what: 'stdin' | 'terminal', done: 'written' | 'closed' | 'resized'): VigilError {
  return new VigilError(
    'ERR_INVALID_INPUT',
    `The ${what} of a process adopted after a restart cannot be ${done}: it belonged to the vigil that started it`,
  );
}

function stdinError(cause?: Error): VigilError {
  return cause === undefined
    ? new VigilError('ERR_INVALID_INPUT', 'The process has ended or its stdin is closed')
    : new VigilError('ERR_INVALID_INPUT', `Writing to stdin failed: ${cause.message}`, { cause });
}
