import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { ProcessIdentity } from './process-identity.js';
import type { SpawnerReport, SpawnerRequest } from './spawner-protocol.js';

/**
 * What `ChildRun` uses of a started child. Node's `ChildProcess` is one; `RemoteChild` is the other.
 * `pid` is undefined until the child runs (`spawn`), and stays so when it could not start (`error`).
 */
export interface StartedChild {
  readonly pid?: number | undefined;
  readonly stdin: Writable | null;
  /** Its start time (`/proc/<pid>/stat` field 22), when its starter read it; else it is read from `/proc`. */
  readonly startTicks?: number | undefined;
  /** The process that waits for it and writes its exit status, when it is not this one. */
  readonly recorder?: ProcessIdentity | null | undefined;
  /** Lets this process exit while the child runs. */
  unref?(): void;
  /** Resizes its terminal, when it runs in one. */
  resize?(cols: number, rows: number): void;
  once(event: 'spawn', listener: () => void): this;
  once(event: 'exit', listener: (exitCode: number | null, signal: NodeJS.Signals | null) => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
}

type Events = {
  spawn: [];
  exit: [exitCode: number | null, signal: NodeJS.Signals | null];
  error: [error: Error];
};

/**
 * A child started by the spawner process, seen from vigil: its pid once the spawner reports it, its
 * exit as the spawner saw it, and its stdin as a stream whose writes travel to the spawner and
 * complete when the spawner handed them to the OS (so a child that does not read holds them, as a
 * pipe of our own would).
 */
export class RemoteChild extends EventEmitter<Events> implements StartedChild {
  readonly stdin: Writable;
  readonly recorder: ProcessIdentity | null;
  #pid: number | undefined;
  #startTicks: number | undefined;
  #seq = 0;
  readonly #send: (request: SpawnerRequest) => void;
  readonly #id: number;
  readonly #writes = new Map<number, (error?: Error | null) => void>();

  /** `recorder`: the spawner process, which waits for the child and writes its exit status. */
  constructor(id: number, send: (request: SpawnerRequest) => void, recorder: ProcessIdentity | null) {
    super();
    this.recorder = recorder;
    this.#send = send;
    this.#id = id;
    this.stdin = new Writable({
      decodeStrings: false,
      write: (data: string | Uint8Array, _encoding, callback) => {
        const seq = ++this.#seq;
        this.#writes.set(seq, callback);
        send({ type: 'write', id, seq, data });
      },
      final: (callback) => {
        send({ type: 'end', id });
        callback();
      },
      destroy: (error, callback) => {
        send({ type: 'destroy', id });
        this.#failWrites('stdin is closed');
        callback(error);
      },
    });
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  get startTicks(): number | undefined {
    return this.#startTicks;
  }

  /** Resizes its terminal (the spawner ignores it for a child without one). */
  resize(cols: number, rows: number): void {
    this.#send({ type: 'resize', id: this.#id, cols, rows });
  }

  /** Applies one report of the spawner about this child. */
  report(report: SpawnerReport): void {
    switch (report.type) {
      case 'spawned':
        this.#pid = report.pid;
        this.#startTicks = report.startTicks;
        this.emit('spawn');
        break;
      case 'failed':
        this.stdin.destroy();
        this.emit('error', new Error(report.error));
        break;
      case 'written': {
        const callback = this.#writes.get(report.seq);
        this.#writes.delete(report.seq);
        callback?.(report.error === undefined ? null : new Error(report.error));
        break;
      }
      case 'exit':
        this.emit('exit', report.exitCode, report.signal);
        break;
    }
  }

  /**
   * The spawner died: nothing will report this child's end. A running child is ended with its whole
   * group (SIGKILL), since nothing could follow it any more; one still starting never started.
   */
  lost(why: string): void {
    this.#failWrites(why);
    if (this.#pid === undefined) {
      this.stdin.destroy();
      this.emit('error', new Error(why));
      return;
    }
    try {
      process.kill(-this.#pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is gone already.
    }
    this.emit('exit', null, 'SIGKILL');
  }

  #failWrites(why: string): void {
    for (const callback of this.#writes.values()) callback(new Error(why));
    this.#writes.clear();
  }
}
