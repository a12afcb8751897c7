import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { VigilError } from '@vigil/core';

/** Where `vigil serve` keeps its state, and who said so (for the messages). */
export interface StateDirChoice {
  readonly path: string;
  readonly from: '--state-dir' | 'VIGIL_STATE_DIR';
}

/**
 * The state directory of `vigil serve`: `--state-dir` wins over `VIGIL_STATE_DIR` (an empty variable
 * counts as unset, as shells mean it). Resolved to an absolute path, created (private to the user)
 * if missing, and checked to be a directory this process can write, so that a bad path fails at
 * start with a message naming the flag or the variable, not later inside the journal.
 */
export function chooseStateDir(
  flag: string | undefined,
  env: string | undefined,
): StateDirChoice | undefined {
  if (flag !== undefined) return { path: usableDirectory(flag, '--state-dir'), from: '--state-dir' };
  if (env !== undefined && env !== '') {
    return { path: usableDirectory(env, 'VIGIL_STATE_DIR'), from: 'VIGIL_STATE_DIR' };
  }
  return undefined;
}

function usableDirectory(given: string, field: StateDirChoice['from']): string {
  const fail = (problem: string, cause?: unknown): VigilError =>
    new VigilError('ERR_INVALID_CONFIG', `${field}: ${problem}`, {
      ...(cause === undefined ? {} : { cause }),
      details: { field, path: given },
    });
  if (given.trim() === '') throw fail('must be a directory path, got an empty string');
  const path = resolve(given);
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (cause) {
    const exists = statOf(path);
    if (exists !== undefined && !exists.isDirectory()) throw fail(`${path} is not a directory`, cause);
    throw fail(`cannot create the directory ${path} (${codeOf(cause)})`, cause);
  }
  if (!statSync(path).isDirectory()) throw fail(`${path} is not a directory`);
  try {
    accessSync(path, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (cause) {
    throw fail(`cannot write in ${path} (${codeOf(cause)})`, cause);
  }
  return path;
}

function statOf(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(error);
}
