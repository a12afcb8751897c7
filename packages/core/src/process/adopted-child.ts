import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { type ExitStatus, readExitStatus } from './exit-status.js';
import { identityState, type ProcessIdentity } from './process-identity.js';
import type { StartedChild } from './remote-child.js';

/** What a process record must keep for a later vigil to adopt the command. */
export interface AdoptionRecord {
  /** The command: it leads its own process group. */
  readonly identity: ProcessIdentity;
  /** Where its exit status is written when it ends (`<spool>.exit`). */
  readonly statusPath: string;
  /** The process that waits for it and writes that status (the spawner, or vigil with `direct`). */
  readonly recorder: ProcessIdentity | null;
}

/** How often an adopted command's fate is checked besides the exit-status file's arrival. */
export const ADOPTED_POLL_MS = 1_000;

type Events = {
  exit: [exitCode: number | null, signal: NodeJS.Signals | null];
  lost: [reason: string];
  spawn: [];
  error: [error: Error];
};

/**
 * A command vigil did not start in this life, followed from its record. It is not our child, so no
 * event reports its end: the status file its recorder writes is watched (inotify, one watch per
 * directory), and its identity and its recorder's are checked every `ADOPTED_POLL_MS` and before
 * each signal. It ends with the recorded status, or `lost` when no status can ever come. Its stdin
 * was a pipe of the vigil that started it: it cannot be reopened (`stdin` is null).
 */
export class AdoptedChild extends EventEmitter<Events> implements StartedChild {
  readonly pid: number;
  readonly stdin = null;
  readonly startTicks: number;
  readonly recorder: ProcessIdentity | null;
  readonly #record: AdoptionRecord;
  readonly #timer: NodeJS.Timeout;
  readonly #unwatch: () => void;
  #over = false;

  constructor(record: AdoptionRecord, options: { readonly pollMs?: number } = {}) {
    super();
    this.#record = record;
    this.pid = record.identity.pid;
    this.startTicks = record.identity.startTicks;
    this.recorder = record.recorder;
    this.#unwatch = statusWatch.add(record.statusPath, () => this.#check());
    this.#timer = setInterval(() => this.#check(), options.pollMs ?? ADOPTED_POLL_MS);
    // First look once the run listens: the command may have ended long ago.
    setImmediate(() => this.#check());
  }

  /**
   * Whether its pid still names it (running, or ended and not yet reaped), so that its group may be
   * signalled. Between this check and the signal the pid could only be reused if the command ended,
   * was reaped and its whole group emptied in that instant.
   */
  stillOurs(): boolean {
    if (this.#over) return false;
    const state = identityState(this.#record.identity);
    if (state !== 'alive') setImmediate(() => this.#check());
    return state === 'alive' || state === 'zombie';
  }

  /**
   * Whether its pid is still its own, as an unreaped zombie too (nobody may reap an orphan: a
   * container's PID 1 often does not): then its group id cannot belong to another group yet.
   */
  holdsPid(): boolean {
    const state = identityState(this.#record.identity);
    return state === 'alive' || state === 'zombie';
  }

  /** Stops following (the run was released or ended). Idempotent. */
  stop(): void {
    this.#over = true;
    clearInterval(this.#timer);
    this.#unwatch();
  }

  #check(): void {
    if (this.#over) return;
    const { identity, recorder } = this.#record;
    if (this.#ended()) return;
    const state = identityState(identity);
    if (state === 'alive') return;
    if (state === 'rebooted') {
      this.#lose('the machine restarted since it started (another boot id): its fate is unknown');
      return;
    }
    // It ended: only its recorder can say how, once it has reaped it.
    if (recorder !== null && identityState(recorder) === 'alive') return;
    // Read again: the recorder may have written it and exited since the first read.
    if (this.#ended()) return;
    const who =
      recorder === null
        ? 'nothing waited for it'
        : `the process that waited for it (pid ${recorder.pid}) is gone`;
    this.#lose(
      state === 'reused'
        ? `it ended while no vigil followed it, and its pid ${identity.pid} now names another process; ${who} and no exit status was recorded`
        : `it ended while no vigil followed it; ${who} and no exit status was recorded`,
    );
  }

  /** Ends with the recorded status if there is one (or lost if it is unreadable); false while there is none. */
  #ended(): boolean {
    let status: ExitStatus | undefined;
    try {
      status = readExitStatus(this.#record.statusPath);
    } catch (error) {
      this.#lose(`its exit status cannot be read: ${(error as Error).message}`);
      return true;
    }
    if (status === undefined) return false;
    this.stop();
    this.emit('exit', status.exitCode, status.signal);
    return true;
  }

  #lose(reason: string): void {
    this.stop();
    this.emit('lost', reason);
  }
}

/** One inotify watch per spool directory, shared by every adopted command whose status lands there. */
class StatusWatch {
  readonly #directories = new Map<string, { watcher: FSWatcher; files: Map<string, Set<() => void>> }>();

  /** Calls `onChange` when `path` may have appeared; returns the function that stops it. */
  add(path: string, onChange: () => void): () => void {
    const directory = dirname(path);
    const file = basename(path);
    let entry = this.#directories.get(directory);
    if (entry === undefined) {
      const files = new Map<string, Set<() => void>>();
      let watcher: FSWatcher;
      try {
        watcher = watch(directory, { persistent: false }, (_event, name) => {
          for (const listener of files.get(String(name)) ?? []) listener();
        });
      } catch {
        // No directory (or no inotify): the periodic check alone finds the end.
        return () => {};
      }
      // Lost its watch (the directory went away): the periodic check alone finds the end.
      watcher.on('error', () => {
        watcher.close();
        if (this.#directories.get(directory)?.watcher === watcher) this.#directories.delete(directory);
      });
      entry = { watcher, files };
      this.#directories.set(directory, entry);
    }
    const listeners = entry.files.get(file) ?? new Set();
    entry.files.set(file, listeners);
    listeners.add(onChange);
    const { files, watcher } = entry;
    return () => {
      listeners.delete(onChange);
      if (listeners.size === 0 && files.get(file) === listeners) files.delete(file);
      if (files.size === 0 && this.#directories.get(directory)?.watcher === watcher) {
        watcher.close();
        this.#directories.delete(directory);
      }
    };
  }
}

const statusWatch = new StatusWatch();
