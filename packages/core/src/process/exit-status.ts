import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';

/**
 * How a command ended, as written next to its spool (`<spool>.exit`) by whoever waited for it: the
 * spawner process (which outlives a crashed gateway, see `spawner/spawner-process.mjs`) or, with
 * `processes.spawner: 'direct'`, vigil itself. JSON `{"exitCode":7,"signal":null}`, written to a
 * temporary file and renamed, so a reader sees all of it or nothing.
 */
export interface ExitStatus {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The exit-status file of the command whose output goes to `spoolPath`. */
export function exitStatusPath(spoolPath: string): string {
  return `${spoolPath}.exit`;
}

/** Writes `status` to `path` atomically (the spawner process does the same in plain JavaScript). */
export function writeExitStatus(path: string, status: ExitStatus): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, JSON.stringify(status), { mode: 0o600 });
  renameSync(temporary, path);
}

/** The status at `path`; undefined while there is none. Throws when the file holds something else. */
export function readExitStatus(path: string): ExitStatus | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const { exitCode, signal } = JSON.parse(text) as Record<string, unknown>;
  const validCode = exitCode === null || Number.isSafeInteger(exitCode);
  const validSignal =
    signal === null || (typeof signal === 'string' && Object.hasOwn(constants.signals, signal));
  if (!validCode || !validSignal || (exitCode === null) === (signal === null)) {
    throw new Error(`${path} does not hold an exit status: ${text.slice(0, 100)}`);
  }
  return { exitCode: exitCode as number | null, signal: signal as NodeJS.Signals | null };
}
