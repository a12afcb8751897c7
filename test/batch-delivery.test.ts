import type { Notification, NotificationBatch, Vigil, VigilOptions } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import { workerVigil } from './support/fixtures.js';
import { raceIt } from './support/race.js';

const WATCHED = { watch: { cooldownMs: 0, lifetimeMaxHits: 1000 } } as const;

/** Resolves once the session's tape holds a `process.exited` of `processId` (its notification is then queued). */
async function exited(vigil: Vigil, sessionId: string, processId: string): Promise<void> {
  for await (const event of vigil.tape.subscribe(sessionId)) {
    if (event.type === 'process.exited' && event.processId === processId) return;
  }
}

/** The acknowledgements of the session's tape, in tape order, and the seqs of the notifications. */
async function tapeNotifications(
  vigil: Vigil,
  sessionId: string,
): Promise<{ acked: string[]; seqs: number[] }> {
  const { events } = await vigil.tape.read(sessionId, { limit: 1000 });
  return {
    acked: events
      .filter((e) => e.type === 'notification.delivered')
      .map((e) => String(e.data.notificationId)),
    seqs: events.filter((e) => e.type === 'watch.match' || e.type === 'process.exited').map((e) => e.seq),
  };
}

/**
 * A `deliverBatch` that records every call and holds the first one until `release()`, so that the
 * notifications produced meanwhile are all ready when the next delivery starts.
 */
function heldInbox(fail: (call: number) => boolean = () => false) {
  const calls: string[][] = [];
  const acked: Notification[] = [];
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const waiting = new Set<{ processId: string; resolve: () => void }>();
  const settle = (): void => {
    for (const waiter of waiting) {
      if (!acked.some((n) => n.type === 'completion' && n.processId === waiter.processId)) continue;
      waiting.delete(waiter);
      waiter.resolve();
    }
  };
  return {
    calls,
    acked,
    release,
    /** Resolves once the completion of `processId` was acknowledged. */
    completed(processId: string): Promise<void> {
      return new Promise((resolve) => {
        waiting.add({ processId, resolve });
        settle();
      });
    },
    deliverBatch: async (batch: NotificationBatch) => {
      const call = calls.push(batch.notifications.map((n) => n.id));
      if (call === 1) await held;
      if (fail(call)) throw new Error(`refused call ${call}`);
      acked.push(...batch.notifications);
      settle();
    },
  };
}

async function openHeld(options: VigilOptions, inbox: ReturnType<typeof heldInbox>) {
  const fixture = workerVigil({ ...WATCHED, ...options });
  await fixture.vigil.sessions.open('s', { deliverBatch: inbox.deliverBatch });
  return fixture;
}

/** Spawns a process printing `lines` matching lines, and resolves once its completion is queued. */
async function burst(vigil: Vigil, lines: number): Promise<string> {
  const { processId } = vigil.processes.spawn({
    sessionId: 's',
    command: `i=0; while [ $i -lt ${lines} ]; do i=$((i+1)); echo "ERROR $i"; done`,
    watch: ['ERROR'],
  });
  await exited(vigil, 's', processId);
  return processId;
}

/** Spawns `count` processes that exit at once, one after the other; resolves once every completion is queued. */
async function completions(vigil: Vigil, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { processId } = vigil.processes.spawn({ sessionId: 's', command: `exit ${i}` });
    await exited(vigil, 's', processId);
    ids.push(processId);
  }
  return ids;
}

describe('batch delivery', () => {
  raceIt('a batch holds every ready notification in tape order and is acknowledged as a whole', async () => {
    const inbox = heldInbox();
    await using fixture = await openHeld({}, inbox);
    const { vigil } = fixture;
    const processId = await burst(vigil, 6);
    inbox.release();
    await inbox.completed(processId);
    // The first call took what was ready then; everything queued while it was held went in one call.
    expect(inbox.calls).toHaveLength(2);
    const ids = inbox.acked.map((n) => n.id);
    expect(inbox.calls.flat()).toEqual(ids);
    expect(inbox.acked.map((n) => n.seq)).toEqual([...inbox.acked.map((n) => n.seq)].sort((a, b) => a - b));
    expect(inbox.acked.at(-1)).toMatchObject({ type: 'completion', processId });
    await vigil.sessions.close('s');
    const tape = await tapeNotifications(vigil, 's');
    expect(tape.acked).toEqual(ids);
    expect(inbox.acked.map((n) => n.seq)).toEqual(tape.seqs);
  });

  raceIt('bounds by count and by characters split the ready notifications into batches', async () => {
    const byCount = heldInbox();
    await using counted = await openHeld({ delivery: { maxBatch: 3 } }, byCount);
    const last = (await completions(counted.vigil, 8)).at(-1)!;
    byCount.release();
    await byCount.completed(last);
    const sizes = byCount.calls.slice(1).map((call) => call.length);
    const rest = byCount.acked.length - byCount.calls[0]!.length;
    expect(sizes).toEqual(Array.from({ length: Math.ceil(rest / 3) }, (_, i) => Math.min(3, rest - i * 3)));

    const byChars = heldInbox();
    await using sized = await openHeld({ delivery: { maxBatchChars: 1 } }, byChars);
    const lastSized = (await completions(sized.vigil, 4)).at(-1)!;
    byChars.release();
    await byChars.completed(lastSized);
    // Each notification is larger than the bound: it goes alone.
    expect(byChars.calls.map((call) => call.length)).toEqual([1, 1, 1, 1]);
  });

  raceIt('a failing deliverBatch retries the batch: no duplicates after success, order kept', async () => {
    const inbox = heldInbox((call) => call <= 3);
    await using fixture = await openHeld(
      { delivery: { retry: { initialDelayMs: 1, maxDelayMs: 4 } } },
      inbox,
    );
    const { vigil } = fixture;
    const last = (await completions(vigil, 5)).at(-1)!;
    inbox.release();
    await inbox.completed(last);
    // Each retry carries the refused batch again, in order.
    expect(inbox.calls[1]).toEqual(inbox.calls[0]);
    expect(inbox.calls[2]).toEqual(inbox.calls[0]);
    expect(inbox.calls[3]).toEqual(inbox.calls[0]);
    const ids = inbox.acked.map((n) => n.id);
    expect(new Set(ids).size).toBe(5);
    expect(inbox.acked.map((n) => n.seq)).toEqual([...inbox.acked.map((n) => n.seq)].sort((a, b) => a - b));
    await vigil.sessions.close('s');
    expect((await tapeNotifications(vigil, 's')).acked).toEqual(ids);
  });

  raceIt('a withdrawn notification is not in the retried batch', async () => {
    let accept = false;
    const inbox = heldInbox(() => !accept);
    await using fixture = await openHeld(
      { delivery: { retry: { initialDelayMs: 1, maxDelayMs: 4 } } },
      inbox,
    );
    const { vigil } = fixture;
    const consumed = await burst(vigil, 2);
    const { processId: other } = vigil.processes.spawn({ sessionId: 's', command: 'exit 3' });
    await exited(vigil, 's', other);
    inbox.release();
    // Reading the completion through `wait` consumes it: the process's notifications are withdrawn.
    await vigil.processes.wait(consumed);
    accept = true;
    await inbox.completed(other);
    expect(inbox.acked.map((n) => n.processId)).toEqual([other]);
    const { events } = await vigil.tape.read('s', { limit: 1000 });
    const withdrawn = events.filter((e) => e.type === 'notification.withdrawn');
    // The refused batches held the consumed process's notifications; none is delivered, each is withdrawn.
    expect(inbox.calls[0]?.[0]).toMatch(consumed);
    expect(withdrawn.map((e) => e.data.processId)).toContain(consumed);
    expect(withdrawn.map((e) => e.data.notificationId)).toContain(`${consumed}:completion`);
  });

  it('refuses deliver and deliverBatch together, naming the field', async () => {
    await using fixture = workerVigil();
    const both = { deliver: () => undefined, deliverBatch: () => undefined };
    await expect(fixture.vigil.sessions.open('s', both)).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
      details: { field: 'deliverBatch' },
    });
    await expect(
      fixture.vigil.sessions.open('s', { deliverBatch: 'nope' as unknown as () => void }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
    // Neither stays allowed: notifications are then read from the tape.
    await expect(fixture.vigil.sessions.open('s')).resolves.toMatchObject({ sessionId: 's' });
  });
});
