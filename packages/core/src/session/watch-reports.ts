import type { VigilConfig } from '../config.js';
import type { Journal } from '../journal/journal.js';
import type { PollerHost } from '../poller/host.js';
import type { PollerLink, StuckCulprit } from '../poller/link.js';
import type { MatchReport, ProcessReport } from '../poller/protocol.js';
import type { ManagedProcess } from '../process/managed-process.js';
import { describePattern, type WatchPattern } from '../watch/patterns.js';
import type { ProcessTable } from './process-table.js';
import type { SessionView } from './session-info.js';

export interface WatchReportsParts {
  readonly session: SessionView & { readonly id: string };
  readonly config: VigilConfig;
  readonly journal: Journal;
  readonly link: PollerLink;
  readonly processes: ProcessTable;
  readonly host: PollerHost;
}

/**
 * Turns what a session's poller commits into journal events, on the main thread: watch matches,
 * watch disabling, heartbeats and drained output. Each report is applied in one synchronous step
 * together with the cursor it reached (the link applied it), so a restarted poller neither loses
 * nor repeats a match (G4, G9).
 */
export class WatchReports {
  readonly #parts: WatchReportsParts;
  /** Watchdog trips per pattern (as `describePattern` shows it) in this session. */
  readonly #timeouts = new Map<string, number>();

  constructor(parts: WatchReportsParts) {
    this.#parts = parts;
  }

  apply(report: ProcessReport): void {
    const { session, processes } = this.#parts;
    const process = processes.get(report.processId);
    if (process === undefined || process.terminal || !session.live) return;
    for (const match of report.matches) this.#match(process, match);
    // A heartbeat before disabling: disabling may finish an exited process, whose final event comes last.
    if (report.heartbeat !== undefined) this.#heartbeat(process, report.heartbeat);
    const disabled = process.watching ? report.disabled : undefined;
    if (disabled !== undefined) process.disableWatch();
    // The cursor, limiter and heartbeat clock are journaled with the events they produced (one
    // commit): a restart resumes after them, with the watch as disabled as it was.
    if (report.matches.length > 0 || report.heartbeat !== undefined || disabled !== undefined) {
      processes.persist(process);
    }
    if (disabled !== undefined) {
      const { reason, suppressed } = disabled;
      const { watch } = this.#parts.config;
      const why =
        reason === 'lifetime'
          ? `${watch.lifetimeMaxHits} matches were delivered (watch.lifetimeMaxHits)`
          : `${watch.strikeLimit} cooldown windows in a row dropped matches (watch.strikeLimit)`;
      this.#parts.journal.record(
        'watch.disabled',
        {
          notificationId: `${process.processId}:watch_disabled`,
          command: process.spec.display,
          reason,
          message: `watching disabled: ${why}; you will be notified when the process exits`,
          suppressed,
        },
        about(process),
      );
      processes.stopFollowing(process);
    }
    if (report.drained) processes.drained(process);
  }

  /**
   * The poller did not commit in time. Its session is quarantined: the host ends the stuck run and
   * runs the session's poller on threads no healthy session shares. The pattern it was stuck in
   * counts a timeout; at `watch.patternTimeoutLimit` it is disabled for every process of the
   * session and refused for new ones.
   */
  stuck(culprit: StuckCulprit): void {
    const { session, processes, host } = this.#parts;
    const process = culprit === undefined ? undefined : processes.get(culprit.processId);
    const pattern = culprit === undefined ? undefined : process?.spec.patterns[culprit.pattern];
    // A closing session records nothing more, so it changes no watch state either; its poller stops anyway.
    if (pattern !== undefined && session.live) {
      const shown = describePattern(pattern);
      const timeouts = (this.#timeouts.get(shown) ?? 0) + 1;
      this.#timeouts.set(shown, timeouts);
      if (timeouts === this.#parts.config.watch.patternTimeoutLimit) this.#refuse(shown, timeouts);
    }
    host.restart(session.id, 'a poller did not commit its batch within watch.matchTimeoutMs').catch(() => {
      // The session may be closing; its close stops the poller anyway.
    });
  }

  /** Why a pattern is refused in this session (it made the poller stuck too often), if it is. */
  refusal(pattern: WatchPattern): string | undefined {
    const shown = describePattern(pattern);
    const timeouts = this.#timeouts.get(shown) ?? 0;
    if (timeouts < this.#parts.config.watch.patternTimeoutLimit) return undefined;
    return `watch pattern ${shown} is refused in this session: it kept its poller busy longer than watch.matchTimeoutMs on one batch ${timeouts} times (watch.patternTimeoutLimit); it cannot run in linear time (a catastrophic regex?)`;
  }

  /** Disables the pattern shown as `shown` for every running process of the session that watches with it. */
  #refuse(shown: string, timeouts: number): void {
    const { config, journal, link, processes } = this.#parts;
    for (const process of processes.active()) {
      process.spec.patterns.forEach((pattern, index) => {
        if (describePattern(pattern) !== shown || !link.isFollowing(process.processId)) return;
        // Disabled before (by a vigil before a restart, whose count of timeouts started over).
        if (process.patternDisabled(index)) return;
        link.disablePattern(process.processId, index);
        journal.record(
          'watch.disabled',
          {
            notificationId: `${process.processId}:pattern_timeout:${index}`,
            command: process.spec.display,
            reason: 'pattern_timeout',
            pattern: shown,
            message: `watch pattern ${shown} took longer than ${config.watch.matchTimeoutMs} ms on one batch of output ${timeouts} times in this session (watch.patternTimeoutLimit; a catastrophic regex that cannot run in linear time?); it is disabled, and refused for new processes of this session`,
            suppressed: 0,
          },
          about(process),
        );
        process.disablePattern(index);
        processes.persist(process);
      });
    }
  }

  #match(process: ManagedProcess, match: MatchReport): void {
    const pattern = process.spec.patterns[match.pattern];
    this.#parts.journal.record(
      'watch.match',
      {
        notificationId: `${process.processId}:match:${match.offset}`,
        command: process.spec.display,
        lines: match.lines,
        pattern: pattern === undefined ? null : describePattern(pattern),
        offset: match.offset,
        suppressed: match.suppressed,
        hit: match.hit,
        truncated: match.truncated,
      },
      about(process),
    );
  }

  #heartbeat(process: ManagedProcess, beat: NonNullable<ProcessReport['heartbeat']>): void {
    this.#parts.journal.record(
      'heartbeat',
      {
        notificationId: `${process.processId}:heartbeat:${beat.upTo}`,
        command: process.spec.display,
        output: beat.text,
        fromOffset: beat.from,
        toOffset: beat.upTo,
      },
      about(process),
    );
  }
}

function about(process: ManagedProcess): { processId: string; command: string } {
  return { processId: process.processId, command: process.spec.display };
}
