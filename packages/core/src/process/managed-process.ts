import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { VigilError } from '../errors.js';
import type { FollowResume } from '../poller/follow-table.js';
import type { EnvScrub } from '../secrets/child-env.js';
import type { WatchPattern } from '../watch/patterns.js';
import type { AdoptionRecord } from './adopted-child.js';
import { type ChildEnd, ChildRun, type ChildRunHandlers, type WriteOptions } from './child-run.js';
import { wantsCompletion } from './completion-policy.js';
import { type ExitRecord, type ProcessInfo, type ProcessState, TERMINAL_STATES } from './process-info.js';
import { processName } from './process-name.js';
import type { ProcessRecord } from './process-record.js';
import type { SpawnSpec, TerminalSize } from './spawn-spec.js';
import type { Spawner } from './spawner.js';
import type { Spool } from './spool.js';

/** What a process tells its owner. */
export interface ProcessHandlers {
  /** The child runs now (a spawner started it): its pid is known. Before `exited`. */
  started(): void;
  /** The child ended (`ending` is now true): drain its output, then call `finish`. */
  exited(): void;
  /** Members of its process group outlived a SIGKILL (`SURVIVOR_LIMIT_MS`): a kill stopped waiting. */
  survivors(pgid: number): void;
}

/** What `ManagedProcess.adopt` resumes a process from: its persisted record. */
export interface AdoptOptions {
  readonly spool: Spool;
  readonly createdAt: number;
  readonly startedAt: number;
  /** Its identity, its recorder and where its exit status lands (`ManagedProcess.adoptionRecord`). */
  readonly record: AdoptionRecord;
  readonly killGraceMs: number;
  /** How often its fate is checked besides its status file's arrival (`ChildRun.adopt`). */
  readonly pollMs?: number;
}

/**
 * How `finish` ends a process that did not run to its own end: `denied` (never started, or
 * cancelled while waiting; the default) or `lost` (vigil restarted and could not take it back).
 */
export type Cancellation = { readonly reason: string; readonly state?: 'denied' | 'lost' };

/**
 * One background process: a state machine over `pending_approval → running → ending → terminal`.
 * `ending` means the child ended and its remaining output is still being matched; `finish` then
 * makes the state terminal exactly once. Watch state (disabled patterns, the fallback to
 * notify-on-exit) changes only through its transition methods. Its output is in its spool.
 */
export class ManagedProcess {
  readonly processId: string;
  readonly spec: SpawnSpec;
  readonly spool: Spool;
  readonly createdAt: number;
  /** Resolves once the process is terminal, or released by a restart-safe stop (every `wait`). */
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
  #watching: boolean;
  #fallbackNotify = false;
  #approvalId: string | null = null;
  readonly #disabledPatterns = new Set<number>();
  #detached = false;
  #released = false;
  /** The process that replaced it (`replaces`, or a rerun with its `key`). */
  #supersededBy: string | null = null;
  /** How it ended, as its `process.exited` said. */
  #exit: ExitRecord | undefined;
  /** The pid a previous run journaled (a restored process has no child of this run). */
  #restoredPid: number | null = null;
  /** Its terminal's size, as last resized (`pty`). */
  #terminalSize: TerminalSize | null;
  /** When its `timeoutMs` runs out (epoch ms), once it runs. */
  #deadline: number | null = null;
  #timeoutTimer: NodeJS.Timeout | undefined;
  /** Its `timeoutMs` ran out and vigil killed it. */
  #timedOut = false;
  #settle!: () => void;
  /** Resolves when a spawner reported the child's start (its pid). */
  #reportStart!: () => void;
  readonly #startReported: Promise<void>;

  constructor(
    processId: string,
    spec: SpawnSpec,
    options: { spool: Spool; now: number },
    handlers: ProcessHandlers,
  ) {
    this.processId = processId;
    this.spec = spec;
    this.spool = options.spool;
    this.createdAt = options.now;
    this.#handlers = handlers;
    this.#state = spec.requireApproval ? 'pending_approval' : 'running';
    this.#watching = spec.patterns.length > 0;
    this.#terminalSize = spec.pty ?? null;
    this.finished = new Promise<void>((resolve) => {
      this.#settle = resolve;
    });
    this.#startReported = new Promise<void>((resolve) => {
      this.#reportStart = resolve;
    });
  }

  /**
   * Resolves once its pid is known (a spawner reports it a moment after the spawn) or it ended:
   * a restart-safe stop waits for it, since a command released before has no record to adopt.
   */
  get pidKnown(): Promise<void> {
    if (this.pid !== null || !this.started || this.terminal) return Promise.resolve();
    return Promise.race([this.#startReported, this.finished]);
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

  /** Let go by a restart-safe stop: it runs on, untracked here. */
  get released(): boolean {
    return this.#released;
  }

  /** Whether the poller must follow its output: it has patterns or heartbeats. */
  get followed(): boolean {
    return this.spec.patterns.length > 0 || this.spec.heartbeatMs > 0;
  }

  /**
   * Whether its completion is delivered, having ended this way: as `notifyOnComplete` and
   * `notifyOnEmptySuccess` ask, or always once watching was disabled (the fallback).
   */
  notifiesOn(exit: ExitRecord): boolean {
    if (this.#fallbackNotify) return true;
    const { notifyOnComplete: policy, notifyOnEmptySuccess = true } = this.spec;
    return wantsCompletion(exit, { policy, notifyOnEmptySuccess });
  }

  get watching(): boolean {
    return this.#watching;
  }

  /** Its watch patterns as the poller takes them: a disabled one is `null` (indices stay stable). */
  get livePatterns(): readonly (WatchPattern | null)[] {
    return this.spec.patterns.map((pattern, index) =>
      this.#watching && !this.#disabledPatterns.has(index) ? pattern : null,
    );
  }

  /** When its `timeoutMs` runs out (epoch ms), once it runs; null without one. */
  get deadline(): number | null {
    return this.#deadline;
  }

  /**
   * Kills it (as `kill('SIGTERM')` does: SIGKILL after the grace) once its deadline passed, at once if
   * it passed already (a restarted vigil adopting it). Only a process that still runs and was not
   * asked to die is killed this way; its end then says it timed out.
   */
  armTimeout(now: number): void {
    clearTimeout(this.#timeoutTimer);
    if (this.#deadline === null || !this.alive) return;
    const expire = (): void => {
      this.#timeoutTimer = undefined;
      if (!this.alive || this.#released || this.#killRequested) return;
      this.#timedOut = true;
      void this.kill('SIGTERM');
    };
    this.#timeoutTimer = setTimeout(expire, Math.max(0, this.#deadline - now));
  }

  /**
   * Resumes a process a previous vigil started, from its record: running until its recorded exit
   * status arrives (at once if it ended meanwhile), or `lost` when its fate cannot be known. Its end
   * reaches the owner as `exited`, as a started process's does; `kill` reaches its group while its
   * pid still names it; `write` fails (its stdin cannot be reopened).
   */
  static adopt(
    processId: string,
    spec: SpawnSpec,
    options: AdoptOptions,
    handlers: ProcessHandlers,
  ): ManagedProcess {
    const process = new ManagedProcess(
      processId,
      spec,
      { spool: options.spool, now: options.createdAt },
      handlers,
    );
    process.#state = 'running';
    process.#startedAt = options.startedAt;
    process.#run = ChildRun.adopt(
      options.record,
      {
        killGraceMs: options.killGraceMs,
        ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      },
      process.#runHandlers(),
    );
    return process;
  }

  /**
   * What a record must keep to adopt this process after a restart, once it runs: its identity, its
   * recorder and its status file. Undefined before it runs, or when `/proc` could not tell.
   */
  get adoptionRecord(): AdoptionRecord | undefined {
    const identity = this.#run?.identity;
    if (identity === undefined || this.#run === undefined) return undefined;
    return { identity, statusPath: this.spool.statusPath, recorder: this.#run.recorder };
  }

  /**
   * Lets the command run on without vigil (a restart-safe stop): nothing of it reaches the owner
   * again, its spool file and exit status stay for a later vigil to adopt it. Returns whether there
   * was a running command to let go.
   */
  release(): boolean {
    if (this.#run === undefined || !this.alive || this.#released) return false;
    this.#released = true;
    clearTimeout(this.#timeoutTimer);
    this.#run.release();
    this.spool.close();
    this.#settle();
    return true;
  }

  /** Waits for approval `approvalId`. */
  awaitApproval(approvalId: string): void {
    this.#approvalId = approvalId;
  }

  /**
   * Starts the child (after approval, if any), writing to its spool, from `spawner` if given. Its
   * start reaches the owner as `started`, its end as `exited`.
   */
  start(options: {
    readonly killGraceMs: number;
    readonly now: number;
    readonly spawner?: Spawner;
    /** Which variables of this process the child does not inherit. */
    readonly scrub?: EnvScrub;
  }): void {
    const { spec } = this;
    this.#state = 'running';
    this.#startedAt = options.now;
    let output: number | string;
    try {
      output = options.spawner === undefined ? this.spool.openForChild() : this.spool.path;
    } catch (error) {
      // Like a command that cannot start: the process ends as failed_start, asynchronously.
      this.#end = {
        kind: 'failed_start',
        error: `cannot open its output spool: ${(error as Error).message}`,
      };
      process.nextTick(() => this.#handlers.exited());
      return;
    }
    try {
      this.#run = ChildRun.start(
        {
          command: spec.command,
          ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
          ...(spec.env === undefined ? {} : { env: { ...spec.env } }),
          killGraceMs: options.killGraceMs,
          ...(options.scrub === undefined ? {} : { scrub: options.scrub }),
          output,
          status: this.spool.statusPath,
          pty: spec.pty ?? null,
          ...(options.spawner === undefined ? {} : { spawner: options.spawner }),
        },
        this.#runHandlers(),
      );
    } finally {
      // The child has its own copy of the descriptor.
      if (typeof output === 'number') closeSync(output);
    }
    if (spec.timeoutMs > 0) this.#deadline = options.now + spec.timeoutMs;
    this.armTimeout(options.now);
  }

  #runHandlers(): ChildRunHandlers {
    return {
      onStarted: () => {
        this.#reportStart();
        this.#handlers.started();
      },
      onSurvivors: (pgid) => this.#handlers.survivors(pgid),
      onEnd: (end) => {
        this.#end = end;
        this.#handlers.exited();
      },
    };
  }

  /** Marks a kill as asked for: the process ends as `killed`, and an approval is not acted on. */
  requestKill(): void {
    this.#killRequested = true;
  }

  /** Signals the process group (SIGKILL after the grace); resolves once the child ended and no member of its group lives. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    this.#killRequested = true;
    await this.#run?.kill(signal);
  }

  /** SIGKILL to what is left of the group (grandchildren), also after the child ended; resolves once none is alive. */
  async killGroup(): Promise<void> {
    await this.#run?.kill('SIGKILL');
  }

  /** Bytes written to its stdin that the child has not read yet. */
  get pendingStdinBytes(): number {
    return this.#run?.pendingStdinBytes ?? 0;
  }

  write(data: string, options: WriteOptions): Promise<void> {
    return this.#run === undefined || this.terminal
      ? Promise.reject(stdinClosed(this))
      : this.#run.write(data, options);
  }

  /** Ends its stdin (EOF; in a terminal, ^D) after the writes already made. Idempotent while it runs. */
  closeStdin(): void {
    if (this.#run === undefined || this.terminal) throw stdinClosed(this);
    this.#run.closeStdin();
  }

  /** Resizes its terminal: `ERR_INVALID_INPUT` when it has none, or it ended. */
  resize(size: TerminalSize): void {
    if (this.spec.pty == null) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `process ${this.processId} does not run in a terminal (spawned without pty: true); nothing to resize`,
      );
    }
    if (this.#run === undefined || this.terminal) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `process ${this.processId} is ${this.state}; its terminal is closed`,
      );
    }
    this.#run.resize(size);
    this.#terminalSize = size;
  }

  /** Watching ended (rate limits, or every pattern disabled): the completion is delivered instead. */
  disableWatch(): void {
    this.#watching = false;
    this.#fallbackNotify = true;
  }

  /** Disables one pattern (it made the poller stuck); with the last one, watching ends. */
  patternDisabled(index: number): boolean {
    return this.#disabledPatterns.has(index);
  }

  disablePattern(index: number): void {
    this.#disabledPatterns.add(index);
    if (this.#disabledPatterns.size >= this.spec.patterns.length) this.disableWatch();
  }

  get supersededBy(): string | null {
    return this.#supersededBy;
  }

  /** A newer run replaced it: its completion and matches are stale (the table consumes them). */
  supersede(by: string): void {
    this.#supersededBy = by;
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
    options: { readonly now: number; readonly tail: () => string },
    cancelled?: Cancellation,
  ): ExitRecord | undefined {
    if (this.terminal) return undefined;
    clearTimeout(this.#timeoutTimer);
    const end = this.#end;
    this.#endedAt = options.now;
    if (cancelled !== undefined) {
      this.#state = cancelled.state ?? 'denied';
      this.#reason = cancelled.reason;
    } else if (end === undefined) {
      assert.fail(`finish() of ${this.processId} before its child ended`);
    } else if (end.kind === 'failed_start') {
      this.#state = 'failed_start';
      this.#reason = `failed to start: ${end.error}`;
    } else if (end.kind === 'lost') {
      this.#state = 'lost';
      this.#reason = `lost: ${end.reason}`;
    } else {
      this.#exitCode = end.exitCode;
      this.#signal = end.signal;
      this.#state = this.#killRequested ? 'killed' : 'exited';
      const how =
        end.signal !== null ? `killed by ${end.signal}` : `exited with code ${String(end.exitCode)}`;
      this.#reason = this.#timedOut ? `timed out (timeoutMs ${this.spec.timeoutMs}): ${how}` : how;
    }
    this.#settle();
    this.#exit = {
      state: this.#state,
      exitCode: this.#exitCode,
      signal: this.#signal,
      reason: this.#reason,
      timedOut: this.#timedOut,
      outputTail: options.tail(),
      outputBytes: this.spool.size(),
      outputDropped: this.spool.droppedBytes,
      durationMs: this.#startedAt === null ? 0 : this.#endedAt - this.#startedAt,
    };
    return this.#exit;
  }

  /**
   * What the journal keeps of it: `cursor` is the poller's committed position in its output, and
   * `follow` the rest of the poller's committed state (both null while it is not followed).
   */
  record(cursor: number | null, follow: FollowResume | null): ProcessRecord {
    return {
      processId: this.processId,
      sessionId: this.spec.sessionId,
      spec: this.spec,
      state: this.#state,
      pid: this.pid ?? this.#restoredPid,
      createdAt: this.createdAt,
      startedAt: this.#startedAt,
      deadline: this.#deadline,
      endedAt: this.#endedAt,
      exit: this.#exit ?? null,
      spoolPath: this.spool.path,
      approvalId: this.#approvalId,
      watching: this.#watching,
      fallbackNotify: this.#fallbackNotify,
      detached: this.#detached,
      supersededBy: this.#supersededBy,
      cursor,
      follow,
      disabledPatterns: [...this.#disabledPatterns],
      adoption: this.adoptionRecord ?? null,
    };
  }

  /**
   * Takes the state a previous run journaled (a restarted vigil): how it ended if it did, its
   * approval, its watch state. A process that was running stays `running`: adopted (`adopt`, then
   * this), or with no child of this run until its owner ends it (`restoreProcess`).
   */
  restore(record: ProcessRecord): void {
    this.#state = record.state;
    this.#startedAt = record.startedAt;
    this.#endedAt = record.endedAt;
    this.#approvalId = record.approvalId;
    this.#watching = record.watching;
    this.#fallbackNotify = record.fallbackNotify;
    this.#detached = record.detached;
    this.#supersededBy = record.supersededBy ?? null;
    this.#restoredPid = record.pid;
    for (const index of record.disabledPatterns ?? []) this.#disabledPatterns.add(index);
    // A journal written before timeouts existed has neither field.
    this.#deadline = record.deadline ?? null;
    if (record.exit !== null) {
      this.#exit = { ...record.exit, timedOut: record.exit.timedOut ?? false };
      this.#timedOut = this.#exit.timedOut;
      this.#exitCode = record.exit.exitCode;
      this.#signal = record.exit.signal;
      this.#reason = record.exit.reason;
    }
    if (this.terminal) this.#settle();
  }

  info(completionConsumed: boolean): ProcessInfo {
    return {
      processId: this.processId,
      sessionId: this.spec.sessionId,
      command: this.spec.display,
      name: processName(this.spec.command),
      cwd: this.spec.cwd ?? null,
      state: this.#state,
      pid: this.pid ?? this.#restoredPid,
      createdAt: this.createdAt,
      startedAt: this.#startedAt,
      endedAt: this.#endedAt,
      exitCode: this.#exitCode,
      signal: this.#signal,
      reason: this.#reason,
      timedOut: this.#timedOut,
      deadline: this.#deadline,
      notifyOnComplete: this.spec.notifyOnComplete,
      notifyOnEmptySuccess: this.spec.notifyOnEmptySuccess ?? true,
      key: this.spec.key ?? null,
      supersededBy: this.#supersededBy,
      watching: this.#watching,
      watch: this.spec.patterns.map((p) => (p.kind === 'substring' ? p.substring : `/${p.regex}/${p.flags}`)),
      completionConsumed,
      approvalId: this.#approvalId,
      outputBytes: this.spool.size(),
      outputDropped: this.spool.droppedBytes,
      outputPath: this.spool.path,
      terminal: this.#terminalSize,
    };
  }
}

function stdinClosed(process: ManagedProcess): VigilError {
  return new VigilError(
    'ERR_INVALID_INPUT',
    `process ${process.processId} is ${process.state}; stdin is closed`,
  );
}
