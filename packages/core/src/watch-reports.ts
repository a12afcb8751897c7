import type { ManagedProcess } from './managed-process.js';
import type { VigilConfig } from './options.js';
import type { Notification } from './outbox.js';
import type { PollerHost } from './poller-host.js';
import type { MatchReport, ProcessReport } from './poller-protocol.js';
import type { ProcessRegistry } from './processes.js';
import type { Session } from './session.js';
import type { SessionRegistry } from './sessions.js';
import { WatchBreaker } from './watch-breaker.js';
import { describePattern } from './watch-patterns.js';

export interface WatchReportsOptions {
  readonly config: VigilConfig;
  readonly sessions: SessionRegistry;
  readonly processes: ProcessRegistry;
  readonly host: PollerHost;
  readonly now: () => number;
}

/**
 * Turns what pollers commit into tape events and notifications, on the main thread: watch
 * matches (through the global breaker), watch disabling, heartbeats and drained output. Each
 * report is applied in one synchronous step together with the cursor it reached, so a restarted
 * poller neither loses nor repeats a match (G4, G9).
 */
export class WatchReports {
  readonly #config: VigilConfig;
  readonly #sessions: SessionRegistry;
  readonly #processes: ProcessRegistry;
  readonly #host: PollerHost;
  readonly #now: () => number;
  readonly #breaker: WatchBreaker;
  #releaseTimer: NodeJS.Timeout | undefined;

  constructor(options: WatchReportsOptions) {
    this.#config = options.config;
    this.#sessions = options.sessions;
    this.#processes = options.processes;
    this.#host = options.host;
    this.#now = options.now;
    this.#breaker = new WatchBreaker(options.config.watch.breaker);
  }

  /** Wires a new session's poller link to this reporter. */
  attach(session: Session): void {
    session.link.handlers = {
      report: (report) => this.#report(session, report),
      stuck: (culprit) => this.#stuck(session, culprit),
    };
  }

  /** Forgets a closed session (its breaker counts are never reported: G2). */
  detach(session: Session): void {
    this.#breaker.forgetSession(session.id);
  }

  close(): void {
    clearTimeout(this.#releaseTimer);
    this.#releaseTimer = undefined;
  }

  #report(session: Session, report: ProcessReport): void {
    const process = this.#processes.byId(report.processId);
    if (process === undefined || process.terminal || !session.live) return;
    for (const match of report.matches) this.#match(session, process, match);
    // A heartbeat before disabling: disabling may finish an exited process, whose final event comes last.
    if (report.heartbeat !== undefined) this.#heartbeat(session, process, report.heartbeat.upTo);
    if (report.disabled !== undefined && process.watching) {
      process.watching = false;
      process.fallbackNotify = true;
      const { reason, suppressed } = report.disabled;
      const why =
        reason === 'lifetime'
          ? `${this.#config.watch.lifetimeMaxHits} matches were delivered (watch.lifetimeMaxHits)`
          : `${this.#config.watch.strikeLimit} cooldown windows in a row dropped matches (watch.strikeLimit)`;
      this.#notify(
        session,
        process,
        'watch.disabled',
        'watch_disabled',
        `${process.processId}:watch_disabled`,
        {
          reason,
          message: `watching disabled: ${why}; you will be notified when the process exits`,
          suppressed,
        },
      );
      this.#processes.stopFollowing(session, process);
    }
    this.#processes.progressed(session, process);
    if (report.drained) this.#processes.drained(process);
  }

  #match(session: Session, process: ManagedProcess, match: MatchReport): void {
    // A consumed completion makes later matches noise (G10).
    if (process.consumed) return;
    if (!this.#breaker.admit(session.id, this.#now())) {
      this.#armRelease();
      return;
    }
    const pattern = process.spec.patterns[match.pattern];
    this.#notify(
      session,
      process,
      'watch.match',
      'watch_match',
      `${process.processId}:match:${match.offset}`,
      {
        lines: match.lines,
        pattern: pattern === undefined ? null : describePattern(pattern),
        offset: match.offset,
        suppressed: match.suppressed,
        hit: match.hit,
        truncated: match.truncated,
      },
    );
  }

  #heartbeat(session: Session, process: ManagedProcess, upTo: number): void {
    const from = Math.max(process.heartbeatFrom, process.output.start);
    if (upTo <= from) return;
    const { bytes } = process.output.read(from, upTo - from);
    process.heartbeatFrom = upTo;
    const text = bytes.toString('utf8');
    const limit = this.#config.completion.outputChars;
    this.#notify(session, process, 'heartbeat', 'heartbeat', `${process.processId}:heartbeat:${upTo}`, {
      output: text.length > limit ? text.slice(-limit) : text,
      fromOffset: from,
      toOffset: upTo,
    });
  }

  #stuck(
    session: Session,
    culprit: { readonly processId: string; readonly pattern: number } | undefined,
  ): void {
    const process = culprit === undefined ? undefined : this.#processes.byId(culprit.processId);
    if (culprit !== undefined && process !== undefined && !process.terminal) {
      session.link.disablePattern(culprit.processId, culprit.pattern);
      const pattern = process.spec.patterns[culprit.pattern];
      const shown = pattern === undefined ? `#${culprit.pattern}` : describePattern(pattern);
      this.#notify(
        session,
        process,
        'watch.disabled',
        'watch_disabled',
        `${process.processId}:pattern_timeout:${culprit.pattern}`,
        {
          reason: 'pattern_timeout',
          pattern: shown,
          message: `watch pattern ${shown} took longer than ${this.#config.watch.matchTimeoutMs} ms on one batch of output (a catastrophic regex?); it is disabled and its poller thread was restarted`,
          suppressed: 0,
        },
      );
      process.disabledPatterns.add(culprit.pattern);
      if (process.disabledPatterns.size >= process.spec.patterns.length) {
        process.watching = false;
        process.fallbackNotify = true;
      }
    }
    this.#host
      .restart(session.id, 'a poller did not commit its batch within watch.matchTimeoutMs')
      .catch(() => {
        // The session may be closing; its close stops the poller anyway.
      });
  }

  #notify(
    session: Session,
    process: ManagedProcess,
    eventType: 'watch.match' | 'watch.disabled' | 'heartbeat',
    type: Notification['type'],
    id: string,
    data: Record<string, unknown>,
  ): void {
    const event = session.tape.append(
      eventType,
      { ...data, notificationId: id, command: process.spec.display },
      { processId: process.processId },
    );
    session.outbox.enqueue({
      id,
      sessionId: session.id,
      type,
      seq: event.seq,
      at: event.at,
      processId: process.processId,
      command: process.spec.display,
      data: event.data,
    });
  }

  /** One timer for the breaker: when its pause ends, each session learns how many matches it lost. */
  #armRelease(): void {
    if (this.#releaseTimer !== undefined) return;
    const at = this.#breaker.nextReleaseAt();
    if (at === null) return;
    this.#releaseTimer = setTimeout(
      () => {
        this.#releaseTimer = undefined;
        const release = this.#breaker.poll(this.#now());
        if (release === null) {
          this.#armRelease();
          return;
        }
        for (const [sessionId, suppressed] of release.suppressedBySession) {
          const session = this.#sessions.byId(sessionId);
          if (session === undefined || !session.live) continue;
          session.tape.append('watch.resumed', {
            suppressed,
            pausedMs: release.releasedAt - release.trippedAt,
            message: `watch notifications were paused for ${release.releasedAt - release.trippedAt} ms (more than ${this.#config.watch.breaker.maxMatches} matches in ${this.#config.watch.breaker.windowMs} ms across all processes); ${suppressed} matches of this session were not delivered`,
          });
        }
      },
      Math.max(0, at - this.#now()),
    );
    this.#releaseTimer.unref();
  }
}
