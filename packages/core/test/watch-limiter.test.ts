import { describe, expect, test } from 'vitest';
import { VigilError } from '../src/errors.js';
import { type LimiterVerdict, WatchLimiter, type WatchLimits } from '../src/watch/limiter.js';
import { mulberry32 as random } from './support/random.js';

/** The defaults of G8 (Hermes' numbers). */
const HERMES: WatchLimits = { cooldownMs: 15_000, strikeLimit: 3, lifetimeMaxHits: 8 };

const actions = (limiter: WatchLimiter, times: number[]) => times.map((t) => limiter.offer(t).action);

describe('WatchLimiter', () => {
  test('delivers the first match and drops matches inside its cooldown window', () => {
    const limiter = new WatchLimiter(HERMES);
    expect(limiter.offer(1_000)).toEqual({ action: 'deliver', suppressed: 0, hit: 1 });
    expect(limiter.offer(1_001)).toEqual({ action: 'drop', suppressedSoFar: 1 });
    expect(limiter.offer(15_999)).toEqual({ action: 'drop', suppressedSoFar: 2 });
  });

  test('counts a match at exactly cooldownMs as outside the window', () => {
    const limiter = new WatchLimiter(HERMES);
    limiter.offer(0);
    expect(limiter.offer(14_999).action).toBe('drop');
    expect(limiter.offer(15_000)).toEqual({ action: 'deliver', suppressed: 1, hit: 2 });
  });

  test('carries the drops since the previous delivery on the next delivered match', () => {
    const limiter = new WatchLimiter(HERMES);
    expect(actions(limiter, [0, 1, 2, 3])).toEqual(['deliver', 'drop', 'drop', 'drop']);
    expect(limiter.offer(20_000)).toEqual({ action: 'deliver', suppressed: 3, hit: 2 });
    expect(limiter.offer(40_000)).toEqual({ action: 'deliver', suppressed: 0, hit: 3 });
  });

  test('disables at the first drop of the third consecutive window with drops, exactly once', () => {
    const limiter = new WatchLimiter(HERMES);
    expect(actions(limiter, [0, 1, 2])).toEqual(['deliver', 'drop', 'drop']);
    expect(actions(limiter, [15_000, 15_001])).toEqual(['deliver', 'drop']);
    expect(limiter.offer(30_000)).toEqual({ action: 'deliver', suppressed: 1, hit: 3 });
    expect(limiter.offer(30_001)).toEqual({ action: 'disable', reason: 'strikes', suppressed: 1 });
    expect(limiter.disabled).toBe('strikes');
    expect(actions(limiter, [30_002, 45_000, 1e9])).toEqual(['disabled', 'disabled', 'disabled']);
  });

  test('resets the strikes after a window that ends with no drop', () => {
    const limiter = new WatchLimiter(HERMES);
    expect(actions(limiter, [0, 1, 15_000, 15_001])).toEqual(['deliver', 'drop', 'deliver', 'drop']);
    expect(limiter.state.strikes).toBe(2);
    // The window opened at 30 000 ends without a drop; the match at 50 000 sees that.
    expect(actions(limiter, [30_000, 50_000])).toEqual(['deliver', 'deliver']);
    expect(limiter.state.strikes).toBe(0);
    expect(actions(limiter, [50_001, 65_000, 65_001])).toEqual(['drop', 'deliver', 'drop']);
    expect(limiter.state.strikes).toBe(2);
    expect(limiter.disabled).toBeNull();
  });

  test('keeps counting strikes across windows whose drops came right before the next delivery', () => {
    const limiter = new WatchLimiter({ cooldownMs: 10, strikeLimit: 2, lifetimeMaxHits: 100 });
    expect(actions(limiter, [0, 9, 10, 19])).toEqual(['deliver', 'drop', 'deliver', 'disable']);
  });

  test('delivers the lifetimeMaxHits-th match with a lifetime disable, then refuses everything', () => {
    const limiter = new WatchLimiter(HERMES);
    for (let hit = 1; hit < 8; hit++) {
      expect(limiter.offer(hit * 20_000)).toEqual({ action: 'deliver', suppressed: 0, hit });
    }
    expect(limiter.offer(8 * 20_000)).toEqual({
      action: 'deliver',
      suppressed: 0,
      hit: 8,
      disable: { reason: 'lifetime' },
    });
    expect(limiter.disabled).toBe('lifetime');
    expect(limiter.offer(9 * 20_000)).toEqual({ action: 'disabled' });
  });

  test('with a strike limit of 1 disables at the very first drop', () => {
    const limiter = new WatchLimiter({ ...HERMES, strikeLimit: 1 });
    expect(actions(limiter, [0, 1, 2])).toEqual(['deliver', 'disable', 'disabled']);
  });

  test('with a zero cooldown never drops', () => {
    const limiter = new WatchLimiter({ cooldownMs: 0, strikeLimit: 1, lifetimeMaxHits: 5 });
    expect(actions(limiter, [0, 0, 0, 0])).toEqual(['deliver', 'deliver', 'deliver', 'deliver']);
  });

  test('exposes its state as plain data', () => {
    const limiter = new WatchLimiter(HERMES);
    limiter.offer(100);
    limiter.offer(200);
    expect(limiter.state).toEqual({
      windowEndsAt: 15_100,
      suppressed: 1,
      strikes: 1,
      hits: 1,
      disabled: null,
    });
    expect(structuredClone(limiter.state)).toEqual(limiter.state);
  });

  test('rejects invalid limits and state', () => {
    expect(() => new WatchLimiter({ ...HERMES, strikeLimit: 0 })).toThrow(VigilError);
    expect(() => new WatchLimiter({ ...HERMES, cooldownMs: -1 })).toThrow(/cooldownMs/);
    const state = { windowEndsAt: null, suppressed: -1, strikes: 0, hits: 0, disabled: null };
    expect(() => new WatchLimiter(HERMES, state)).toThrow(/state\.suppressed/);
  });

  test('resumed from a cloned state at any point gives the same verdicts as an uninterrupted limiter', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = random(seed);
      const limits: WatchLimits = {
        cooldownMs: Math.floor(rand() * 50),
        strikeLimit: 1 + Math.floor(rand() * 4),
        lifetimeMaxHits: 1 + Math.floor(rand() * 12),
      };
      const times: number[] = [];
      let now = Math.floor(rand() * 1000);
      for (let i = 0; i < 60; i++) {
        now += rand() < 0.6 ? Math.floor(rand() * 10) : Math.floor(rand() * 80);
        times.push(now);
      }
      const uninterrupted = new WatchLimiter(limits);
      const expected = times.map((t) => uninterrupted.offer(t));

      let limiter = new WatchLimiter(limits);
      const verdicts: LimiterVerdict[] = [];
      for (const t of times) {
        if (rand() < 0.3) limiter = new WatchLimiter(limits, structuredClone(limiter.state));
        verdicts.push(limiter.offer(t));
      }
      expect(verdicts).toEqual(expected);
      expect(expected.filter((v) => v.action === 'disable' || 'disable' in v).length).toBeLessThanOrEqual(1);
    }
  });
});
