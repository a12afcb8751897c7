import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

/** One line of the plugin's trace file (`VIGIL_OPENCLAW_LOG`). */
export interface Trace {
  readonly pid: number;
  readonly event: string;
  readonly [field: string]: unknown;
}

/** Every line of the trace file so far. */
export function traces(file: string): Trace[] {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Trace)
    : [];
}

/**
 * Waits for a matching line of the trace file. Another process writes it and a file has no event
 * to await, so this polls, bounded by `timeoutMs`.
 */
export async function traced(
  file: string,
  match: (trace: Trace) => boolean,
  timeoutMs: number,
): Promise<Trace> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await delay(100)) {
    const found = traces(file).find(match);
    if (found) return found;
  }
  throw new Error(`no matching trace within ${timeoutMs} ms in:\n${readFileSync(file, 'utf8')}`);
}
