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

describe('ApprovalQueue answers without an id', () => {
  it('resolves the oldest pending approval on a head response and publishes the next head', async () => {
    const queue = new ApprovalQueue('s1');
    const a = queue.request({ command: 'first-A' });
    const b = queue.request({ command: 'second-B' });
    const { seen } = record(queue);
    const answer = queue.respondHead('deny');
    expect(answer).toMatchObject({ approvalId: a.approvalId, outcome: 'denied' });
    expect(answer.snapshot).toEqual(seen.at(-1));
    expect(answer.snapshot).toMatchObject({ head: { approvalId: b.approvalId }, count: 1, version: 3 });
    await expect(a.decision).resolves.toBe('denied');
  });

  it('refuses a head response on an empty queue with ERR_NO_PENDING_APPROVAL and publishes nothing', () => {
    const queue = new ApprovalQueue('s1');
    const { seen } = record(queue);
    expect(catchError(() => queue.respondHead('approve'))).toMatchObject({
      code: 'ERR_NO_PENDING_APPROVAL',
      message: 'session s1 has no pending approval',
    });
    expect(seen).toHaveLength(1);
  });

  it('answers the head shown at a version while only requests came after it, and refuses one whose head changed', async () => {
    const queue = new ApprovalQueue('s1');
    const a = queue.request({ command: 'a' });
    const seenAt = queue.snapshot().version;
    const b = queue.request({ command: 'b' });
    // Requests behind the head do not make the answer stale: the head is still the one shown.
    expect(queue.respondHead('approve', { version: seenAt })).toMatchObject({ approvalId: a.approvalId });
    await expect(a.decision).resolves.toBe('approved');
    // That answer moved the head to b: an answer to the card showing a must not resolve b.
    const stale = catchError(() => queue.respondHead('approve', { version: seenAt }));
    expect(stale).toMatchObject({ code: 'ERR_STALE_VERSION', details: { field: 'version', version: 1 } });
    expect(queue.snapshot()).toMatchObject({ head: { approvalId: b.approvalId }, count: 1, version: 3 });
    expect(catchError(() => queue.respondHead('approve', { version: 9 }))).toMatchObject({
      code: 'ERR_INVALID_INPUT',
      details: { field: 'version' },
    });
  });

  it('rejects an unknown decision naming the field and every allowed value', () => {
    const queue = new ApprovalQueue('s1');
    queue.request({ command: 'a' });
    for (const answer of [
      () => queue.respondHead('always' as ApprovalDecision),
      () => queue.respondAll('always' as ApprovalDecision),
    ]) {
      expect(catchError(answer)).toMatchObject({
        code: 'ERR_INVALID_INPUT',
        message: 'decision must be one of "approve", "approve_session", "deny", got "always"',
        details: { field: 'decision' },
      });
    }
    expect(queue.snapshot()).toMatchObject({ count: 1, version: 1 });
  });

  it('resolves every pending approval in one version and one snapshot', async () => {
    const changes: ApprovalChange[] = [];
    const queue = new ApprovalQueue('s1', { onChange: (change) => changes.push(change) });
    const made = Array.from({ length: 5 }, (_, i) => queue.request({ command: `step ${i}` }));
    const { seen } = record(queue);
    const { resolved, snapshot } = queue.respondAll('approve');
    expect(resolved).toEqual(made.map(({ approvalId }) => ({ approvalId, outcome: 'approved' })));
    expect(snapshot).toEqual({ sessionId: 's1', head: null, count: 0, version: 6 });
    expect(seen.map((s) => s.version)).toEqual([5, 6]);
    expect(changes.slice(5).map((c) => [c.kind, c.decision, c.snapshot.version])).toEqual(
      Array(5).fill(['resolved', 'approve', 6]),
    );
    await expect(Promise.all(made.map((m) => m.decision))).resolves.toEqual(Array(5).fill('approved'));
    expect(queue.respondAll('deny')).toEqual({ resolved: [], snapshot });
    expect(seen).toHaveLength(2);
  });

  it('resolves all only up to the version answered: a later request stays pending', () => {
    const queue = new ApprovalQueue('s1');
    const a = queue.request({ command: 'a' });
    const b = queue.request({ command: 'b' });
    const seenAt = queue.snapshot().version;
    const c = queue.request({ command: 'c' });
    const { resolved } = queue.respondAll('deny', { version: seenAt });
    expect(resolved.map((r) => r.approvalId)).toEqual([a.approvalId, b.approvalId]);
    expect(queue.snapshot()).toMatchObject({ head: { approvalId: c.approvalId }, count: 1, version: 4 });
  });
});

describe('ApprovalQueue approve for this session', () => {
  it('approves a later request with the same command at once, as one mutation with nothing pending', async () => {
    const changes: ApprovalChange[] = [];
    const queue = new ApprovalQueue('s1', { onChange: (change) => changes.push(change) });
    const first = queue.request({ command: 'make deploy' });
    expect(queue.respond(first.approvalId, 'approve_session')).toBe('approved');
    const { seen } = record(queue);
    const again = queue.request({ command: 'make deploy' });
    expect(again.granted).toBe(true);
    await expect(again.decision).resolves.toBe('approved');
    expect(seen.map((s) => [s.version, s.count, s.head])).toEqual([
      [2, 0, null],
      [3, 0, null],
    ]);
    expect(changes.map((c) => [c.kind, c.outcome, c.decision, c.grantedBy])).toEqual([
      ['requested', undefined, undefined, undefined],
      ['resolved', 'approved', 'approve_session', undefined],
      ['requested', undefined, undefined, undefined],
      ['resolved', 'approved', undefined, first.approvalId],
    ]);
  });

  it('still asks for a different command, for one answered plain approve, and after a deny', () => {
    const queue = new ApprovalQueue('s1');
    queue.respond(queue.request({ command: 'make deploy' }).approvalId, 'approve_session');
    queue.respond(queue.request({ command: 'make test' }).approvalId, 'approve');
    queue.respond(queue.request({ command: 'rm -rf /' }).approvalId, 'deny');
    for (const command of ['make deploy --force', 'make test', 'rm -rf /']) {
      expect(queue.request({ command }).granted).toBe(false);
    }
    expect(queue.snapshot().count).toBe(3);
  });

  it('approves a later request with the same pattern key, whatever its command', () => {
    const queue = new ApprovalQueue('s1');
    queue.request({ command: 'rm -rf a', patternKey: 'rm' });
    queue.respondHead('approve_session');
    expect(queue.request({ command: 'rm -rf b', patternKey: 'rm' }).granted).toBe(true);
    expect(queue.request({ command: 'rm -rf b', patternKey: 'mv' }).granted).toBe(false);
    expect(catchError(() => queue.request({ command: 'x', patternKey: '' }))).toMatchObject({
      details: { field: 'patternKey' },
    });
  });

  it('grants again what a restored queue was told approve_session before', () => {
    const before = new ApprovalQueue('s1');
    const first = before.request({ command: 'make deploy' });
    const granted = before.snapshot().head!;
    before.respond(first.approvalId, 'approve_session');
    const after = new ApprovalQueue('s1');
    after.restore([], 2, [granted]);
    expect(after.request({ command: 'make deploy' }).granted).toBe(true);
    expect(after.snapshot()).toMatchObject({ count: 0, version: 3 });
  });
});

describe('ApprovalQueue subscriber backlog', () => {
  it('skips the oldest snapshots a slow subscriber let wait past the backlog, never the newest', async () => {
    const queue = new ApprovalQueue('s1', { subscriberBacklog: 4 });
    const slow = slowSubscriber();
    queue.subscribe(slow.listener);
    const { seen: fast } = record(queue);
    for (let i = 0; i < 50; i++) queue.request({ command: `cmd-${i}` });
    expect(fast.map((s) => s.version)).toEqual(range(0, 50));
    // Version 0 is with the listener; 1..46 were skipped; the newest four wait.
    slow.calls[0]?.done();
    for (let n = 2; n <= 5; n++) {
      await slow.called(n);
      slow.calls[n - 1]?.done();
    }
    await flush();
    expect(slow.calls.map((c) => c.snapshot.version)).toEqual([0, 47, 48, 49, 50]);
    expect(slow.calls.at(-1)?.snapshot).toBe(queue.snapshot());
  });

  it('rejects a backlog below 1', () => {
    expect(catchError(() => new ApprovalQueue('s1', { subscriberBacklog: 0 }))).toMatchObject({
      code: 'ERR_INVALID_INPUT',
      details: { field: 'subscriberBacklog' },
    });
  });
});
