import assert from 'node:assert/strict';
import { VigilError } from '../errors.js';
import { type ChildEnd, ChildRun } from './child-run.js';
import { OutputBuffer } from './output-buffer.js';
import { type ExitRecord, type ProcessInfo, type ProcessState, TERMINAL_STATES } from './process-info.js';
import type { SpawnSpec } from './spawn-spec.js';

/** What a process tells its owner; called synchronously, in order, never after `finish`. */
export interface ProcessHandlers {
  /** A chunk of output was appended to `output`. */
  output(chunk: Buffer): void;
  /** The child ended (`ending` is now true): drain its output, then call `finish`. */
  exited(): void;
}

/** How `finish` ends a process that did not run to its own end. */
export type Cancellation = { readonly reason: string };

/**
 * One background process: a state machine over `pending_approval → running → ending → terminal`.
 * `ending` means the child ended and its remaining output is still being matched; `finish` then
 * makes the state terminal exactly once. Watch state (disabled patterns, the fallback to
 * notify-on-exit, the heartbeat position) changes only through its transition methods.
 */
export class ManagedProcess {
  readonly processId: string;
  readonly spec: SpawnSpec;
  readonly output: OutputBuffer;
  readonly createdAt: number;
  /** Resolves once the process is terminal (every `wait`). */
  readonly finished: Promise<void>;
  readonly #handlers: ProcessHandlers;
  #state: ProcessState;
  #run: ChildRun | undefined;
  #startedAt: number | null = null;
  #endedAt: number | null = null;
  #exitCode: number | null = null;
  #signal: string | null = null;
  #reason: string | null = null;
  /** How the child ended, kept until its output is drained. */
  #end: ChildEnd | undefined;
  #killRequested = false;
  #paused = false;
  #watching: boolean;
  #fallbackNotify = false;
  #heartbeatFrom = 0;
  #approvalId: string | null = null;
  readonly #disabledPatterns = new Set<number>();
  #detached = false;
  #settle!: () => void;

  constructor(
    processId: string,
    spec: SpawnSpec,
    options: { bufferBytes: number; now: number },
    handlers: ProcessHandlers,
  ) {
    this.processId = processId;
    this.spec = spec;
    this.output = new OutputBuffer(options.bufferBytes);
    this.createdAt = options.now;
    this.#handlers = handlers;
    this.#state = spec.requireApproval ? 'pending_approval' : 'running';
    this.#watching = spec.patterns.length > 0;
    this.finished = new Promise<void>((resolve) => {
      this.#settle = resolve;
    });
  }

  get state(): ProcessState {
    return this.#state;
  }

  get terminal(): boolean {
    return TERMINAL_STATES.has(this.#state);
  }

  /** The child ended; its output is being drained before `finish`. */
  get ending(): boolean {
    return this.#end !== undefined && !this.terminal;
  }

  /** Running and not ending: a signal can still reach it. */
  get alive(): boolean {
    return !this.terminal && this.#end === undefined;
  }

  /** Its child was spawned (whether or not that succeeded). */
  get started(): boolean {
    return this.#run !== undefined;
  }

  get pid(): number | null {
    return this.#run?.pid ?? null;
  }

  get approvalId(): string | null {
    return this.#approvalId;
  }

  get killRequested(): boolean {
    return this.#killRequested;
  }

  get detached(): boolean {
    return this.#detached;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Whether the poller must follow its output: it has patterns or heartbeats. */
  get followed(): boolean {
    return this.spec.patterns.length > 0 || this.spec.heartbeatMs > 0;
  }

  /** Whether its completion is delivered: `notifyOnComplete`, or watching was disabled (fallback). */
  get notifiesOnExit(): boolean {
    return this.spec.notifyOnComplete || this.#fallbackNotify;
  }

  get watching(): boolean {
    return this.#watching;
  }

  /** Waits for approval `approvalId`. */
  awaitApproval(approvalId: string): void {
    this.#approvalId = approvalId;
  }

  /** Starts the child (after approval, if any). Its end reaches the owner as `exited`. */
  start(options: { readonly killGraceMs: number; readonly now: number }): void {
    const { spec } = this;
    this.#state = 'running';
    this.#startedAt = options.now;
    this.#run = ChildRun.start(
      {
        command: spec.command,
        ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
        ...(spec.env === undefined ? {} : { env: { ...spec.env } }),
        killGraceMs: options.killGraceMs,
      },
      {
        onOutput: (chunk) => {
          this.output.append(chunk);
          this.#handlers.output(chunk);
        },
        onEnd: (end) => {
          this.#end = end;
          this.#handlers.exited();
        },
      },
    );
  }

  /** Marks a kill as asked for: the process ends as `killed`, and an approval is not acted on. */
  requestKill(): void {
    this.#killRequested = true;
  }

  /** Signals the process group (SIGKILL after the grace); resolves once the child ended. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    this.#killRequested = true;
    await this.#run?.kill(signal);
  }

  /** SIGKILL to what is left of the group (grandchildren), also after the child ended. */
  killGroup(): void {
    this.#run?.killGroup();
  }

  write(data: string): Promise<void> {
    return this.#run === undefined || this.terminal
      ? Promise.reject(stdinClosed(this))
      : this.#run.write(data);
  }

  /** Stops reading output until `resume` (backpressure); the child blocks on a full pipe. */
  pause(): void {
    this.#paused = true;
    this.#run?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#run?.resume();
  }

  /** Watching ended (rate limits, or every pattern disabled): the completion is delivered instead. */
  disableWatch(): void {
    this.#watching = false;
    this.#fallbackNotify = true;
  }

  /** Disables one pattern (it made the poller stuck); with the last one, watching ends. */
  disablePattern(index: number): void {
    this.#disabledPatterns.add(index);
    if (this.#disabledPatterns.size >= this.spec.patterns.length) this.disableWatch();
  }

  /** The output from the last heartbeat up to `upTo` (decoded), or undefined when there is none. */
  takeHeartbeat(upTo: number): { readonly from: number; readonly text: string } | undefined {
    const from = Math.max(this.#heartbeatFrom, this.output.start);
    if (upTo <= from) return undefined;
    this.#heartbeatFrom = upTo;
    return { from, text: this.output.read(from, upTo - from).bytes.toString('utf8') };
  }

  /** Its session closed while it runs (`keepOnSessionClose`): nothing goes to the tape any more. */
  detach(): void {
    this.#detached = true;
  }

  /**
   * Makes the state terminal, exactly once, and resolves `finished`. Without `cancelled`, the child
   * must have ended; with it, the process ends as `denied` for that reason (never started, or
   * cancelled while waiting). Returns its `process.exited` data, or undefined if already terminal.
   */
  finish(
    options: { readonly now: number; readonly tailChars: number },
    cancelled?: Cancellation,
  ): ExitRecord | undefined {
    if (this.terminal) return undefined;
    const end = this.#end;
    this.#endedAt = options.now;
    if (cancelled !== undefined) {
      this.#state = 'denied';
      this.#reason = cancelled.reason;
    } else if (end === undefined) {
      assert.fail(`finish() of ${this.processId} before its child ended`);
    } else if (end.kind === 'failed_start') {
      this.#state = 'failed_start';
      this.#reason = `failed to start: ${end.error}`;
    } else {
      this.#exitCode = end.exitCode;
      this.#signal = end.signal;
      this.#state = this.#killRequested ? 'killed' : 'exited';
      this.#reason =
        end.signal !== null ? `killed by ${end.signal}` : `exited with code ${String(end.exitCode)}`;
    }
    this.#settle();
    return {
      state: this.#state,
      exitCode: this.#exitCode,
      signal: this.#signal,
      reason: this.#reason,
      outputTail: this.output.tail(options.tailChars),
      outputBytes: this.output.end,
      durationMs: this.#startedAt === null ? 0 : this.#endedAt - this.#startedAt,
    };
  }

  info(completionConsumed: boolean): ProcessInfo {
    return {
      processId: this.processId,
      sessionId: this.spec.sessionId,
      command: this.spec.display,
      cwd: this.spec.cwd ?? null,
      state: this.#state,
      pid: this.pid,
      createdAt: this.createdAt,
      startedAt: this.#startedAt,
      endedAt: this.#endedAt,
      exitCode: this.#exitCode,
      signal: this.#signal,
      reason: this.#reason,
      notifyOnComplete: this.spec.notifyOnComplete,
      watching: this.#watching,
      watch: this.spec.patterns.map((p) => (p.kind === 'substring' ? p.substring : `/${p.regex}/${p.flags}`)),
      completionConsumed,
      approvalId: this.#approvalId,
      outputBytes: this.output.end,
    };
  }
}

function stdinClosed(process: ManagedProcess): VigilError {
  return new VigilError(
    'ERR_INVALID_INPUT',
    `process ${process.processId} is ${process.state}; stdin is closed`,
  );
}
