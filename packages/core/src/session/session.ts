import type { EventEmitter } from 'eventemitter3';
import { type ApprovalOutcome, ApprovalQueue } from '../approvals/approval-queue.js';
import type { VigilConfig } from '../config.js';
import { VigilError } from '../errors.js';
import type { VigilEvents } from '../events.js';
import { Journal, type MatchGate } from '../journal/journal.js';
import type { Delivery } from '../journal/notification.js';
import type { PollerExitedInfo, PollerHost, PollerStartedInfo } from '../poller/host.js';
import { PollerLink, type ProbeResult } from '../poller/link.js';
import type { ManagedProcess } from '../process/managed-process.js';
import type { ProcessRecord } from '../process/process-record.js';
import type { SpawnSpec } from '../process/spawn-spec.js';
import type { Spawner } from '../process/spawner.js';
import type { SpoolDir } from '../process/spool-dir.js';
import type { InstanceSecrets } from '../secrets/secrets-config.js';
import type { JournalStore, RestoredSession } from '../store/store.js';
import type { BreakerRelease } from '../watch/breaker.js';
import type { BreakerPause } from '../watch/breaker-gate.js';
import { describePattern, linearTimePattern } from '../watch/patterns.js';
import { ProcessTable } from './process-table.js';
import type { SessionCloseResult, SessionInfo, SessionState, SessionView } from './session-info.js';
import { WatchReports } from './watch-reports.js';

/** What every session of a vigil instance shares, handed down by the registry. */
export interface SessionContext {
  readonly config: VigilConfig;
  readonly host: PollerHost;
  /** The global watch breaker. */
  readonly gate: MatchGate;
  /** Where processes' output spools are made. */
  readonly spools: SpoolDir;
  /** Starts the children (`processes.spawner: 'helper'`), or undefined: they are forked from this process. */
  readonly spawner: Spawner | undefined;
  /** What children do not inherit, and what is redacted from the output that leaves vigil. */
  readonly secrets: InstanceSecrets;
  /** The instance's typed events: how a session tells the world (and the registry) what happened. */
  readonly events: EventEmitter<VigilEvents>;
  readonly now: () => number;
  /** Where sessions are journaled (G16). */
  readonly store: JournalStore;
}

/**
 * One agent session: it owns its processes, its poller link, its approvals and its journal, and
 * its close order (G1, G2): stop the poller while ending the processes and approvals, then stop
 * delivering, then record `session.closed` as the tape's last event.
 */
export class Session implements SessionView {
  readonly id: string;
  readonly openedAt: number;
  readonly journal: Journal;
  readonly approvals: ApprovalQueue;
  readonly processes: ProcessTable;
  /** Resolves once the session is closed. */
  readonly closed: Promise<SessionCloseResult>;
  readonly #context: SessionContext;
  readonly #link: PollerLink;
  readonly #reports: WatchReports;
  #state: SessionState = 'opening';
  #lastActivityAt: number;
  #closedAt: number | null = null;
  #closeReason: string | null = null;
  #pollerRunning = false;
  #pollerRestarts = 0;
  /** Restored from the journal, and nobody opened it again yet: no `deliver`, no poller. */
  #dormant = false;
  /** The decisions of the approvals a restored session took back. */
  #decisions = new Map<string, Promise<ApprovalOutcome>>();
  /** Settles when the poller has started (or failed to). */
  #opened: Promise<void> = Promise.resolve();
  #closing: Promise<SessionCloseResult> | undefined;
  #resolveClosed!: (result: SessionCloseResult) => void;

  constructor(
    id: string,
    context: SessionContext,
    delivery: Delivery | undefined,
    restored?: RestoredSession,
  ) {
    const { config, events, now, store } = context;
    this.id = id;
    this.#context = context;
    this.openedAt = restored?.record.openedAt ?? now();
    this.#lastActivityAt = now();
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.journal = new Journal({
      sessionId: id,
      config,
      delivery,
      gate: context.gate,
      events,
      now,
      store,
      restored,
    });
    this.#link = new PollerLink(
      id,
      {
        limits: {
          cooldownMs: config.watch.cooldownMs,
          strikeLimit: config.watch.strikeLimit,
          lifetimeMaxHits: config.watch.lifetimeMaxHits,
          maxLineLength: config.output.maxLineLength,
          maxLinesPerMatch: config.watch.maxLinesPerMatch,
          maxCharsPerMatch: config.watch.maxCharsPerMatch,
          heartbeatChars: config.completion.outputChars,
        },
        redaction: context.secrets.rules,
        matchTimeoutMs: config.watch.matchTimeoutMs,
        slots: config.processes.maxPerSession,
      },
      { report: (report) => this.#reports.apply(report), stuck: (culprit) => this.#reports.stuck(culprit) },
    );
    this.approvals = new ApprovalQueue(id, {
      timeoutMs: config.approvals.timeoutMs,
      subscriberBacklog: config.approvals.subscriberBacklog,
      now,
      onChange: (change) => {
        this.#save(change.snapshot.version);
        this.journal.approvalChanged(change);
      },
    });
    const parts = { session: this, config, journal: this.journal, link: this.#link, events, now };
    this.processes = new ProcessTable({
      ...parts,
      approvals: this.approvals,
      spools: context.spools,
      spawner: context.spawner,
      secrets: context.secrets,
    });
    this.#reports = new WatchReports({ ...parts, processes: this.processes, host: context.host });
    if (restored !== undefined) {
      this.#state = 'open';
      this.#dormant = true;
      this.#decisions = this.approvals.restore(
        restored.approvals,
        restored.record.approvalVersion,
        restored.grants,
      );
    }
  }

  /** Takes back the processes the journal kept of this restored session (see `ProcessTable.restore`). */
  restoreProcesses(records: readonly ProcessRecord[], foreign?: ReadonlyMap<string, string>): void {
    this.processes.restore(records, this.#decisions, foreign);
  }

  /** Restored from the journal and not opened again yet (no `deliver`, no poller). */
  get dormant(): boolean {
    return this.#dormant;
  }

  /**
   * Opens a restored session again (`sessions.open` after a restart): installs `deliver`, which
   * receives every notification still pending, in order, and starts the session's poller.
   */
  async attach(delivery: Delivery | undefined): Promise<SessionInfo> {
    this.#dormant = false;
    this.touch();
    if (delivery !== undefined) this.journal.attach(delivery);
    this.#opened = this.#context.host.start(this.#link);
    await this.#opened;
    return this.info();
  }

  get state(): SessionState {
    return this.#state;
  }

  get live(): boolean {
    return this.#state === 'opening' || this.#state === 'open';
  }

  /** The last call that needed this session open (`sessionIdleTtlMs` counts from it). */
  touch(): void {
    this.#lastActivityAt = this.#context.now();
  }

  /** Open, with nothing running, and untouched for `ttlMs` by `now`. */
  idle(now: number, ttlMs: number): boolean {
    if (this.#state !== 'open' || now - this.#lastActivityAt < ttlMs) return false;
    // Nobody re-opened it after a restart: it goes, with its commands, as a close would.
    return this.#dormant || this.processes.activeCount === 0;
  }

  /** Starts the session's poller and resolves once it runs; a session that fails to open is closed. */
  async open(): Promise<SessionInfo> {
    this.#opened = this.#context.host.start(this.#link);
    try {
      await this.#opened;
    } catch (error) {
      this.#state = 'closed';
      this.#link.dispose();
      throw error;
    }
    if (this.#state === 'opening') {
      this.#state = 'open';
      this.#save();
      this.journal.record('session.opened', { threadId: this.#link.threadId });
      // Opened only once that is durable; a full disk fails the open.
      this.journal.commit();
      this.#context.events.emit('session:opened', this.info());
    }
    return this.info();
  }

  /** Closes the session once; concurrent and repeated calls share the result (G1, G2). */
  close(reason: string): Promise<SessionCloseResult> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  /**
   * Starts a process. Its patterns are checked against this session's refusals and
   * `watch.regexEngine`; one that cannot run in linear time moves the session's poller to the
   * host's isolated threads first, where it can stall no healthy session.
   */
  spawn(processId: string, spec: SpawnSpec): ManagedProcess {
    spec.patterns.forEach((pattern, index) => {
      const refusal = this.#reports.refusal(pattern);
      if (refusal !== undefined) throw patternRefused(index, refusal);
    });
    const slow = spec.patterns.findIndex((pattern) => !linearTimePattern(pattern));
    if (slow >= 0) {
      if (this.#context.config.watch.regexEngine === 'linear') {
        throw patternRefused(
          slow,
          `${describePattern(spec.patterns[slow]!)} cannot run in linear time (it needs backtracking: a backreference, a lookaround, a large counted repetition, the u flag on this Node, or the i flag with a non-ASCII letter or a code point escape) and watch.regexEngine is 'linear'`,
        );
      }
      this.#context.host.isolate?.(this.id);
    }
    return this.processes.spawn(processId, spec);
  }

  /** Round trip through the session's poller: resolves with the run and thread that answered. */
  probe(): Promise<ProbeResult> {
    return this.#link.probe();
  }

  /** The host started run `info.runId` of this session's poller. */
  pollerStarted(info: PollerStartedInfo): void {
    if (this.#link.runId !== info.runId) return;
    this.#pollerRunning = true;
    if (info.restart) this.#pollerRestarts++;
  }

  pollerExited(info: PollerExitedInfo): void {
    if (this.#link.runId === info.runId) this.#pollerRunning = false;
  }

  /** The global breaker refused this session's first match of a pause: the agent hears what and how long. */
  breakerPaused(pause: BreakerPause): void {
    if (!this.live) return;
    const { maxMatches, windowMs } = this.#context.config.watch.breaker;
    this.journal.record('watch.paused', {
      notificationId: `breaker:${pause.trippedAt}:paused`,
      pausedMs: pause.pausedMs,
      message: `watch notifications of all processes are paused for ${pause.pausedMs} ms (more than ${maxMatches} matches in ${windowMs} ms across all processes); matches meanwhile are dropped and counted, and you will be told when they resume. Completions still arrive`,
    });
  }

  /** The global breaker let watch notifications through again; `suppressed` of this session's were lost. */
  breakerReleased(suppressed: number, release: BreakerRelease): void {
    if (!this.live) return;
    const pausedMs = release.releasedAt - release.trippedAt;
    this.journal.record('watch.resumed', {
      notificationId: `breaker:${release.trippedAt}:resumed`,
      suppressed,
      pausedMs,
      message: `watch notifications resumed after a pause of ${pausedMs} ms; ${suppressed} matches of this session were dropped meanwhile`,
    });
  }

  /** Checks whether the session's poller is stuck on a batch (called periodically). */
  inspect(now: number): void {
    if (this.live) this.#link.inspect(now);
  }

  /** Releases what waits on the session's poller (after `vigil.close()` stopped the host). */
  dispose(): void {
    this.#link.dispose();
  }

  info(): SessionInfo {
    return {
      sessionId: this.id,
      state: this.#state,
      openedAt: this.openedAt,
      closedAt: this.#closedAt,
      closeReason: this.#closeReason,
      lastActivityAt: this.#lastActivityAt,
      poller: {
        runId: this.#link.runId,
        threadId: this.#link.threadId,
        restarts: this.#pollerRestarts,
        running: this.#pollerRunning,
      },
      activeProcesses: this.processes.activeCount,
      outboxDepth: this.journal.depth,
      lastSeq: this.journal.lastSeq,
    };
  }

  /** Journals the session's state (committed with the next commit). */
  #save(approvalVersion = this.approvals.snapshot().version): void {
    const state = this.#state === 'opening' ? 'open' : this.#state;
    this.journal.saveSession({
      sessionId: this.id,
      state,
      openedAt: this.openedAt,
      closedAt: this.#closedAt,
      closeReason: this.#closeReason,
      approvalVersion,
    });
  }

  async #close(reason: string): Promise<SessionCloseResult> {
    const { config, host, gate, events, now } = this.#context;
    this.#state = 'closing';
    this.#closeReason = reason;
    this.#save();
    this.journal.stopNotifying();
    // Closing during open waits for the poller to exist, so that it can be stopped.
    await this.#opened.catch(() => undefined);
    const dormant = this.#dormant;
    const [{ forced }] = await Promise.all([
      dormant ? { forced: false } : host.stop(this.id, { timeoutMs: config.stopTimeoutMs }),
      this.processes.endAll(),
    ]);
    // Its refused matches are never reported (G2).
    gate.forget(this.id);
    this.#link.dispose();
    this.#pollerRunning = false;
    // No deliver call starts after this; the one in flight is aborted and gets stopTimeoutMs to settle.
    await this.journal.closeDelivery(config.stopTimeoutMs);
    this.journal.record('session.closed', { reason, forced });
    this.#state = 'closed';
    this.#closedAt = now();
    this.#save();
    events.emit('session:closed', this.info());
    const result = { sessionId: this.id, reason, forced };
    this.#resolveClosed(result);
    return result;
  }
}

function patternRefused(index: number, message: string): VigilError {
  const field = `watch[${index}]`;
  return new VigilError('ERR_INVALID_PATTERN', `${field}: ${message}`, { details: { field, index } });
}
