import type {
  Notification,
  NotificationOf,
  NotificationType,
  TapeEvent,
  Vigil,
  VigilOptions,
} from '@vigil/core';
import { deadline, TIMED_OUT } from '@vigil/core/host';
import { inThreadVigil, resources, workerVigil } from './fixtures.js';
import { isDead } from './proc.js';
import { Recorder } from './recorder.js';

/** A way to build a vigil (closed after the test by the fixtures). */
export interface HostCase {
  readonly name: string;
  readonly make: (options?: Omit<VigilOptions, 'host'>) => Vigil;
}

/** Both poller hosts: most process tests run on each. */
export const HOSTS: readonly HostCase[] = [
  {
    name: 'worker host',
    make: (options = {}) => workerVigil(options, { pool: { minThreads: 1, maxThreads: 2 } }).vigil,
  },
  { name: 'in-thread host', make: (options = {}) => inThreadVigil(options) },
];

let sessionSeq = 0;
/** A session id unique within this test file (race tests repeat in one process). */
export function newSessionId(prefix = 's'): string {
  sessionSeq += 1;
  return `${prefix}-${sessionSeq}`;
}

/**
 * A `deliver` callback that records every call and every acknowledgement, and lets a test await a
 * notification. `failWhen(notification, call)` (call is 1-based over all calls) makes a call fail:
 * `'throw'` throws synchronously, `'reject'` returns a rejected promise.
 */
export class Inbox {
  /** Every `deliver` call, in call order (failed ones included). */
  readonly calls: Notification[] = [];
  readonly #acked = new Recorder<Notification>();
  failWhen: (notification: Notification, call: number) => 'throw' | 'reject' | undefined = () => undefined;

  /** Acknowledged notifications, in acknowledgement order. */
  get acked(): readonly Notification[] {
    return this.#acked.items;
  }

  readonly deliver = (notification: Notification): Promise<void> => {
    this.calls.push(notification);
    const failure = this.failWhen(notification, this.calls.length);
    if (failure === 'throw') throw new Error(`deliver failure (call ${this.calls.length})`);
    if (failure === 'reject')
      return Promise.reject(new Error(`deliver rejection (call ${this.calls.length})`));
    this.#acked.push(notification);
    return Promise.resolve();
  };

  /** Resolves with the first acknowledged notification (already or later) that satisfies `match`. */
  next(match: (notification: Notification) => boolean): Promise<Notification> {
    return this.#acked.next(match);
  }

  /** Resolves with the next acknowledged notification of `type` for `processId`. */
  of<K extends NotificationType>(
    processId: string,
    type: K,
    match: (n: NotificationOf<K>) => boolean = () => true,
  ): Promise<NotificationOf<K>> {
    return this.#acked.next((n): n is NotificationOf<K> => isOf(n, processId, type) && match(n));
  }

  /** Acknowledged notifications of `processId` of one type. */
  ackedFor<K extends NotificationType>(processId: string, type: K): NotificationOf<K>[];
  /** Acknowledged notifications of `processId`. */
  ackedFor(processId: string): Notification[];
  ackedFor(processId: string, type?: NotificationType): Notification[] {
    return this.acked.filter((n) => n.processId === processId && (type === undefined || n.type === type));
  }
}

function isOf<K extends NotificationType>(
  n: Notification,
  processId: string,
  type: K,
): n is NotificationOf<K> {
  return n.processId === processId && n.type === type;
}

/** Every retained event of a session's tape (pages without waiting). */
export async function readTape(vigil: Vigil, sessionId: string): Promise<TapeEvent[]> {
  const events: TapeEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await vigil.tape.read(sessionId, { after, limit: 1000 });
    events.push(...page.events);
    after = page.next;
    if (!page.hasMore) return events;
  }
}

/**
 * Long-polls the tape until `done(allEventsSoFar)` holds; rejects after `timeoutMs` (a liveness
 * bound: the events under test are expected long before it).
 */
export async function tapeUntil(
  vigil: Vigil,
  sessionId: string,
  done: (events: readonly TapeEvent[]) => boolean,
  timeoutMs = 10_000,
): Promise<TapeEvent[]> {
  const events: TapeEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  let after = 0;
  for (;;) {
    const page = await vigil.tape.read(sessionId, { after, limit: 1000, waitMs: 500 });
    events.push(...page.events);
    after = page.next;
    if (done(events)) return events;
    if (page.closed && !page.hasMore) throw new Error('the tape closed before the awaited event');
    if (Date.now() > deadline)
      throw new Error(`the awaited tape event did not appear within ${timeoutMs} ms`);
  }
}

/**
 * The pid of a started process, once its `process.started` event is on the tape: a spawner reports
 * it by message, which may come after the child's first output reached the spool.
 */
export async function startedPid(vigil: Vigil, processId: string): Promise<number> {
  const { sessionId } = vigil.processes.get(processId);
  await tapeUntil(vigil, sessionId, (events) =>
    events.some((event) => event.type === 'process.started' && event.processId === processId),
  );
  return vigil.processes.get(processId).pid!;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Whether a foreign pid (a grandchild vigil does not own) is dead within `timeoutMs`. Its death
 * has no event, so this is a bounded poll of /proc.
 */
export async function diesWithin(pid: number, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!isDead(pid)) {
    if (Date.now() > deadline) return false;
    await pause(5);
  }
  return true;
}

/** Child process and pipe handles of this process (libuv `ProcessWrap` / `PipeWrap`). */
export function childHandles(): number {
  const counts = resources();
  return (counts.ProcessWrap ?? 0) + (counts.PipeWrap ?? 0);
}

/**
 * Resolves once this process holds no more child/pipe handles than `baseline`: proof that a child's
 * exit was reaped and its pipes closed, which vigil does not announce. A bounded poll.
 */
export async function untilChildHandles(baseline: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (childHandles() > baseline) {
    if (Date.now() > deadline) throw new Error(`child handles stayed above ${baseline}`);
    await pause(2);
  }
  // The last pipe's 'close' listener (which ends the run) runs on a tick after the handle closed.
  await new Promise((resolve) => setImmediate(resolve));
}

/** Resolves with `promise`, or with `fallback` once `ms` passed (a liveness bound on a hang). */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  const outcome = await deadline(promise, ms);
  return outcome === TIMED_OUT ? fallback : outcome;
}

/** A few event-loop turns (timers and I/O callbacks included). */
export async function turns(count = 5): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}
