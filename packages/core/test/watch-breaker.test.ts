import { describe, expect, test } from 'vitest';
import { VigilError } from '../src/errors.js';
import { WatchBreaker } from '../src/watch/breaker.js';

/** The defaults of G8: more than 15 matches in 10 s pauses for 30 s. */
const defaults = () => new WatchBreaker({ maxMatches: 15, windowMs: 10_000, pauseMs: 30_000 });

function admitMany(breaker: WatchBreaker, sessionId: string, times: number[]): boolean[] {
  return times.map((t) => breaker.admit(sessionId, t));
}

describe('WatchBreaker', () => {
  test('admits 15 matches in 10 s and trips on the 16th', () => {
    const breaker = defaults();
    const times = Array.from({ length: 15 }, (_, i) => i * 600);
    expect(admitMany(breaker, 's1', times).every(Boolean)).toBe(true);
    expect(breaker.nextReleaseAt()).toBeNull();
    expect(breaker.admit('s1', 9_000)).toBe(false);
    expect(breaker.nextReleaseAt()).toBe(39_000);
    expect(breaker.isPaused(9_000)).toBe(true);
  });

  test('refuses every match for pauseMs and admits again at exactly the end of the pause', () => {
    const breaker = defaults();
    admitMany(
      breaker,
      's1',
      Array.from({ length: 16 }, () => 0),
    );
    expect(admitMany(breaker, 's2', [1, 10_000, 29_999])).toEqual([false, false, false]);
    expect(breaker.isPaused(29_999)).toBe(true);
    expect(breaker.admit('s2', 30_000)).toBe(true);
    expect(breaker.isPaused(30_000)).toBe(false);
  });

  test('reports the refused counts per session once, when the pause has ended', () => {
    const breaker = defaults();
    admitMany(
      breaker,
      'a',
      Array.from({ length: 16 }, (_, i) => 1_000 + i),
    );
    admitMany(breaker, 'b', [2_000, 3_000]);
    breaker.admit('a', 4_000);
    expect(breaker.poll(31_014)).toBeNull();
    const release = breaker.poll(31_015);
    expect(release).toEqual({
      trippedAt: 1_015,
      releasedAt: 31_015,
      suppressed: 4,
      suppressedBySession: new Map([
        ['a', 2],
        ['b', 2],
      ]),
    });
    expect(breaker.poll(40_000)).toBeNull();
    expect(breaker.nextReleaseAt()).toBeNull();
  });

  test('keeps the report until polled even when matches are admitted after the pause', () => {
    const breaker = defaults();
    admitMany(
      breaker,
      'a',
      Array.from({ length: 16 }, () => 0),
    );
    expect(breaker.admit('a', 40_000)).toBe(true);
    expect(breaker.nextReleaseAt()).toBe(30_000);
    expect(breaker.poll(40_001)?.suppressed).toBe(1);
  });

  test('slides its window: matches older than windowMs no longer count', () => {
    const breaker = defaults();
    expect(
      admitMany(
        breaker,
        's',
        Array.from({ length: 15 }, (_, i) => i),
      ).every(Boolean),
    ).toBe(true);
    // The match at 0 leaves the window at exactly 10 000.
    expect(breaker.admit('s', 10_000)).toBe(true);
    expect(breaker.admit('s', 10_001)).toBe(true);
    expect(breaker.admit('s', 10_001)).toBe(false);
  });

  test('never trips on a steady rate of 15 matches per 10 s', () => {
    const breaker = defaults();
    const times = Array.from({ length: 1_000 }, (_, i) => Math.ceil((i * 10_000) / 15));
    expect(admitMany(breaker, 's', times).every(Boolean)).toBe(true);
  });

  test('starts with an empty window after a pause', () => {
    const breaker = new WatchBreaker({ maxMatches: 3, windowMs: 60_000, pauseMs: 1_000 });
    expect(admitMany(breaker, 's', [0, 1, 2, 3])).toEqual([true, true, true, false]);
    expect(admitMany(breaker, 's', [1_003, 1_004, 1_005, 1_006])).toEqual([true, true, true, false]);
  });

  test('merges a second pause into the report when the first was not polled', () => {
    const breaker = new WatchBreaker({ maxMatches: 1, windowMs: 1_000, pauseMs: 100 });
    expect(admitMany(breaker, 'x', [0, 0, 50])).toEqual([true, false, false]);
    expect(admitMany(breaker, 'y', [200, 200])).toEqual([true, false]);
    expect(breaker.nextReleaseAt()).toBe(300);
    expect(breaker.poll(250)).toBeNull();
    expect(breaker.poll(300)).toEqual({
      trippedAt: 0,
      releasedAt: 300,
      suppressed: 3,
      suppressedBySession: new Map([
        ['x', 2],
        ['y', 1],
      ]),
    });
  });

  test('leaves a forgotten session out of the report', () => {
    const breaker = new WatchBreaker({ maxMatches: 1, windowMs: 1_000, pauseMs: 100 });
    admitMany(breaker, 'gone', [0, 0, 1]);
    breaker.admit('kept', 2);
    breaker.forgetSession('gone');
    breaker.forgetSession('never-seen');
    expect(breaker.poll(100)).toEqual({
      trippedAt: 0,
      releasedAt: 100,
      suppressed: 1,
      suppressedBySession: new Map([['kept', 1]]),
    });
  });

  test('shares no state between instances', () => {
    const first = defaults();
    const second = defaults();
    admitMany(
      first,
      's',
      Array.from({ length: 16 }, () => 0),
    );
    expect(first.isPaused(1)).toBe(true);
    expect(second.admit('s', 1)).toBe(true);
    expect(second.nextReleaseAt()).toBeNull();
  });

  test('rejects invalid options', () => {
    expect(() => new WatchBreaker({ maxMatches: 0, windowMs: 1, pauseMs: 1 })).toThrow(VigilError);
    expect(() => new WatchBreaker({ maxMatches: 1, windowMs: 1.5, pauseMs: 1 })).toThrow(/windowMs/);
  });
});
