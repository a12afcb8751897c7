import type { EventEmitter } from 'eventemitter3';
import type { ApprovalOutcome, ApprovalQueue } from '../approvals/approval-queue.js';
import type { VigilConfig } from '../config.js';
import { invalidInput, toVigilError, VigilError } from '../errors.js';
import type { VigilEvents } from '../events.js';
import type { Journal } from '../journal/journal.js';
import type { FollowResume } from '../poller/follow-table.js';
import type { PollerLink } from '../poller/link.js';
import type { AdoptionRecord } from '../process/adopted-child.js';
import { SURVIVOR_LIMIT_MS } from '../process/child-run.js';
import { type Cancellation, ManagedProcess, type ProcessHandlers } from '../process/managed-process.js';
import type { ProcessInfo } from '../process/process-info.js';
import type { ProcessRecord } from '../process/process-record.js';
import { type SpawnSpec, type TerminalSize, upgradeSpec } from '../process/spawn-spec.js';
import type { Spawner } from '../process/spawner.js';
import type { Spool, SpoolLines } from '../process/spool.js';
import type { SpoolDir } from '../process/spool-dir.js';
import { REDACTION_MARGIN } from '../secrets/redactor.js';
import type { InstanceSecrets } from '../secrets/secrets-config.js';
import { deadline, TIMED_OUT } from '../timeout.js';
import { restoreProcess } from './restore-process.js';
import type { SessionView } from './session-info.js';

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

/** What `processes.run` resolves with: the process as it is when the caller stopped waiting. */
export interface RunResult {
  readonly process: ProcessInfo;
  /** It ended within `yieldMs`: its exit is here, and its completion is consumed (never notified). */
  readonly finished: boolean;
  /** The last `completion.outputChars` characters of its output (so far, if it still runs). */
  readonly tail: string;
}

export interface LogOptions {
  /** First line (0-based, of the retained output). Default: the last `limit` lines. */
  readonly offset?: number;
  /** Lines per page, 1..1000. Default 200. */
  readonly limit?: number;
  /** Keep the lines' terminal escape sequences (colours, cursor moves); secrets are redacted still. Default false. */
  readonly ansi?: boolean;
}

export type LogPage = SpoolLines & { readonly processId: string };

/** What the table works with: the parts of its session. */
export interface ProcessTableParts {
  readonly session: SessionView & { readonly id: string };
  readonly config: VigilConfig;
  readonly journal: Journal;
  readonly link: PollerLink;
  readonly approvals: ApprovalQueue;
  readonly spools: SpoolDir;
  /** Starts the children, unless they are forked from this process (`processes.spawner: 'direct'`). */
  readonly spawner: Spawner | undefined;
  /** What children do not inherit, and what is redacted from output. */
  readonly secrets: InstanceSecrets;
  readonly events: EventEmitter<VigilEvents>;
  readonly now: () => number;
}

/**
 * A session's processes, from spawn (through an approval, if asked for) to the terminal state: real
 * children in their own process group, followed by the session's poller while they watch or beat.
 * An exited child's output is drained by the poller before its final event, so matches always come
 * first; the terminal state and `process.exited` are recorded in one synchronous step (G6, G7).
 */
export class ProcessTable {
  readonly #parts: ProcessTableParts;
  readonly #processes = new Map<string, ManagedProcess>();
  /** Processes that have not reached a terminal state. */
  readonly #active = new Set<string>();
  /** Processes a caller waits for in the foreground (`yieldTo`): their end goes to that caller. */
  readonly #foreground = new Set<string>();

  constructor(parts: ProcessTableParts) {
    this.#parts = parts;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  get(processId: string): ManagedProcess | undefined {
    return this.#processes.get(processId);
  }

  /** The processes that have not reached a terminal state. */
  *active(): IterableIterator<ManagedProcess> {
    for (const processId of this.#active) yield this.#processes.get(processId)!;
  }

  info(process: ManagedProcess): ProcessInfo {
    return process.info(this.#parts.journal.consumed(process.processId));
  }

  /**
   * Starts a process (or asks for its approval), its output going to a new spool. The caller checked
   * the caps. `ERR_SPOOL` (naming the path) when the spool cannot be created; `ERR_JOURNAL_FULL` /
   * `ERR_JOURNAL` when its record cannot be journaled: then nothing was started.
   */
  spawn(processId: string, spec: SpawnSpec): ManagedProcess {
    const { spools, journal, now } = this.#parts;
    const stale = this.#staleRuns(spec);
    const process = this.#create(processId, spec, spools.create(processId), now());
    // Journaled before it starts: a command a restart could not account for is never started.
    this.persist(process);
    try {
      journal.commit();
    } catch (error) {
      // The failed batch stays queued for the store's next attempt: it must not bring the record back.
      journal.forget(processId);
      spools.delete(process.spool);
      throw error;
    }
    this.#processes.set(processId, process);
    this.#active.add(processId);
    for (const old of stale) this.#supersede(old, process);
    if (spec.requireApproval) this.#requestApproval(process);
    else this.#start(process);
    this.persist(process);
    return process;
  }

  /**
   * Takes back the processes a previous run journaled (a restored session). A finished one is listed
   * as it ended; one waiting for approval waits for its restored approval (`decisions`); one that
   * was running is adopted, its output followed from the committed cursor, or ends as `lost`, as
   * `restoreProcess` decides. The caller counted the unfinished ones as active.
   */
  restore(
    records: readonly ProcessRecord[],
    decisions: ReadonlyMap<string, Promise<ApprovalOutcome>>,
    foreign?: ReadonlyMap<string, string>,
  ): void {
    for (const saved of records) {
      const record = { ...saved, spec: upgradeSpec(saved.spec) };
      if (record.completionConsumed === true) this.#parts.journal.consume(record.processId);
      const spool = this.#parts.spools.reopen(record.spoolPath);
      const outcome =
        record.state === 'running' ? restoreProcess(record, foreign?.get(record.processId)) : undefined;
      const process =
        outcome?.kind === 'adopt'
          ? this.#adopt(record, spool, outcome.record)
          : this.#create(record.processId, record.spec, spool, record.createdAt);
      process.restore(record);
      this.#processes.set(record.processId, process);
      if (process.terminal) continue;
      this.#active.add(record.processId);
      if (outcome?.kind === 'adopt') {
        // Its deadline was journaled as a time: it is killed then, or now if that passed.
        process.armTimeout(this.#parts.now());
        const cursor = record.cursor ?? 0;
        // The heartbeat schedule of a process never beaten yet runs from its start.
        const {
          heartbeatCursor = cursor,
          heartbeatAt = record.startedAt,
          limiter = null,
        } = record.follow ?? {};
        this.#follow(process, cursor, { heartbeatCursor, heartbeatAt, limiter });
        continue;
      }
      const decision = record.approvalId === null ? undefined : decisions.get(record.approvalId);
      if (record.state === 'pending_approval' && decision !== undefined) {
        this.#awaitDecision(process, decision);
        continue;
      }
      const reason = outcome?.reason ?? 'vigil restarted while its approval was being resolved';
      this.finish(process, { state: 'lost', reason });
    }
  }

  /** Journals what a restart needs of the process (batched with the turn's writes). */
  persist(process: ManagedProcess): void {
    const { journal, link } = this.#parts;
    const { processId } = process;
    const record = process.record(link.cursorOf(processId) ?? null, link.resumeOf(processId) ?? null);
    journal.saveProcess({ ...record, completionConsumed: journal.consumed(processId) });
  }

  /** The state and the output tail. Never consumes the completion (G10). */
  poll(process: ManagedProcess): PollResult {
    return { process: this.info(process), tail: this.#tail(process) };
  }

  /**
   * A page of the output's lines, read from the spool; without `offset`, the last ones. Secrets are
   * redacted, and escape sequences stripped unless `ansi`.
   */
  async log(process: ManagedProcess, options: LogOptions): Promise<LogPage> {
    const { offset, limit = 200, ansi = false } = options;
    const page = await process.spool.lines({ ...(offset === undefined ? {} : { offset }), limit });
    const { redactor } = this.#parts.secrets;
    return {
      processId: process.processId,
      ...page,
      lines: page.lines.map((line) => redactor.visible(line, { ansi })),
    };
  }

  /** Waits for the process to end. Reading the exit this way consumes the completion (G10). */
  async wait(process: ManagedProcess, options: WaitOptions): Promise<WaitResult> {
    const outcome = await deadline(
      process.finished,
      options.timeoutMs ?? Number.POSITIVE_INFINITY,
      options.signal,
    );
    // A released process did not end: its completion is still to come, after a restart.
    if (outcome !== TIMED_OUT && !process.released) this.consume(process);
    return { process: this.info(process), timedOut: outcome === TIMED_OUT };
  }

  /**
   * The foreground fast path: waits up to `yieldMs` for the process to end. One that ends meanwhile
   * has its completion consumed as it ends, before anything of it is recorded (`finish`), so no
   * completion of it is ever notified, and its undelivered matches are withdrawn (G10): its exit
   * and output tail are in the result. One still running when the wait ends (or the caller's
   * `signal` aborts it) goes on in the background as any other.
   */
  async yieldTo(
    process: ManagedProcess,
    yieldMs: number,
    options: { readonly signal?: AbortSignal },
  ): Promise<RunResult> {
    this.#foreground.add(process.processId);
    try {
      await deadline(process.finished, yieldMs, options.signal);
    } catch (error) {
      // Its end was taken for this caller already: the caller gets it rather than the abort.
      if (!process.terminal) throw error;
    } finally {
      this.#foreground.delete(process.processId);
    }
    return { ...this.poll(process), finished: process.terminal };
  }

  /**
   * Its completion counts as consumed (G10), journaled: it never becomes a notification, and one
   * waiting for delivery is withdrawn, as are its later matches.
   */
  consume(process: ManagedProcess): void {
    this.#parts.journal.consume(process.processId);
    this.persist(process);
  }

  /**
   * Kills the process group (SIGTERM, then SIGKILL after `killGraceMs`) and resolves once the
   * process ended and no member of its group is alive. After the child's own end it still ends
   * what is left of the group (grandchildren), without changing how the process ended. With
   * `consumeCompletion` (an agent that kills and reads the result), its completion is consumed
   * first, so it never becomes a notification.
   */
  async kill(
    process: ManagedProcess,
    signal: NodeJS.Signals,
    options: { readonly consumeCompletion?: boolean } = {},
  ): Promise<ProcessInfo> {
    if (options.consumeCompletion === true) this.consume(process);
    const { approvalId } = process;
    if (process.state === 'pending_approval' && approvalId !== null) {
      process.requestKill();
      this.#parts.approvals.cancel(approvalId);
    } else if (process.alive) {
      await process.kill(signal);
    } else {
      await process.killGroup();
    }
    await process.finished;
    return this.info(process);
  }

  /**
   * Writes to the process's stdin within the `stdin` bounds: `ERR_INVALID_INPUT` for a write over
   * `maxWriteBytes`, `ERR_LIMIT_EXCEEDED` when the session's unread bytes would pass
   * `maxPendingBytes`, `ERR_TIMEOUT` (stdin then closed) when the child does not read it in time.
   * With `eof`, stdin is then ended (`closeStdin`) at once, after this data.
   */
  async write(
    process: ManagedProcess,
    data: string,
    options: { readonly signal?: AbortSignal; readonly eof?: boolean },
  ): Promise<void> {
    const { maxWriteBytes, maxPendingBytes, writeTimeoutMs } = this.#parts.config.stdin;
    const bytes = Buffer.byteLength(data);
    if (bytes > maxWriteBytes) {
      throw invalidInput('data', `data is ${bytes} bytes; stdin.maxWriteBytes allows ${maxWriteBytes}`);
    }
    let pending = 0;
    for (const processId of this.#active) pending += this.#processes.get(processId)?.pendingStdinBytes ?? 0;
    if (pending + bytes > maxPendingBytes) {
      throw new VigilError(
        'ERR_LIMIT_EXCEEDED',
        `session ${this.#parts.session.id} has ${pending} bytes written to stdin that its processes have not read; another ${bytes} would pass stdin.maxPendingBytes (${maxPendingBytes})`,
        { details: { field: 'data' } },
      );
    }
    const written =
      data === '' ? undefined : process.write(data, { timeoutMs: writeTimeoutMs, signal: options.signal });
    if (options.eof === true) {
      try {
        // Queued behind the data: EOF reaches the child once it took it.
        process.closeStdin();
      } catch (error) {
        // The write fails for the same reason, and says so.
        if (written === undefined) throw error;
      }
    }
    await written;
  }

  /** Ends the process's stdin (EOF; in a terminal, ^D) after the writes already made. */
  closeStdin(process: ManagedProcess): void {
    process.closeStdin();
  }

  /** Resizes the process's terminal (`pty: true`). */
  resize(process: ManagedProcess, size: TerminalSize): void {
    process.resize(size);
  }

  /** Terminal state and `process.exited` in one synchronous step (G7); exactly once. */
  finish(process: ManagedProcess, cancelled?: Cancellation): void {
    const { session, journal, link, events, now } = this.#parts;
    if (process.terminal) return;
    // The cap holds for a process that printed past it faster than the periodic check.
    void process.spool.enforce((error) => events.emit('error', error));
    const exit = process.finish({ now: now(), tail: () => this.#tail(process) }, cancelled);
    if (exit === undefined) return;
    this.persist(process);
    link.unfollow(process.processId);
    this.#active.delete(process.processId);
    // Its caller waits for it (`yieldTo`): the exit goes to the caller, never into a notification.
    if (this.#foreground.has(process.processId)) journal.consume(process.processId);
    if (!process.detached && session.state !== 'closed') {
      journal.record('process.exited', exit, {
        processId: process.processId,
        command: process.spec.display,
        notify: process.notifiesOn(exit),
      });
    }
    events.emit('process:exited', this.info(process));
  }

  /** The poller reported that all output of an exited process was matched. */
  drained(process: ManagedProcess): void {
    if (process.ending) this.finish(process);
  }

  /** Watching ended for a process; without heartbeats the poller no longer needs to follow it. */
  stopFollowing(process: ManagedProcess): void {
    if (!process.alive) {
      this.finish(process);
      return;
    }
    if (process.spec.heartbeatMs === 0) this.#parts.link.unfollow(process.processId);
  }

  /**
   * Ends the processes of a closing session (G2): kills them unless `keepOnSessionClose`, finishing
   * each, and kills what is left of the groups of those that already ended (grandchildren).
   * Resolves once no member of those groups is alive (G17).
   */
  async endAll(): Promise<void> {
    const ending: Promise<void>[] = [];
    for (const process of this.#processes.values()) {
      this.#parts.link.unfollow(process.processId);
      if (process.released) continue;
      if (process.spec.keepOnSessionClose && !process.terminal) {
        // Nothing will drain it once unfollowed: finish an exited one.
        process.detach();
        if (process.ending) this.finish(process);
        continue;
      }
      // Exited but not yet drained by the poller, which is stopping: finish it now.
      if (process.ending) this.finish(process);
      if (process.terminal) {
        ending.push(process.killGroup());
        continue;
      }
      if (process.state === 'pending_approval') continue; // cancelled with the session's approvals
      process.requestKill();
      ending.push(this.#killAndFinish(process, 'SIGTERM'));
    }
    this.#parts.approvals.close();
    await Promise.all(ending);
  }

  /** Kills everything still running, detached processes included (`vigil.close()`, past its grace). */
  async destroy(): Promise<void> {
    await Promise.all(
      [...this.#processes.values()].map(async (process) => {
        if (process.released) return;
        if (process.ending) this.finish(process);
        if (process.terminal) {
          await process.killGroup();
          return;
        }
        process.requestKill();
        await this.#killAndFinish(process, 'SIGKILL');
      }),
    );
  }

  /**
   * A restart-safe stop: lets every running command go on without this vigil (their recorders still
   * write their exit statuses, their spools stay) and stops following them. What waits for approval
   * or already ended is left to `endAll`, as in any close.
   */
  /** Resolves once every started process's pid is known (or it ended). */
  async pidsKnown(): Promise<void> {
    await Promise.all([...this.#processes.values()].map((process) => process.pidKnown));
  }

  releaseAll(): void {
    for (const process of this.#processes.values()) {
      if (process.release()) this.#parts.link.unfollow(process.processId);
    }
  }

  /** Drops a finished process and deletes its spool (its TTL passed, or the finished caps). */
  forget(processId: string): void {
    const process = this.#processes.get(processId);
    if (process === undefined) return;
    this.#processes.delete(processId);
    this.#parts.spools.delete(process.spool);
    this.#parts.journal.forget(processId);
  }

  /** The last `completion.outputChars` characters of the output, as an agent may see them. */
  #tail(process: ManagedProcess): string {
    const { config, secrets } = this.#parts;
    const chars = config.completion.outputChars;
    return secrets.redactor.tail(process.spool.tail(chars + REDACTION_MARGIN), chars);
  }

  /** The runs a spawn replaces: the one it names (`ERR_UNKNOWN_PROCESS` naming `replaces` if none), and those with its `key`. */
  #staleRuns(spec: SpawnSpec): ManagedProcess[] {
    const stale = new Set<ManagedProcess>();
    if (spec.replaces !== undefined) {
      const named = this.#processes.get(spec.replaces);
      if (named === undefined) {
        throw new VigilError(
          'ERR_UNKNOWN_PROCESS',
          `replaces: unknown process ${spec.replaces} in session ${this.#parts.session.id}`,
          { details: { field: 'replaces' } },
        );
      }
      stale.add(named);
    }
    if (spec.key !== undefined) {
      for (const process of this.#processes.values()) {
        if (process.spec.key === spec.key && process.supersededBy === null) stale.add(process);
      }
    }
    return [...stale];
  }

  /**
   * A newer run replaces `old`: what it has not delivered is stale, so its completion is consumed
   * (withdrawn, with its matches, G10), the supersession goes on the tape, and a run still going
   * is killed (its completion, already consumed, is never delivered).
   */
  #supersede(old: ManagedProcess, by: ManagedProcess): void {
    const { journal, events } = this.#parts;
    const running = !old.terminal && !old.released;
    old.supersede(by.processId);
    this.consume(old);
    journal.record(
      'process.supersedes',
      { superseded: old.processId, key: by.spec.key ?? null, killed: running },
      { processId: by.processId, command: by.spec.display },
    );
    if (running) {
      this.kill(old, 'SIGTERM').catch((error: unknown) =>
        events.emit('error', toVigilError(error, 'ERR_INTERNAL')),
      );
    }
  }

  async #killAndFinish(process: ManagedProcess, signal: NodeJS.Signals): Promise<void> {
    // Resolves once no member of the group is alive, the leader's end included.
    await process.kill(signal);
    if (process.ending) this.finish(process);
    if (!process.started) this.finish(process, { reason: 'cancelled (vigil closed)' });
    await process.finished;
  }

  #create(processId: string, spec: SpawnSpec, spool: Spool, createdAt: number): ManagedProcess {
    const process: ManagedProcess = new ManagedProcess(
      processId,
      spec,
      { spool, now: createdAt },
      this.#handlers(() => process),
    );
    return process;
  }

  /** Takes back a command a previous run started (`restoreProcess` found it can be followed). */
  #adopt(record: ProcessRecord, spool: Spool, adoption: AdoptionRecord): ManagedProcess {
    const process: ManagedProcess = ManagedProcess.adopt(
      record.processId,
      record.spec,
      {
        spool,
        createdAt: record.createdAt,
        startedAt: record.startedAt ?? record.createdAt,
        record: adoption,
        killGraceMs: this.#parts.config.processes.killGraceMs,
      },
      this.#handlers(() => process),
    );
    return process;
  }

  /** What a process tells the table; `process` is called only once it exists. */
  #handlers(process: () => ManagedProcess): ProcessHandlers {
    return {
      started: () => this.#started(process()),
      exited: () => this.#exited(process()),
      survivors: (pgid) => this.#parts.events.emit('error', survivorsError(process().processId, pgid)),
    };
  }

  #requestApproval(process: ManagedProcess): void {
    const { approvals } = this.#parts;
    const { spec } = process;
    const { approvalId, decision, granted } = approvals.request({
      command: spec.display,
      ...(spec.description === undefined ? {} : { description: spec.description }),
      processId: process.processId,
    });
    process.awaitApproval(approvalId);
    // Approved for this session already: it starts now, as a spawn without approval would.
    if (granted) this.#start(process);
    else this.#awaitDecision(process, decision);
  }

  #awaitDecision(process: ManagedProcess, decision: Promise<ApprovalOutcome>): void {
    const { session, journal } = this.#parts;
    void decision.then((outcome) => {
      // Acted on once the resolution is journaled: a restart never finds pending what already ran.
      journal.afterCommit(() => {
        if (outcome === 'approved' && !process.killRequested && session.live) this.#start(process);
        else this.finish(process, { reason: `denied (${outcome})` });
      });
    });
  }

  #start(process: ManagedProcess): void {
    const { config, spawner, now } = this.#parts;
    process.start({
      scrub: this.#parts.secrets.scrub,
      killGraceMs: config.processes.killGraceMs,
      now: now(),
      ...(spawner === undefined ? {} : { spawner }),
    });
    // Forked here, it runs already; a spawner reports it later (`started`).
    if (process.pid !== null) this.#started(process);
    else this.persist(process);
  }

  /**
   * The child runs: `process.started` goes on the tape, then the poller follows its output (from the
   * start of the spool), so no match of it can precede that event.
   */
  #started(process: ManagedProcess): void {
    const { journal } = this.#parts;
    const { spec, processId, pid } = process;
    // Detached by its session's close while the spawner started it: nothing goes to the tape (G2).
    if (pid === null || process.detached) return;
    this.persist(process);
    journal.record(
      'process.started',
      { command: spec.display, cwd: spec.cwd ?? null, pid, watch: this.info(process).watch },
      { processId, command: spec.display },
    );
    this.#follow(process, 0);
  }

  /**
   * The poller follows its output from `cursor` (with the heartbeat clock and limiter of `resume`)
   * while it watches or beats (and the session is live).
   */
  #follow(process: ManagedProcess, cursor: number, resume?: FollowResume): void {
    const { spec, processId } = process;
    const needed = process.watching || spec.heartbeatMs > 0;
    if (!process.followed || !needed || !this.#parts.session.live) return;
    const { path, drops } = process.spool;
    this.#parts.link.follow({
      processId,
      patterns: process.livePatterns,
      heartbeatMs: spec.heartbeatMs,
      spool: path,
      drops,
      cursor,
      ...(resume === undefined ? {} : { resume }),
    });
  }

  #exited(process: ManagedProcess): void {
    const { session, link } = this.#parts;
    // Matches must precede the final event: let the poller drain the output first.
    if (session.live && !process.detached && link.isFollowing(process.processId)) {
      link.ended(process.processId, process.spool.size());
      return;
    }
    this.finish(process);
  }
}

function survivorsError(processId: string, pgid: number): VigilError {
  return new VigilError(
    'ERR_TIMEOUT',
    `Members of process group ${pgid} (process ${processId}) are still alive ${SURVIVOR_LIMIT_MS} ms after SIGKILL (in uninterruptible sleep, or not ours to signal); vigil stopped waiting for them`,
    { details: { field: 'processId', processId, pgid } },
  );
}
