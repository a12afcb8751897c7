/** Process-level measurements: OS threads, MessagePorts, RSS, latency percentiles. */
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** OS threads of this process (each worker thread adds one): Linux /proc/self/task. */
export function osThreads() {
  return readdirSync('/proc/self/task').length;
}

/** Active MessagePort handles of this process. */
export function messagePorts() {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'MessagePort').length;
}

export const mb = (bytes) => bytes / (1024 * 1024);
export const round = (value, digits = 1) => Number(value.toFixed(digits));

/**
 * Runs a full GC (the child runs with --expose-gc), lets terminated threads and closed ports be
 * reaped, and returns the process's threads, ports and RSS (MB).
 */
export async function snapshot() {
  let threads = osThreads();
  for (let i = 0; i < 5; i++) {
    globalThis.gc?.();
    await sleep(30);
    const now = osThreads();
    if (now === threads && i > 0) break;
    threads = now;
  }
  return { threads: osThreads(), ports: messagePorts(), rssMb: mb(process.memoryUsage().rss) };
}

/** @param {number[]} values @param {number} p 0..100 */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/**
 * Runs `task(i)` for i in [0, count) with at most `inFlight` pending at once.
 * @param {number} count @param {number} inFlight @param {(i: number) => Promise<unknown>} task
 */
export async function pooled(count, inFlight, task) {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
}

/** Rejects after `ms` unless `promise` settles first. */
export function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
