import { describe, expect, it } from 'vitest';
import { createVigil, parseConfig, VigilError } from '../src/index.js';

function configError(input: unknown): VigilError {
  try {
    createVigil(input as never);
  } catch (error) {
    if (error instanceof VigilError) return error;
    throw error;
  }
  throw new Error('createVigil accepted invalid options');
}

describe('parseConfig', () => {
  it('fills every field with its documented default', () => {
    const config = parseConfig({});
    expect(config.stopTimeoutMs).toBe(2000);
    expect(config.shutdownTimeoutMs).toBe(10_000);
    expect(config.pool.pollersPerThread).toBe(512);
    expect(config.pool.minThreads).toBeUndefined();
    expect(config.watch).toMatchObject({ cooldownMs: 15_000, strikeLimit: 3, lifetimeMaxHits: 8 });
    expect(config.watch.breaker).toEqual({ maxMatches: 15, windowMs: 10_000, pauseMs: 30_000 });
    expect(config.tape).toMatchObject({ defaultLimit: 100, maxLimit: 1000, maxWaitMs: 60_000 });
    expect(config.completion.outputChars).toBe(2000);
  });

  it('keeps given values next to defaults of sibling fields', () => {
    const config = parseConfig({ pool: { maxThreads: 7 }, watch: { breaker: { pauseMs: 5 } } });
    expect(config.pool.maxThreads).toBe(7);
    expect(config.pool.idleTimeoutMs).toBe(30_000);
    expect(config.watch.breaker).toEqual({ maxMatches: 15, windowMs: 10_000, pauseMs: 5 });
  });
});

describe('createVigil options', () => {
  it.each([
    [{ pool: { maxThreads: 0 } }, 'pool.maxThreads'],
    [{ pool: { maxThreads: 'two' } }, 'pool.maxThreads'],
    [{ stopTimeoutMs: -1 }, 'stopTimeoutMs'],
    [{ sessionIdleTtlMs: 1.5 }, 'sessionIdleTtlMs'],
    [{ watch: { breaker: { windowMs: 0 } } }, 'watch.breaker.windowMs'],
    [{ pool: { minThreads: 4, maxThreads: 2 } }, 'pool.minThreads'],
    [{ stopTimeoutMS: 10 }, 'stopTimeoutMS'],
    [{ host: { start() {} } }, 'host'],
  ])('rejects %j with ERR_INVALID_CONFIG naming %s', (input, field) => {
    const error = configError(input);
    expect(error.code).toBe('ERR_INVALID_CONFIG');
    expect(error.message).toContain(field);
  });

  it('rejects a non-object', () => {
    expect(configError(42).code).toBe('ERR_INVALID_CONFIG');
  });
});

describe('resolvePoolThreads', () => {
  it('fills the core-count defaults at run time and keeps a single given bound consistent', async () => {
    const { resolvePoolThreads } = await import('../src/host.js');
    const { availableParallelism } = await import('node:os');
    const cores = availableParallelism();
    expect(resolvePoolThreads({})).toEqual({
      minThreads: Math.min(2, cores),
      maxThreads: Math.max(2, cores),
    });
    expect(resolvePoolThreads({ maxThreads: 1 })).toEqual({ minThreads: 1, maxThreads: 1 });
    expect(resolvePoolThreads({ minThreads: 64 })).toEqual({
      minThreads: 64,
      maxThreads: Math.max(64, cores),
    });
  });
});
