import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, watch } from 'node:fs';
import {
  createVigil,
  type Vigil,
  type VigilEventName,
  type VigilEvents,
  type VigilOptions,
} from '@vigil/core';
import { createWorkerHost, type WorkerHost, type WorkerHostOptions } from '@vigil/worker';
import { FAULTY_POLLER_THREAD, injectFault, type PollerFault } from '../fixtures/faulty-poller.mjs';
import { osThreads } from './proc.js';

/** Makes a session's poller misbehave (`test/fixtures/faulty-poller.mjs`). */
export interface Faults {
  inject(sessionId: string, fault: PollerFault): Promise<void>;
}

/** A vigil on the worker host, whose threads can be told to misbehave. Disposing it closes the vigil. */
export interface WorkerFixture extends AsyncDisposable {
  readonly vigil: Vigil;
  readonly host: WorkerHost;
  readonly faults: Faults;
}

/** A vigil on the worker host whose threads can be told to misbehave; `await using` closes it. */
export function workerVigil(
  options: Omit<VigilOptions, 'host'> = {},
  hostOptions: WorkerHostOptions = {},
): WorkerFixture {
  const host = createWorkerHost({ threadEntry: FAULTY_POLLER_THREAD, ...hostOptions });
  const vigil = createVigil({ ...options, host });
  return {
    vigil,
    host,
    faults: { inject: (sessionId, fault) => injectFault(vigil, sessionId, fault) },
    [Symbol.asyncDispose]: () => vigil.close(),
  };
}

/** A vigil on the in-thread host; `await using` closes it. */
export function inThreadVigil(options: VigilOptions = {}): Vigil {
  return createVigil(options);
}

/** Resolves with the first event `name` whose payload satisfies `match`. */
export function nextEvent<E extends VigilEventName>(
  vigil: Vigil,
  name: E,
  match: (...args: VigilEvents[E]) => boolean = () => true,
): Promise<VigilEvents[E]> {
  return new Promise((resolve) => {
    const off = vigil.on(name, (...args: VigilEvents[E]) => {
      if (!match(...args)) return;
      off();
      resolve(args);
    });
  });
}

/** Records every event `name` until the returned stop function is called. */
export function record<E extends VigilEventName>(vigil: Vigil, name: E): VigilEvents[E][] {
  const seen: VigilEvents[E][] = [];
  vigil.on(name, (...args: VigilEvents[E]) => {
    seen.push(args);
  });
  return seen;
}

/** Counts of the active resources vigil could leak (threads, ports, timers, children). */
export function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'CloseReq' || kind === 'FSReqCallback' || kind === 'TTYWrap') continue;
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** Resources above `baseline`, by kind (empty when nothing leaked). */
export function excess(baseline: Record<string, number>, now = resources()): Record<string, number> {
  const over: Record<string, number> = {};
  for (const [kind, count] of Object.entries(now)) {
    const extra = count - (baseline[kind] ?? 0);
    if (extra > 0) over[kind] = extra;
  }
  return over;
}

/** Resolves with what is still above `baseline` once handles had a chance to close (they close after their owner). */
export async function leakedResources(
  baseline: Record<string, number>,
  rounds = 50,
): Promise<Record<string, number>> {
  let over = excess(baseline);
  for (let i = 0; i < rounds && Object.keys(over).length > 0; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    over = excess(baseline);
  }
  return over;
}

/** Resolves once the OS thread count is back to `baseline` (a terminated thread is joined asynchronously). */
export async function settledThreads(baseline: number, rounds = 200): Promise<number> {
  let now = osThreads();
  for (let i = 0; i < rounds && now > baseline; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    now = osThreads();
  }
  return now;
}

/**
 * Resolves once the output of `processId` (its spool file, which the child writes itself) holds
 * `needle`: woken by inotify on each append, no polling. Rejects if the process ends first.
 */
export async function outputContains(vigil: Vigil, processId: string, needle: string): Promise<void> {
  const path = vigil.processes.get(processId).outputPath;
  const watcher = watch(path);
  let ended = false;
  let wake = (): void => {};
  const off = vigil.on('process:exited', (info) => {
    if (info.processId !== processId) return;
    ended = true;
    wake();
  });
  try {
    for (;;) {
      const exited = new Promise<void>((resolve) => {
        wake = resolve;
      });
      if (readFileSync(path, 'utf8').includes(needle)) return;
      if (ended || vigil.processes.get(processId).state !== 'running') {
        throw new Error(`${processId} ended before printing ${JSON.stringify(needle)}`);
      }
      await Promise.race([once(watcher, 'change'), exited]);
    }
  } finally {
    off();
    watcher.close();
  }
}

/**
 * Runs `script` (an ES module) in a Node process of its own, from `test/` (so `@vigil/*` resolve);
 * resolves with its exit code and stdout, or SIGKILLs it after 20 s.
 */
export async function runNodeScript(
  script: string,
): Promise<{ code: number | null; signal: string | null; out: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const watchdog = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(watchdog);
  return { code, signal, out: out.trim() };
}
