import { describe, expect, it } from 'vitest';
import { VigilError } from '../src/errors.js';
import { deadline, TIMED_OUT } from '../src/timeout.js';

const after = <T>(ms: number, value: T): Promise<T> =>
  new Promise((resolve) => setTimeout(() => resolve(value), ms));

describe('deadline', () => {
  it('resolves with the value when the promise settles first, and TIMED_OUT when the time runs out', async () => {
    await expect(deadline(after(1, 'done'), 50)).resolves.toBe('done');
    await expect(deadline(after(50, 'late'), 1)).resolves.toBe(TIMED_OUT);
  });

  it('waits without a limit for a time beyond what a timer can wait, instead of timing out at once', async () => {
    // Node fires a timer of more than 2^31 - 1 ms after 1 ms; such a deadline is no deadline.
    await expect(deadline(after(20, 'done'), 2 ** 31)).resolves.toBe('done');
    await expect(deadline(after(20, 'done'), Number.POSITIVE_INFINITY)).resolves.toBe('done');
  });

  it('rejects with ERR_ABORTED when its signal aborts, and at once for an aborted signal', async () => {
    const controller = new AbortController();
    const waiting = deadline(after(1000, 'late'), 5000, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await expect(deadline(after(1, 'x'), 10, controller.signal)).rejects.toBeInstanceOf(VigilError);
  });
});
