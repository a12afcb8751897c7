import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ApprovalChange,
  type ApprovalDecision,
  ApprovalQueue,
  type ApprovalRequest,
  type ApprovalSnapshot,
} from '../src/approvals/approval-queue.js';

function record(queue: ApprovalQueue): { seen: ApprovalSnapshot[]; off: () => void } {
  const seen: ApprovalSnapshot[] = [];
  const off = queue.subscribe((snapshot) => {
    seen.push(snapshot);
  });
  return { seen, off };
}

/** A subscriber whose listener promises the test settles by hand. */
function slowSubscriber() {
  const calls: { snapshot: ApprovalSnapshot; done: () => void }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const listener = (snapshot: ApprovalSnapshot): Promise<void> =>
    new Promise<void>((done) => {
      calls.push({ snapshot, done });
      for (const waiter of waiters.filter((w) => calls.length >= w.n)) waiter.resolve();
    });
  const called = (n: number): Promise<void> =>
    calls.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }));
  return { calls, listener, called };
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** Runs `n` async callers that all wait on one barrier, then request together. */
async function concurrentRequests(queue: ApprovalQueue, n: number): Promise<string[]> {
  let open!: () => void;
  const barrier = new Promise<void>((resolve) => {
    open = resolve;
  });
  const callers = Array.from({ length: n }, async (_, i) => {
    await barrier;
    return queue.request({ command: `cmd-${i}` }).approvalId;
  });
  open();
  return Promise.all(callers);
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

afterEach(() => {
  vi.useRealTimers();
});

describe('ApprovalQueue', () => {
  it('starts empty at version 0', () => {
    const queue = new ApprovalQueue('s1');
    expect(queue.snapshot()).toEqual({ sessionId: 's1', head: null, count: 0, version: 0 });
  });

  it('keeps the oldest pending entry as head when a second request arrives', () => {
    const queue = new ApprovalQueue('s1', { now: () => 1000 });
    const { seen } = record(queue);
    const a = queue.request({ command: 'first-A', description: 'A', processId: 'proc_1' });
    queue.request({ command: 'second-B' });
    expect(seen.map((s) => [s.head?.command ?? null, s.count])).toEqual([
      [null, 0],
      ['first-A', 1],
      ['first-A', 2],
    ]);
    expect(seen[2]?.head).toEqual({
      approvalId: a.approvalId,
      sessionId: 's1',
      command: 'first-A',
      description: 'A',
      processId: 'proc_1',
      requestedAt: 1000,
    });
    expect(a.approvalId).toMatch(/^appr_[0-9a-f]{12}$/);
  });

  it('publishes the second entry as head with count 1 when the first is answered', async () => {
    const queue = new ApprovalQueue('s1');
    const a = queue.request({ command: 'first-A' });
    const b = queue.request({ command: 'second-B' });
    const { seen } = record(queue);
    expect(queue.respond(a.approvalId, 'deny')).toBe('denied');
    expect(seen.at(-1)).toMatchObject({ head: { approvalId: b.approvalId, command: 'second-B' }, count: 1 });
    await expect(a.decision).resolves.toBe('denied');
  });

  it('publishes head null and count 0 when the only approval is answered', async () => {
    const queue = new ApprovalQueue('s1');
    const a = queue.request({ command: 'only-A' });
    const { seen } = record(queue);
    expect(queue.respond(a.approvalId, 'approve')).toBe('approved');
    expect(seen.at(-1)).toEqual({ sessionId: 's1', head: null, count: 0, version: 2 });
    await expect(a.decision).resolves.toBe('approved');
  });

  it('adds exactly one version and publishes one snapshot per mutation of every kind', () => {
    vi.useFakeTimers();
    const queue = new ApprovalQueue('s1');
    const { seen } = record(queue);
    const a = queue.request({ command: 'a' });
    const b = queue.request({ command: 'b' }, { timeoutMs: 50 });
    queue.request({ command: 'c' });
    queue.respond(a.approvalId, 'approve');
    vi.advanceTimersByTime(50);
    const d = queue.request({ command: 'd' });
    queue.cancel(d.approvalId);
    queue.request({ command: 'e' });
    queue.clear();
    expect(b.approvalId).not.toBe(a.approvalId);
    expect(seen.map((s) => s.version)).toEqual(range(0, 9));
    expect(seen.map((s) => s.count)).toEqual([0, 1, 2, 3, 2, 1, 2, 1, 2, 0]);
    expect(seen.map((s) => s.head?.command ?? null)).toEqual([
      null,
      'a',
      'a',
      'a',
      'b',
      'c',
      'c',
      'c',
      'c',
      null,
    ]);
  });

  it('rejects an unknown approvalId with ERR_UNKNOWN_APPROVAL naming it and resolves nothing', () => {
    const queue = new ApprovalQueue('s1');
    const a = queue.request({ command: 'a' });
    const { seen } = record(queue);
    const error = catchError(() => queue.respond('appr_000000000000', 'approve'));
    expect(error).toMatchObject({
      code: 'ERR_UNKNOWN_APPROVAL',
      message: expect.stringContaining('appr_000000000000'),
    });
    expect(queue.snapshot()).toMatchObject({ head: { approvalId: a.approvalId }, count: 1, version: 1 });
    expect(seen).toHaveLength(1);
  });

  it('rejects an already-resolved approvalId and never resolves another entry', async () => {
    const queue = new ApprovalQueue('s1');
    const a = queue.request({ command: 'a' });
    const b = queue.request({ command: 'b' });
    queue.respond(a.approvalId, 'approve');
    const error = catchError(() => queue.respond(a.approvalId, 'deny'));
    expect(error).toMatchObject({
      code: 'ERR_UNKNOWN_APPROVAL',
      message: expect.stringContaining(a.approvalId),
    });
    expect(queue.snapshot()).toMatchObject({ head: { approvalId: b.approvalId }, count: 1, version: 3 });
    await expect(a.decision).resolves.toBe('approved');
    queue.respond(b.approvalId, 'deny');
    await expect(b.decision).resolves.toBe('denied');
  });

  it.each(['yes', 'APPROVE', '', undefined, null, 1])(
    'rejects the decision %j with ERR_INVALID_INPUT',
    (bad) => {
      const queue = new ApprovalQueue('s1');
      const a = queue.request({ command: 'a' });
      const error = catchError(() => queue.respond(a.approvalId, bad as ApprovalDecision));
      expect(error).toMatchObject({
        code: 'ERR_INVALID_INPUT',
        message: expect.stringContaining('decision'),
      });
      expect(queue.snapshot()).toMatchObject({ head: { approvalId: a.approvalId }, count: 1, version: 1 });
    },
  );

  it.each(['', '   ', 42, undefined, null])('rejects the command %j with ERR_INVALID_INPUT', (bad) => {
    const queue = new ApprovalQueue('s1');
    const error = catchError(() => queue.request({ command: bad } as unknown as ApprovalRequest));
    expect(error).toMatchObject({ code: 'ERR_INVALID_INPUT', message: expect.stringContaining('command') });
    expect(queue.snapshot().version).toBe(0);
  });

  it('expires an approval after timeoutMs as one mutation and leaves no timer', async () => {
    vi.useFakeTimers();
    const queue = new ApprovalQueue('s1', { timeoutMs: 100, now: () => 5000 });
    const a = queue.request({ command: 'a' });
    const b = queue.request({ command: 'b' }, { timeoutMs: 0 });
    expect(a.approvalId).not.toBe(b.approvalId);
    expect(queue.snapshot().head?.expiresAt).toBe(5100);
    const { seen } = record(queue);
    vi.advanceTimersByTime(99);
    expect(seen).toHaveLength(1);
    vi.advanceTimersByTime(1);
    await expect(a.decision).resolves.toBe('expired');
    expect(seen.map((s) => [s.head?.command, s.count, s.version])).toEqual([
      ['a', 2, 2],
      ['b', 1, 3],
    ]);
    expect(seen[1]?.head?.expiresAt).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    expect(catchError(() => queue.respond(a.approvalId, 'approve'))).toMatchObject({
      code: 'ERR_UNKNOWN_APPROVAL',
    });
  });

  it('stops the timer of an approval answered before it expires', async () => {
    vi.useFakeTimers();
    const queue = new ApprovalQueue('s1', { timeoutMs: 100 });
    const a = queue.request({ command: 'a' });
    expect(vi.getTimerCount()).toBe(1);
    queue.respond(a.approvalId, 'approve');
    expect(vi.getTimerCount()).toBe(0);
    await expect(a.decision).resolves.toBe('approved');
  });

  it('cancels one approval, publishes the next head, and ignores ids that are not pending', async () => {
    const queue = new ApprovalQueue('s1');
    const a = queue.request({ command: 'a' });
    const b = queue.request({ command: 'b' });
    expect(queue.cancel(a.approvalId)).toBe(true);
    expect(queue.snapshot()).toMatchObject({ head: { approvalId: b.approvalId }, count: 1, version: 3 });
    expect(queue.cancel(a.approvalId)).toBe(false);
    expect(queue.cancel('appr_nope')).toBe(false);
    expect(queue.snapshot().version).toBe(3);
    await expect(a.decision).resolves.toBe('cancelled');
  });

  it('clears every pending approval in one snapshot and reports each to onChange', async () => {
    const changes: ApprovalChange[] = [];
    const queue = new ApprovalQueue('s1', { onChange: (change) => changes.push(change) });
    const requests = [
      queue.request({ command: 'a' }),
      queue.request({ command: 'b' }),
      queue.request({ command: 'c' }),
    ];
    const { seen } = record(queue);
    queue.clear();
    expect(seen).toEqual([
      expect.objectContaining({ count: 3, version: 3 }),
      { sessionId: 's1', head: null, count: 0, version: 4 },
    ]);
    const resolved = changes.slice(3);
    expect(resolved.map((c) => [c.kind, c.outcome, c.approval.command])).toEqual([
      ['resolved', 'cancelled', 'a'],
      ['resolved', 'cancelled', 'b'],
      ['resolved', 'cancelled', 'c'],
    ]);
    expect(new Set(resolved.map((c) => c.snapshot))).toEqual(new Set([seen[1]]));
    await expect(Promise.all(requests.map((r) => r.decision))).resolves.toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
    ]);
    queue.clear();
    expect(seen).toHaveLength(2);
  });

  it('calls onChange synchronously after the state changed', () => {
    const observed: [ApprovalChange, ApprovalSnapshot][] = [];
    const queue: ApprovalQueue = new ApprovalQueue('s1', {
      onChange: (change) => observed.push([change, queue.snapshot()]),
    });
    const a = queue.request({ command: 'a', meta: { cwd: '/tmp' } });
    expect(observed).toHaveLength(1);
    queue.respond(a.approvalId, 'approve');
    expect(observed.map(([c, s]) => [c.kind, c.outcome, c.snapshot === s, s.count])).toEqual([
      ['requested', undefined, true, 1],
      ['resolved', 'approved', true, 0],
    ]);
    expect(observed[0]?.[0].approval.meta).toEqual({ cwd: '/tmp' });
  });

  it('closes by cancelling every pending approval, refuses later requests and is idempotent', async () => {
    vi.useFakeTimers();
    const queue = new ApprovalQueue('s1', { timeoutMs: 1000 });
    const a = queue.request({ command: 'a' });
    const b = queue.request({ command: 'b' });
    queue[Symbol.dispose]();
    queue.close();
    expect(queue.snapshot()).toEqual({ sessionId: 's1', head: null, count: 0, version: 3 });
    expect(vi.getTimerCount()).toBe(0);
    await expect(Promise.all([a.decision, b.decision])).resolves.toEqual(['cancelled', 'cancelled']);
    expect(catchError(() => queue.request({ command: 'c' }))).toMatchObject({ code: 'ERR_SESSION_CLOSED' });
    expect(queue.snapshot().version).toBe(3);
  });

  it('delivers the current snapshot first and then every later one with no gap', () => {
    const queue = new ApprovalQueue('s1');
    queue.request({ command: 'a' });
    queue.request({ command: 'b' });
    const { seen } = record(queue);
    queue.request({ command: 'c' });
    expect(seen.map((s) => [s.version, s.count])).toEqual([
      [2, 2],
      [3, 3],
    ]);
  });

  it('publishes counts 1..8 in version order under eight concurrent requests', async () => {
    for (let round = 0; round < 200; round++) {
      const queue = new ApprovalQueue(`s-${round}`);
      const { seen } = record(queue);
      const asyncSeen: ApprovalSnapshot[] = [];
      let drained!: () => void;
      const allDelivered = new Promise<void>((resolve) => {
        drained = resolve;
      });
      queue.subscribe(async (snapshot) => {
        asyncSeen.push(snapshot);
        if (snapshot.count === 8) drained();
      });
      const ids = await concurrentRequests(queue, 8);
      await allDelivered;
      for (const observed of [seen, asyncSeen]) {
        expect(observed.map((s) => s.count)).toEqual(range(0, 8));
        expect(observed.map((s) => s.version)).toEqual(range(0, 8));
        expect(observed.slice(1).every((s) => s.head?.approvalId === ids[0])).toBe(true);
      }
      queue.close();
    }
  });

  it('lets a fast subscriber see every snapshot while a slow one still waits on its first', async () => {
    const queue = new ApprovalQueue('s1');
    const slow = slowSubscriber();
    queue.subscribe(slow.listener);
    const { seen: fast } = record(queue);
    await concurrentRequests(queue, 8);
    expect(fast.map((s) => s.count)).toEqual(range(0, 8));
    expect(slow.calls.map((c) => c.snapshot.count)).toEqual([0]);
    for (let i = 1; i <= 8; i++) {
      slow.calls[i - 1]?.done();
      await slow.called(i + 1);
    }
    expect(slow.calls.map((c) => c.snapshot.count)).toEqual(range(0, 8));
    expect(slow.calls.map((c) => c.snapshot.version)).toEqual(range(0, 8));
  });

  it('keeps delivering to others when a listener throws or rejects', async () => {
    const errors: unknown[] = [];
    const queue = new ApprovalQueue('s1', { onError: (error) => errors.push(error) });
    let throwerCalls = 0;
    queue.subscribe(() => {
      throwerCalls++;
      throw new Error('sync boom');
    });
    queue.subscribe(() => Promise.reject(new Error('async boom')));
    const { seen } = record(queue);
    const a = queue.request({ command: 'a' });
    expect(queue.respond(a.approvalId, 'approve')).toBe('approved');
    await expect(a.decision).resolves.toBe('approved');
    await flush();
    expect(seen.map((s) => s.count)).toEqual([0, 1, 0]);
    expect(throwerCalls).toBe(3);
    expect(errors.map((e) => (e as Error).message).sort()).toEqual([
      ...Array(3).fill('async boom'),
      ...Array(3).fill('sync boom'),
    ]);
  });

  it('stops delivery, including queued snapshots, once unsubscribed', async () => {
    const queue = new ApprovalQueue('s1');
    const slow = slowSubscriber();
    const offSlow = queue.subscribe(slow.listener);
    const { seen, off } = record(queue);
    queue.request({ command: 'a' });
    queue.request({ command: 'b' });
    offSlow();
    off();
    off();
    queue.request({ command: 'c' });
    slow.calls[0]?.done();
    await flush();
    expect(slow.calls).toHaveLength(1);
    expect(seen.map((s) => s.version)).toEqual([0, 1, 2]);
  });

  it('keeps version order for every subscriber when a listener mutates the queue', () => {
    const queue = new ApprovalQueue('s1');
    queue.subscribe((snapshot) => {
      if (snapshot.head) queue.respond(snapshot.head.approvalId, 'approve');
    });
    const { seen } = record(queue);
    queue.request({ command: 'a' });
    expect(seen.map((s) => [s.version, s.count])).toEqual([
      [0, 0],
      [1, 1],
      [2, 0],
    ]);
  });

  it('never lets two queues see each other', () => {
    const one = new ApprovalQueue('s1');
    const two = new ApprovalQueue('s1');
    const { seen } = record(two);
    const a = one.request({ command: 'a' });
    expect(two.snapshot()).toEqual({ sessionId: 's1', head: null, count: 0, version: 0 });
    expect(seen).toHaveLength(1);
    expect(catchError(() => two.respond(a.approvalId, 'approve'))).toMatchObject({
      code: 'ERR_UNKNOWN_APPROVAL',
    });
    expect(two.cancel(a.approvalId)).toBe(false);
    two.close();
    expect(one.snapshot()).toMatchObject({ count: 1, version: 1 });
    expect(() => one.request({ command: 'b' })).not.toThrow();
  });
});
