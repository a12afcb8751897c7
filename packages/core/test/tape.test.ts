import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config.js';
import { VigilError } from '../src/errors.js';
import { Tape } from '../src/journal/tape.js';
import type { AnyTapeEvent, LooseEventData, TapeOptions } from '../src/journal/tape-events.js';

/** An event of a bare tape (any JSON data). */
type TapeEvent = AnyTapeEvent<LooseEventData>;

import { mulberry32 as prng } from './support/random.js';

const defaults = parseConfig({}).tape;

function makeTape(overrides: Partial<TapeOptions> = {}): Tape {
  return new Tape('s1', { ...defaults, ...overrides });
}

function fill(tape: Tape, count: number): void {
  for (let i = 0; i < count; i++) tape.append('heartbeat', { i });
}

/** Pages from `after` until caught up, failing on a reset. */
async function readAll(tape: Tape, limit?: number, after = 0): Promise<TapeEvent[]> {
  const events: TapeEvent[] = [];
  let cursor = after;
  for (;;) {
    const page = await tape.read(limit === undefined ? { after: cursor } : { after: cursor, limit });
    expect(page.reset).toBe(false);
    events.push(...page.events);
    cursor = page.next;
    if (!page.hasMore) return events;
  }
}

/** Lets queued microtasks run until `ready()` holds; deterministic, no timers involved. */
async function until(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ready(); i++) await Promise.resolve();
  expect(ready()).toBe(true);
}

function tracked<T>(promise: Promise<T>): { readonly promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const observed = promise.finally(() => {
    done = true;
  });
  observed.catch(() => {});
  return { promise, settled: () => done };
}

function expectCode(code: string, field?: string) {
  return expect.objectContaining({
    name: 'VigilError',
    code,
    ...(field === undefined ? {} : { details: expect.objectContaining({ field }) }),
  });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Tape', () => {
  describe('append', () => {
    it('assigns gapless seqs from 1 and freezes a copy of data', () => {
      let clock = 1000;
      const tape = makeTape({ now: () => clock++ });
      expect([tape.lastSeq, tape.firstSeq, tape.closed]).toEqual([0, 1, false]);
      const data = { line: 'hello' };
      const first = tape.append('process.output', data, { processId: 'proc_a' });
      data.line = 'changed';
      const second = tape.append('heartbeat');
      expect(first).toEqual({
        seq: 1,
        type: 'process.output',
        at: 1000,
        processId: 'proc_a',
        data: { line: 'hello' },
      });
      expect(second).toEqual({ seq: 2, type: 'heartbeat', at: 1001, data: {} });
      expect(Object.isFrozen(first) && Object.isFrozen(first.data)).toBe(true);
      expect([tape.lastSeq, tape.firstSeq]).toEqual([2, 1]);
    });

    it('throws ERR_SESSION_CLOSED after session.closed and leaves the tape unchanged', () => {
      const tape = makeTape();
      tape.append('session.closed', { reason: 'test' });
      expect(tape.closed).toBe(true);
      expect(() => tape.append('heartbeat')).toThrow(expectCode('ERR_SESSION_CLOSED'));
      expect(() => tape.append('session.closed')).toThrow(expectCode('ERR_SESSION_CLOSED'));
      expect(tape.lastSeq).toBe(1);
    });

    it('throws ERR_INVALID_INPUT for any event of a process after its process.exited', () => {
      const tape = makeTape();
      tape.append('process.exited', { code: 0 }, { processId: 'proc_a' });
      for (const type of ['process.output', 'process.exited', 'watch.match', 'heartbeat'] as const) {
        expect(() => tape.append(type, {}, { processId: 'proc_a' })).toThrow(
          expectCode('ERR_INVALID_INPUT', 'processId'),
        );
      }
      expect(tape.append('process.output', {}, { processId: 'proc_b' }).seq).toBe(2);
      expect(tape.lastSeq).toBe(2);
    });

    it('rejects malformed events with ERR_INVALID_INPUT naming the field and appends nothing', () => {
      const tape = makeTape();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(() => tape.append('process.exited', {})).toThrow(expectCode('ERR_INVALID_INPUT', 'processId'));
      expect(() => tape.append('heartbeat', {}, { processId: '' })).toThrow(
        expectCode('ERR_INVALID_INPUT', 'processId'),
      );
      expect(() => tape.append('bogus' as 'heartbeat')).toThrow(expectCode('ERR_INVALID_INPUT', 'type'));
      expect(() => tape.append('heartbeat', [] as unknown as Record<string, unknown>)).toThrow(
        expectCode('ERR_INVALID_INPUT', 'data'),
      );
      expect(() => tape.append('heartbeat', cyclic)).toThrow(expectCode('ERR_INVALID_INPUT', 'data'));
      expect(() => tape.append('heartbeat', { n: 1n })).toThrow(expectCode('ERR_INVALID_INPUT', 'data'));
      expect(tape.lastSeq).toBe(0);
      expect(tape.append('heartbeat').seq).toBe(1);
    });
  });

  describe('read', () => {
    it('returns the events after the cursor in order with next, exact hasMore and lastSeq', async () => {
      const tape = makeTape();
      fill(tape, 10);
      const page = await tape.read({ after: 3, limit: 4 });
      expect(page.events.map((e) => e.seq)).toEqual([4, 5, 6, 7]);
      expect(page).toMatchObject({
        next: 7,
        hasMore: true,
        lastSeq: 10,
        firstSeq: 1,
        reset: false,
        closed: false,
      });
      const last = await tape.read({ after: 7, limit: 3 });
      expect(last.events.map((e) => e.seq)).toEqual([8, 9, 10]);
      expect(last).toMatchObject({ next: 10, hasMore: false });
    });

    it('returns an empty page with next equal to after when caught up', async () => {
      const tape = makeTape();
      expect(await tape.read()).toEqual({
        events: [],
        next: 0,
        hasMore: false,
        lastSeq: 0,
        firstSeq: 1,
        reset: false,
        closed: false,
      });
      fill(tape, 2);
      expect(await tape.read({ after: 2 })).toMatchObject({
        events: [],
        next: 2,
        hasMore: false,
        lastSeq: 2,
      });
    });

    it('uses defaultLimit when limit is omitted', async () => {
      const tape = makeTape({ defaultLimit: 5 });
      fill(tape, 12);
      const page = await tape.read();
      expect(page.events).toHaveLength(5);
      expect(page).toMatchObject({ next: 5, hasMore: true });
    });

    it('reassembles the tape exactly from concatenated pages, across the maxLimit cap', async () => {
      const tape = makeTape();
      fill(tape, 2500);
      const seqs = Array.from({ length: 2500 }, (_, i) => i + 1);
      for (const limit of [1000, 7, 1, undefined]) {
        expect((await readAll(tape, limit)).map((e) => e.seq)).toEqual(seqs);
      }
      const capped = await tape.read({ limit: 1000 });
      expect(capped).toMatchObject({ next: 1000, hasMore: true });
    });

    it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2', null])(
      'rejects after=%s with ERR_INVALID_CURSOR naming the field',
      async (after) => {
        const tape = makeTape();
        fill(tape, 3);
        await expect(tape.read({ after: after as number })).rejects.toThrow(
          expectCode('ERR_INVALID_CURSOR', 'after'),
        );
      },
    );

    it('rejects a cursor ahead of the tape with ERR_INVALID_CURSOR stating lastSeq', async () => {
      const tape = makeTape();
      fill(tape, 3);
      await expect(tape.read({ after: 4 })).rejects.toThrow(/after \(4\) is ahead of the tape.*lastSeq is 3/);
      await expect(tape.read({ after: 4 })).rejects.toThrow(expectCode('ERR_INVALID_CURSOR', 'after'));
    });

    it.each([0, -1, 1.5, 1001, Number.NaN, '10'])(
      'rejects limit=%s with ERR_INVALID_INPUT instead of clamping',
      async (limit) => {
        const tape = makeTape();
        fill(tape, 3);
        await expect(tape.read({ limit: limit as number })).rejects.toThrow(
          expectCode('ERR_INVALID_INPUT', 'limit'),
        );
      },
    );

    it.each([-1, Number.NaN, '5', null])('rejects waitMs=%s with ERR_INVALID_INPUT', async (waitMs) => {
      const tape = makeTape();
      await expect(tape.read({ waitMs: waitMs as number })).rejects.toThrow(
        expectCode('ERR_INVALID_INPUT', 'waitMs'),
      );
    });

    it('returns the closed tape up to and including session.closed', async () => {
      const tape = makeTape();
      fill(tape, 3);
      tape.append('session.closed');
      const events = await readAll(tape, 2);
      expect(events.map((e) => e.type)).toEqual(['heartbeat', 'heartbeat', 'heartbeat', 'session.closed']);
      expect((await tape.read({ limit: 1 })).closed).toBe(true);
    });
  });

  describe('long-poll', () => {
    it('returns at once when events are pending, whatever waitMs', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const tape = makeTape();
      fill(tape, 2);
      const page = await tape.read({ after: 1, waitMs: 60_000 });
      expect(page.events.map((e) => e.seq)).toEqual([2]);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('wakes on the next append and returns that event', async () => {
      const tape = makeTape();
      fill(tape, 1);
      const read = tracked(tape.read({ after: 1, waitMs: 60_000 }));
      await until(() => tape.waiting === 1);
      expect(read.settled()).toBe(false);
      tape.append('heartbeat', { woke: true });
      const page = await read.promise;
      expect(page.events.map((e) => e.data)).toEqual([{ woke: true }]);
      expect(page).toMatchObject({ next: 2, hasMore: false, lastSeq: 2 });
    });

    it('never misses an append made at any point after the read starts', async () => {
      for (let delay = 0; delay < 12; delay++) {
        const tape = makeTape();
        const read = tape.read({ waitMs: 60_000 });
        for (let i = 0; i < delay; i++) await Promise.resolve();
        tape.append('heartbeat', { delay });
        const page = await read;
        expect(page.events.map((e) => e.data)).toEqual([{ delay }]);
        expect(tape.waiting).toBe(0);
      }
    });

    it('wakes every waiting reader with one append', async () => {
      const tape = makeTape();
      const reads = Array.from({ length: 5 }, () => tape.read({ waitMs: 60_000 }));
      expect(tape.waiting).toBe(5);
      tape.append('heartbeat');
      for (const page of await Promise.all(reads)) expect(page.events.map((e) => e.seq)).toEqual([1]);
      expect(tape.waiting).toBe(0);
    });

    it('returns an empty page only when the deadline passes', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const tape = makeTape();
      fill(tape, 1);
      const read = tracked(tape.read({ after: 1, waitMs: 30 }));
      await vi.advanceTimersByTimeAsync(29);
      expect(read.settled()).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await read.promise).toMatchObject({ events: [], next: 1, hasMore: false, closed: false });
      expect(vi.getTimerCount()).toBe(0);
      expect(tape.waiting).toBe(0);
    });

    it('clamps waitMs above maxWaitMs to maxWaitMs', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const tape = makeTape({ maxWaitMs: 50 });
      for (const waitMs of [10_000, Number.POSITIVE_INFINITY]) {
        const read = tracked(tape.read({ waitMs }));
        await vi.advanceTimersByTimeAsync(49);
        expect(read.settled()).toBe(false);
        await vi.advanceTimersByTimeAsync(1);
        expect((await read.promise).events).toEqual([]);
      }
    });

    it('does not wait when waitMs is 0', async () => {
      const tape = makeTape();
      expect((await tape.read({ waitMs: 0 })).events).toEqual([]);
      expect(tape.waiting).toBe(0);
    });

    it('wakes on close and returns session.closed', async () => {
      const tape = makeTape();
      const read = tape.read({ waitMs: 60_000 });
      tape.append('session.closed');
      expect(await read).toMatchObject({ next: 1, closed: true, events: [{ type: 'session.closed' }] });
    });

    it('returns at once with closed: true when caught up on a closed tape', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const tape = makeTape();
      tape.append('session.closed');
      const read = tracked(tape.read({ after: 1, waitMs: 60_000 }));
      expect(tape.waiting).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      expect(await read.promise).toMatchObject({ events: [], next: 1, closed: true, hasMore: false });
    });

    it('rejects with ERR_ABORTED when the signal aborts while waiting', async () => {
      const tape = makeTape();
      const controller = new AbortController();
      const read = tape.read({ waitMs: 60_000, signal: controller.signal });
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      controller.abort(new Error('stop'));
      await expect(read).rejects.toThrow(expectCode('ERR_ABORTED'));
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      expect(tape.waiting).toBe(0);
    });

    it('rejects up front for an already aborted signal with its VigilError reason', async () => {
      const tape = makeTape();
      fill(tape, 1);
      const reason = new VigilError('ERR_TIMEOUT', 'too slow');
      await expect(tape.read({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      await expect(tape.read({ signal: {} as AbortSignal })).rejects.toThrow(
        expectCode('ERR_INVALID_INPUT', 'signal'),
      );
    });

    it('leaves no timer, listener or waiter once it settles by append, close, deadline or abort', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const endings: Array<(tape: Tape, controller: AbortController) => Promise<void>> = [
        async (tape) => void tape.append('heartbeat'),
        async (tape) => void tape.append('session.closed'),
        async () => void (await vi.advanceTimersByTimeAsync(1000)),
        async (_tape, controller) => controller.abort(),
      ];
      for (const end of endings) {
        const tape = makeTape();
        const controller = new AbortController();
        const read = tracked(tape.read({ waitMs: 1000, signal: controller.signal }));
        expect([
          vi.getTimerCount(),
          tape.waiting,
          getEventListeners(controller.signal, 'abort').length,
        ]).toEqual([1, 1, 1]);
        await end(tape, controller);
        await read.promise.catch(() => {});
        expect([
          vi.getTimerCount(),
          tape.waiting,
          getEventListeners(controller.signal, 'abort').length,
        ]).toEqual([0, 0, 0]);
      }
    });
  });

  describe('retention', () => {
    it('evicts the oldest events beyond maxEvents', async () => {
      const tape = makeTape({ maxEvents: 100 });
      fill(tape, 1000);
      expect([tape.firstSeq, tape.lastSeq]).toEqual([901, 1000]);
      const events = await readAll(tape, 30, 900);
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 901 + i));
      expect(events.map((e) => e.data.i)).toEqual(Array.from({ length: 100 }, (_, i) => 900 + i));
    });

    it('evicts by JSON size beyond maxBytes but never the newest event', async () => {
      const now = () => 0;
      const probe = new Tape('s1', { ...defaults, now }).append('heartbeat', { pad: 'x'.repeat(100) });
      const size = JSON.stringify(probe).length;
      const tape = makeTape({ maxBytes: size * 3, now });
      for (let i = 0; i < 5; i++) tape.append('heartbeat', { pad: 'x'.repeat(100) });
      expect([tape.firstSeq, tape.lastSeq]).toEqual([3, 5]);
      tape.append('heartbeat', { pad: 'y'.repeat(size * 10) });
      expect([tape.firstSeq, tape.lastSeq]).toEqual([6, 6]);
      expect((await tape.read({ after: 5 })).events).toHaveLength(1);
    });

    it('answers reset for a cursor older than the retained window, and paging resumes from next', async () => {
      const tape = makeTape({ maxEvents: 10 });
      fill(tape, 25);
      const page = await tape.read({ after: 3, waitMs: 60_000 });
      expect(page).toEqual({
        events: [],
        next: 15,
        hasMore: true,
        lastSeq: 25,
        firstSeq: 16,
        reset: true,
        closed: false,
      });
      expect((await readAll(tape, 4, page.next)).map((e) => e.seq)).toEqual(
        Array.from({ length: 10 }, (_, i) => 16 + i),
      );
      expect((await tape.read({ after: 15 })).reset).toBe(false);
    });

    it('answers reset to a waiting reader that eviction overtook', async () => {
      const tape = makeTape({ maxEvents: 2 });
      fill(tape, 1);
      const read = tape.read({ after: 1, waitMs: 60_000 });
      fill(tape, 3);
      expect(await read).toMatchObject({ reset: true, next: 2, firstSeq: 3, events: [] });
    });

    // Its cost is measured by `pnpm bench` (tape appends/s), not timed here: the machine is noisy.
    it('keeps the newest maxEvents of a large tape and pages into them', async () => {
      const tape = makeTape({ maxEvents: 100_000, maxBytes: 1 << 30 });
      fill(tape, 400_000);
      const page = await tape.read({ after: 350_000, limit: 1000 });
      expect([tape.firstSeq, page.events[0]?.seq, page.next]).toEqual([300_001, 350_001, 351_000]);
    });
  });

  describe('subscribe', () => {
    it('yields every event in order from after and ends after session.closed', async () => {
      const tape = makeTape({ maxLimit: 3 });
      fill(tape, 5);
      const seen: number[] = [];
      const consumer = (async () => {
        for await (const event of tape.subscribe({ after: 2 })) seen.push(event.seq);
      })();
      for (let i = 0; i < 6; i++) {
        await until(() => tape.waiting === 1 || seen.length === tape.lastSeq - 2);
        tape.append('heartbeat');
      }
      tape.append('session.closed');
      await consumer;
      expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => i + 3));
      expect(tape.waiting).toBe(0);
    });

    it('ends at once when started after session.closed', async () => {
      const tape = makeTape();
      tape.append('session.closed');
      expect(await tape.subscribe({ after: 1 }).next()).toEqual({ done: true, value: undefined });
    });

    it('rejects with ERR_INVALID_CURSOR and details.firstSeq when events it had not read are evicted', async () => {
      const tape = makeTape({ maxEvents: 3 });
      fill(tape, 3);
      const subscription = tape.subscribe();
      fill(tape, 5);
      await expect(subscription.next()).rejects.toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_CURSOR', details: { after: 0, firstSeq: 6 } }),
      );
      expect(await subscription.next()).toEqual({ done: true, value: undefined });
    });

    it('throws ERR_INVALID_CURSOR for a malformed or ahead cursor', () => {
      const tape = makeTape();
      expect(() => tape.subscribe({ after: -1 })).toThrow(expectCode('ERR_INVALID_CURSOR', 'after'));
      expect(() => tape.subscribe({ after: 1 })).toThrow(expectCode('ERR_INVALID_CURSOR', 'after'));
    });

    it('releases its wait when the consumer returns while next() is blocked', async () => {
      const tape = makeTape();
      const subscription = tape.subscribe();
      const pending = subscription.next();
      await until(() => tape.waiting === 1);
      expect(await subscription.return?.()).toEqual({ done: true, value: undefined });
      expect(tape.waiting).toBe(0);
      expect(await pending).toEqual({ done: true, value: undefined });
      tape.append('heartbeat');
      expect(await subscription.next()).toEqual({ done: true, value: undefined });
    });

    it('releases its wait when a for-await loop breaks early', async () => {
      const tape = makeTape();
      fill(tape, 1);
      const subscription = tape.subscribe();
      for await (const event of subscription) {
        expect(event.seq).toBe(1);
        break;
      }
      expect(tape.waiting).toBe(0);
      expect(await subscription.next()).toEqual({ done: true, value: undefined });
    });

    it('rejects with ERR_ABORTED when its signal aborts while waiting, and removes its listener', async () => {
      const tape = makeTape();
      const controller = new AbortController();
      const subscription = tape.subscribe({ signal: controller.signal });
      const pending = subscription.next();
      await until(() => tape.waiting === 1);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      controller.abort();
      await expect(pending).rejects.toThrow(expectCode('ERR_ABORTED'));
      expect([tape.waiting, getEventListeners(controller.signal, 'abort').length]).toEqual([0, 0]);
      expect(await subscription.next()).toEqual({ done: true, value: undefined });
    });

    it('stops yielding buffered events once its signal aborts', async () => {
      const tape = makeTape();
      fill(tape, 5);
      const controller = new AbortController();
      const subscription = tape.subscribe({ signal: controller.signal });
      expect((await subscription.next()).value?.seq).toBe(1);
      controller.abort();
      await expect(subscription.next()).rejects.toThrow(expectCode('ERR_ABORTED'));
      expect(await subscription.next()).toEqual({ done: true, value: undefined });
    });

    it('serves concurrent next() calls in order', async () => {
      const tape = makeTape();
      const subscription = tape.subscribe();
      const pending = [subscription.next(), subscription.next(), subscription.next()];
      fill(tape, 1);
      await until(() => tape.waiting === 1);
      fill(tape, 2);
      const results = await Promise.all(pending);
      expect(results.map((r) => r.value?.seq)).toEqual([1, 2, 3]);
    });
  });

  describe('G7', () => {
    it('shows process.exited as the last event of a process whenever its terminal state is visible', async () => {
      for (let rep = 0; rep < 1000; rep++) {
        const random = prng(rep);
        const tape = makeTape();
        const processes = Array.from({ length: 4 }, (_, i) => ({ id: `proc_${rep}_${i}`, state: 'running' }));
        const pause = async () => {
          for (let n = Math.floor(random() * 4); n > 0; n--) await Promise.resolve();
        };
        const writer = async (proc: { id: string; state: string }) => {
          tape.append('process.started', {}, { processId: proc.id });
          for (let i = Math.floor(random() * 6); i > 0; i--) {
            await pause();
            tape.append('process.output', { i }, { processId: proc.id });
          }
          await pause();
          proc.state = 'exited';
          tape.append('process.exited', { code: 0 }, { processId: proc.id });
        };
        const reader = async (proc: { id: string; state: string }) => {
          while (proc.state !== 'exited') await Promise.resolve();
          const own = (await readAll(tape, 3)).filter((e) => e.processId === proc.id);
          expect(own.at(-1)?.type).toBe('process.exited');
        };
        const noise = async () => {
          for (let i = 0; i < 5; i++) {
            await pause();
            tape.append('heartbeat', { i });
          }
        };
        await Promise.all([...processes.map(writer), ...processes.map(reader), noise()]);
        expect(tape.lastSeq).toBe((await readAll(tape, 1000)).length);
      }
    });
  });
});
