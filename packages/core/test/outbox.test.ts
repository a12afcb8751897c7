import { describe, expect, it } from 'vitest';
import type { Notification } from '../src/journal/notification.js';
import { Outbox, type OutboxOptions } from '../src/journal/outbox.js';

function note(id: string, seq: number): Notification {
  const data = {
    notificationId: id,
    command: 'x',
    lines: [],
    pattern: null,
    offset: 0,
    suppressed: 0,
    hit: 1,
    truncated: false,
  };
  return { id, sessionId: 's', type: 'watch_match', seq, at: 0, processId: 'proc_1', command: 'x', data };
}

function outbox(deliver: OutboxOptions['deliver'], extra: Partial<OutboxOptions> = {}): Outbox {
  return new Outbox({
    deliver,
    initialDelayMs: 1,
    maxDelayMs: 4,
    timeoutMs: 1000,
    withdrawn: () => false,
    ...extra,
  });
}

/** Resolves once `count` notifications were acknowledged. */
function acks(count: number): { ids: string[]; done: Promise<void>; onDelivered: (n: Notification) => void } {
  const ids: string[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    ids,
    done,
    onDelivered: (n) => {
      ids.push(n.id);
      if (ids.length === count) resolve();
    },
  };
}

describe('Outbox', () => {
  it('delivers an exact replay of an id only once, before and after it was acknowledged', async () => {
    const delivered: string[] = [];
    const tracker = acks(2);
    const box = outbox((n) => void delivered.push(n.id), { onDelivered: tracker.onDelivered });
    expect(box.enqueue(note('a', 1))).toBe(true);
    expect(box.enqueue(note('a', 1))).toBe(false);
    expect(box.enqueue(note('b', 2))).toBe(true);
    await tracker.done;
    expect(box.enqueue(note('a', 1))).toBe(false);
    await box.close();
    expect(delivered).toEqual(['a', 'b']);
  });

  it('retries a failing deliver with backoff and keeps tape order, one at a time', async () => {
    let calls = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const attempts: string[] = [];
    const tracker = acks(5);
    const box = outbox(
      async (n) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        attempts.push(n.id);
        await Promise.resolve();
        inFlight--;
        if (++calls % 2 === 1) throw new Error('gateway busy');
      },
      { onDelivered: tracker.onDelivered },
    );
    for (let i = 1; i <= 5; i++) box.enqueue(note(`n${i}`, i));
    await tracker.done;
    await box.close();
    expect(tracker.ids).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    expect(attempts).toEqual(['n1', 'n1', 'n2', 'n2', 'n3', 'n3', 'n4', 'n4', 'n5', 'n5']);
    expect(maxInFlight).toBe(1);
  });

  it('drops a withdrawn notification instead of delivering it', async () => {
    const withdrawnIds = new Set(['b']);
    const delivered: string[] = [];
    const tracker = acks(2);
    const dropped: string[] = [];
    const box = outbox((n) => void delivered.push(n.id), {
      withdrawn: (n) => withdrawnIds.has(n.id),
      onDelivered: tracker.onDelivered,
      onWithdrawn: (n) => dropped.push(n.id),
    });
    box.enqueue(note('a', 1));
    box.enqueue(note('b', 2));
    box.enqueue(note('c', 3));
    await tracker.done;
    await box.close();
    expect(delivered).toEqual(['a', 'c']);
    expect(dropped).toEqual(['b']);
  });

  it('waits for the deliver in flight on close and starts none afterwards', async () => {
    let release!: () => void;
    let first!: () => void;
    const firstCall = new Promise<void>((resolve) => {
      first = resolve;
    });
    const started: string[] = [];
    const box = outbox(
      (n) =>
        new Promise<void>((resolve) => {
          started.push(n.id);
          release = resolve;
          first();
        }),
    );
    box.enqueue(note('a', 1));
    box.enqueue(note('b', 2));
    await firstCall;
    expect(started).toEqual(['a']);
    let closed = false;
    const closing = box.close().then(() => {
      closed = true;
    });
    await Promise.resolve();
    expect(closed).toBe(false);
    release();
    await closing;
    expect(started).toEqual(['a']);
    expect(box.enqueue(note('c', 3))).toBe(false);
  });

  it('aborts the deliver in flight on close and stops waiting for it after the grace period', async () => {
    let seen: AbortSignal | undefined;
    let first!: () => void;
    const firstCall = new Promise<void>((resolve) => {
      first = resolve;
    });
    const box = outbox((_n, { signal }) => {
      seen = signal;
      first();
      return new Promise(() => undefined);
    });
    box.enqueue(note('a', 1));
    await firstCall;
    await box.close(10);
    expect(seen?.aborted).toBe(true);
  });

  it('aborts the signal of an attempt that timed out, so a late injection can be dropped', async () => {
    const signals: AbortSignal[] = [];
    const tracker = acks(1);
    const box = outbox(
      (_n, { signal }) => {
        signals.push(signal);
        return signals.length === 1 ? new Promise(() => undefined) : undefined;
      },
      { timeoutMs: 20, onDelivered: tracker.onDelivered },
    );
    box.enqueue(note('a', 1));
    await tracker.done;
    expect(signals.map((s) => s.aborted)).toEqual([true, false]);
    // The first call never settles: close waits for it only as long as its grace.
    await box.close(10);
  });

  it('leaves no timer of an attempt behind when close gives up on a deliver that ignores its signal', async () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    let first!: () => void;
    const firstCall = new Promise<void>((resolve) => {
      first = resolve;
    });
    const before = timeouts();
    const box = outbox(
      () => {
        first();
        return new Promise(() => undefined);
      },
      { timeoutMs: 60_000 },
    );
    box.enqueue(note('a', 1));
    await firstCall;
    await box.close(5);
    await new Promise((resolve) => setImmediate(resolve));
    expect(timeouts()).toBeLessThanOrEqual(before);
  });

  it('treats a deliver that never settles as failed after timeoutMs and retries it', async () => {
    let calls = 0;
    const tracker = acks(1);
    const failures: string[] = [];
    const box = outbox(
      () => {
        calls++;
        return calls === 1 ? new Promise(() => undefined) : undefined;
      },
      {
        timeoutMs: 20,
        onDelivered: tracker.onDelivered,
        onFailure: (_n, error) => failures.push(error.message),
      },
    );
    box.enqueue(note('a', 1));
    await tracker.done;
    await box.close(10);
    expect(calls).toBe(2);
    expect(failures).toEqual([expect.stringContaining('did not settle within 20 ms')]);
  });

  it('waits in close for a call that timed out and has not settled yet: nothing of it runs after close', async () => {
    let settleFirst!: () => void;
    let calls = 0;
    const tracker = acks(1);
    const box = outbox(
      () => {
        calls++;
        if (calls > 1) return undefined;
        return new Promise<void>((resolve) => {
          settleFirst = resolve;
        });
      },
      { timeoutMs: 20, onDelivered: tracker.onDelivered },
    );
    box.enqueue(note('a', 1));
    await tracker.done;
    let closed = false;
    const closing = box.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    settleFirst();
    await closing;
    expect(calls).toBe(2);
  });
});
