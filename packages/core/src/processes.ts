import { constants } from 'node:os';
import { type ChildEnd, ChildRun } from './child-run.js';
import { abortError, VigilError } from './errors.js';
import { newId } from './ids.js';
import { ManagedProcess, type ProcessInfo } from './managed-process.js';
import type { VigilConfig } from './options.js';
import type { Notification } from './outbox.js';
import { parseSpawn } from './process-spec.js';
import type { Session } from './session.js';
import type { SessionRegistry } from './sessions.js';

export interface ProcessRegistryOptions {
  readonly config: VigilConfig;
  readonly sessions: SessionRegistry;
  readonly now: () => number;
  /** Called when a process reached its terminal state (after its final tape event). */
  readonly onFinished?: (process: ManagedProcess) => void;
  /** Called with each chunk of output as it is read. */
  readonly onOutput?: (process: ManagedProcess, chunk: Buffer) => void;
}

export interface WaitOptions {
  /** Give up after this long and return the current state with `timedOut: true`. Default: wait forever. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface WaitResult {
  readonly process: ProcessInfo;
  readonly timedOut: boolean;
}

export interface PollResult {
  readonly process: ProcessInfo;
  /** The last `completion.outputChars` characters of output. */
  readonly tail: string;
}

export interface LogOptions {
  /** First line (0-based, of the retained output). Default 0. */
  readonly offset?: number;
  /** Lines per page, 1..1000. Default 200. */
  readonly limit?: number;
}

/**
 * Background processes of every session: spawning real children in their own process group,
 * following their output, and finishing each exactly once, with its terminal state and its final
 * `process.exited` tape event written in one synchronous step (G7).
 */
export class ProcessRegistry {
  readonly #config: VigilConfig;
  readonly #sessions: SessionRegistry;
  readonly #now: () => number;
  readonly #onFinished: ((process: ManagedProcess) => void) | undefined;
  readonly #onOutput: ((process: ManagedProcess, chunk: Buffer) => void) | undefined;
  readonly #processes = new Map<string, ManagedProcess>();
  #active = 0;

  constructor(options: ProcessRegistryOptions) {
    this.#config = options.config;
    this.#sessions = options.sessions;
    this.#now = options.now;
    this.#onFinished = options.onFinished;
    this.#onOutput = options.onOutput;
  }

  /** Processes that have not ended, across all sessions. */
  get activeCount(): number {
    return this.#active;
  }

  spawn(input: unknown): ProcessInfo {
    const spec = parseSpawn(input);
    const session = this.#sessions.requireLive(spec.sessionId);
    if (session.active.size >= this.#config.processes.maxPerSession) {
      throw new VigilError(
        'ERR_LIMIT_EXCEEDED',
        `session ${spec.sessionId} already runs ${session.active.size} processes (processes.maxPerSession)`,
      );
    }
    if (this.#active >= this.#config.processes.maxTotal) {
      throw new VigilError(
        'ERR_LIMIT_EXCEEDED',
        `${this.#active} processes are running (processes.maxTotal)`,
      );
    }
    const process = new ManagedProcess(newId('proc_'), spec, this.#config.output.bufferBytes, this.#now());
    this.#processes.set(process.processId, process);
    session.active.add(process.processId);
    session.spawned.add(process.processId);
    this.#active++;
    if (spec.requireApproval) this.#requestApproval(session, process);
    else this.#start(session, process);
    return process.info();
  }

  get(processId: string): ProcessInfo {
    return this.#require(processId).info();
  }

  list(filter: { readonly sessionId?: string } = {}): ProcessInfo[] {
    const all = [...this.#processes.values()];
    const chosen =
      filter.sessionId === undefined ? all : all.filter((p) => p.spec.sessionId === filter.sessionId);
    return chosen.map((p) => p.info());
  }

  /** The state and the output tail. Never consumes the completion (G10). */
  poll(processId: string): PollResult {
    const process = this.#require(processId);
    return { process: process.info(), tail: process.output.tail(this.#config.completion.outputChars) };
  }

  log(processId: string, options: LogOptions = {}) {
    const process = this.#require(processId);
    const limit = options.limit ?? 200;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new VigilError('ERR_INVALID_INPUT', `limit must be an integer from 1 to 1000, got ${limit}`, {
        details: { field: 'limit' },
      });
    }
    return { processId, ...process.output.lines({ offset: options.offset ?? 0, limit }) };
  }

  /** Waits for the process to end. Reading the exit this way consumes the completion (G10). */
  async wait(processId: string, options: WaitOptions = {}): Promise<WaitResult> {
    const process = this.#require(processId);
    const { signal, timeoutMs } = options;
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 0)) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `timeoutMs must be a non-negative integer, got ${timeoutMs}`,
        {
          details: { field: 'timeoutMs' },
        },
      );
    }
    if (signal?.aborted) throw abortError(signal);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const outcome = await Promise.race([
        process.finished.then(() => 'finished' as const),
        new Promise<'timeout'>((resolve) => {
          if (timeoutMs !== undefined) timer = setTimeout(() => resolve('timeout'), timeoutMs);
        }),
        new Promise<never>((_, reject) => {
          if (signal === undefined) return;
          onAbort = () => reject(abortError(signal));
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
      if (outcome === 'finished') process.consumed = true;
      return { process: process.info(), timedOut: outcome === 'timeout' };
    } finally {
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Kills the process group (SIGTERM, then SIGKILL after `killGraceMs`) and resolves once it ended. */
  async kill(processId: string, options: { readonly signal?: NodeJS.Signals } = {}): Promise<ProcessInfo> {
    const process = this.#require(processId);
    const signal = options.signal ?? 'SIGTERM';
    if (!(signal in constants.signals)) {
      throw new VigilError(
        'ERR_INVALID_INPUT',
        `signal must be a signal name such as SIGTERM, got ${String(signal)}`,
        {
          details: { field: 'signal' },
        },
      );
    }
    if (process.state === 'pending_approval' && process.approvalId !== null) {
      const session = this.#sessions.byId(process.spec.sessionId);
      process.killRequested = true;
      session?.approvals.cancel(process.approvalId);
    } else if (!process.terminal && process.end === undefined) {
      // A kill that lands after the child exited on its own (output still draining) changes nothing.
      process.killRequested = true;
      await process.run?.kill(signal);
    }
    await process.finished;
    return process.info();
  }

  /** Writes to the process's stdin. */
  async write(processId: string, data: string): Promise<void> {
    const process = this.#require(processId);
    if (typeof data !== 'string') {
      throw new VigilError('ERR_INVALID_INPUT', 'data must be a string', { details: { field: 'data' } });
    }
    if (process.run === undefined || process.terminal) {
      throw new VigilError('ERR_INVALID_INPUT', `process ${processId} is ${process.state}; stdin is closed`);
    }
    await process.run.write(data);
  }

  /** Whether a queued notification was superseded: its process's completion was consumed (G10). */
  withdrawn(notification: Notification): boolean {
    return this.#processes.get(notification.processId)?.consumed === true;
  }

  /** The completion was acknowledged by `deliver`. */
  acknowledged(notification: Notification): void {
    if (notification.type !== 'completion') return;
    const process = this.#processes.get(notification.processId);
    if (process !== undefined) process.consumed = true;
  }

  byId(processId: string): ManagedProcess | undefined {
    return this.#processes.get(processId);
  }

  /**
   * Ends the session's processes (G2): kills them unless `keepOnSessionClose`, finishing each,
   * and kills what is left of the groups of those that already ended (grandchildren).
   */
  async closeSession(session: Session): Promise<void> {
    const ending: Promise<unknown>[] = [];
    for (const processId of session.spawned) {
      const process = this.#processes.get(processId);
      if (process === undefined) continue;
      session.link.unfollow(processId);
      if (process.spec.keepOnSessionClose && !process.terminal) {
        process.detached = true;
        // Nothing will drain it or resume it once unfollowed: finish an exited one, free a paused one.
        if (process.end !== undefined) this.#finish(process);
        if (process.paused) {
          process.paused = false;
          process.run?.resume();
        }
        continue;
      }
      // Exited but not yet drained by the poller, which is stopping: finish it now.
      if (process.end !== undefined && !process.terminal) this.#finish(process);
      if (process.terminal) {
        process.run?.killGroup();
        continue;
      }
      if (process.state === 'pending_approval') continue; // cancelled with the session's approvals
      process.killRequested = true;
      ending.push(this.#killAndFinish(process));
    }
    session.approvals.close();
    await Promise.all(ending);
  }

  /** Kills everything still running, detached processes included (`vigil.close()`). */
  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.#processes.values()].map(async (process) => {
        if (process.end !== undefined && !process.terminal) this.#finish(process);
        if (process.terminal) {
          process.run?.killGroup();
          return;
        }
        process.killRequested = true;
        // Past the shutdown deadline: no grace, whatever the session close already sent.
        await this.#killAndFinish(process, 'SIGKILL');
      }),
    );
    for (const process of this.#processes.values()) clearTimeout(process.forgetTimer);
    this.#processes.clear();
  }

  async #killAndFinish(process: ManagedProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await process.run?.kill(signal);
    process.run?.killGroup();
    if (process.end !== undefined && !process.terminal) this.#finish(process);
    if (process.run === undefined && !process.terminal) {
      process.end = { kind: 'exited', exitCode: null, signal: null };
      this.#finish(process, 'cancelled (vigil closed)');
    }
    await process.finished;
  }

  /**
   * Backpressure: a watched process whose unmatched output passes a quarter of the ring buffer
   * stops being read (its pipe fills and it blocks on write) until the poller is back under an
   * eighth. The headroom takes what arrives after a pause or at exit (the stream's buffer and the
   * pipe's, 64 KiB each at most), so no output is evicted before it was matched.
   */
  #flow(session: Session, process: ManagedProcess): void {
    const cursor = session.live ? session.link.cursorOf(process.processId) : undefined;
    const backlog = cursor === undefined ? 0 : process.output.end - cursor;
    const capacity = this.#config.output.bufferBytes;
    if (!process.paused && backlog > capacity / 4) {
      process.paused = true;
      process.run?.pause();
    } else if (process.paused && backlog < capacity / 8) {
      process.paused = false;
      process.run?.resume();
    }
  }

  /** The poller committed progress on a process. */
  progressed(session: Session, process: ManagedProcess): void {
    if (process.paused) this.#flow(session, process);
  }

  /** The poller reported that all output of an exited process was matched. */
  drained(process: ManagedProcess): void {
    if (process.end !== undefined && !process.terminal) this.#finish(process);
  }

  /** Watching ended for a process; without heartbeats the poller no longer needs to follow it. */
  stopFollowing(session: Session, process: ManagedProcess): void {
    if (process.end !== undefined) {
      if (!process.terminal) this.#finish(process);
      return;
    }
    if (process.spec.heartbeatMs === 0) {
      session.link.unfollow(process.processId);
      this.#flow(session, process);
    }
  }

  #require(processId: string): ManagedProcess {
    const process = typeof processId === 'string' ? this.#processes.get(processId) : undefined;
    if (process === undefined) {
      throw new VigilError('ERR_UNKNOWN_PROCESS', `unknown process ${String(processId)}`, {
        details: { field: 'processId' },
      });
    }
    return process;
  }

  #requestApproval(session: Session, process: ManagedProcess): void {
    const { approvalId, decision } = session.approvals.request({
      command: process.spec.display,
      ...(process.spec.description === undefined ? {} : { description: process.spec.description }),
      processId: process.processId,
    });
    process.approvalId = approvalId;
    decision.then((outcome) => {
      if (outcome === 'approved' && !process.killRequested && session.live) {
        process.state = 'running';
        this.#start(session, process);
        return;
      }
      process.end = { kind: 'exited', exitCode: null, signal: null };
      this.#finish(process, `denied (${outcome})`);
    });
  }

  #start(session: Session, process: ManagedProcess): void {
    const { spec } = process;
    process.startedAt = this.#now();
    const follow = spec.patterns.length > 0 || spec.heartbeatMs > 0;
    process.run = ChildRun.start(
      {
        command: spec.command,
        ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
        ...(spec.env === undefined ? {} : { env: { ...spec.env } }),
        killGraceMs: this.#config.processes.killGraceMs,
      },
      {
        onOutput: (chunk) => {
          process.output.append(chunk);
          this.#onOutput?.(process, chunk);
          if (!follow) return;
          session.link.outputAvailable(process.processId);
          this.#flow(session, process);
        },
        onEnd: (end) => this.#ended(session, process, end),
      },
    );
    process.pid = process.run.pid ?? null;
    if (process.pid !== null) {
      session.tape.append(
        'process.started',
        { command: spec.display, cwd: spec.cwd ?? null, pid: process.pid, watch: process.info().watch },
        { processId: process.processId },
      );
    }
    if (follow) {
      session.link.follow({
        processId: process.processId,
        patterns: spec.patterns,
        heartbeatMs: spec.heartbeatMs,
        buffer: process.output,
      });
    }
  }

  #ended(session: Session, process: ManagedProcess, end: ChildEnd): void {
    process.end = end;
    // Matches must precede the final event: let the poller drain the output first.
    if (session.live && !process.detached && session.link.isFollowing(process.processId)) {
      session.link.ended(process.processId);
      return;
    }
    this.#finish(process);
  }

  /** Terminal state and `process.exited` in one synchronous step (G7); exactly once. */
  #finish(process: ManagedProcess, reason?: string): void {
    if (process.terminal) return;
    const end = process.end!;
    const session = this.#sessions.byId(process.spec.sessionId);
    process.endedAt = this.#now();
    if (reason !== undefined) {
      process.state = 'denied';
      process.reason = reason;
    } else if (end.kind === 'failed_start') {
      process.state = 'failed_start';
      process.reason = `failed to start: ${end.error}`;
    } else {
      process.exitCode = end.exitCode;
      process.signal = end.signal;
      process.state = process.killRequested ? 'killed' : 'exited';
      process.reason =
        end.signal !== null ? `killed by ${end.signal}` : `exited with code ${String(end.exitCode)}`;
    }
    session?.link.unfollow(process.processId);
    session?.active.delete(process.processId);
    this.#active--;
    if (session !== undefined && !process.detached && session.state !== 'closed') {
      const outputTail = process.output.tail(this.#config.completion.outputChars);
      const event = session.tape.append(
        'process.exited',
        {
          state: process.state,
          exitCode: process.exitCode,
          signal: process.signal,
          reason: process.reason,
          outputTail,
          outputBytes: process.output.end,
          durationMs: process.startedAt === null ? 0 : process.endedAt - process.startedAt,
        },
        { processId: process.processId },
      );
      if ((process.spec.notifyOnComplete || process.fallbackNotify) && !process.consumed && session.live) {
        session.outbox.enqueue({
          id: `${process.processId}:completion`,
          sessionId: session.id,
          type: 'completion',
          seq: event.seq,
          at: event.at,
          processId: process.processId,
          command: process.spec.display,
          data: event.data,
        });
      }
    }
    process.settle();
    this.#onFinished?.(process);
    const ttl = this.#config.processes.finishedTtlMs;
    process.forgetTimer = setTimeout(() => this.#processes.delete(process.processId), ttl);
    process.forgetTimer.unref();
  }
}
