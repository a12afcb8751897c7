import type { MessagePort } from 'node:worker_threads';
import type { RestoredSession } from './store.js';

/** What the Redis store's worker thread is started with. */
export interface RedisWorkerData {
  readonly port: MessagePort;
  /** Incremented (and notified) after every message the worker posts: the main thread waits on it. */
  readonly signal: SharedArrayBuffer;
  readonly url: string;
  readonly prefix: string;
  readonly leaseMs: number;
  readonly timeoutMs: number;
  readonly instanceId: string;
  /** Random per start: leases name `<instanceId>/<nonce>`, so another live process with the same id is told apart. */
  readonly nonce: string;
  /**
   * The holder (`<instanceId>/<nonce>`) that last ran on this instance's stateDir ('' for none):
   * dead, since this process holds the stateDir's lock, so its leases are taken back at once.
   */
  readonly previous: string;
  /** The instance's entry in `P instances` (without url until `vigil serve` sets it). */
  readonly instance: Readonly<Record<string, unknown>>;
}

/** One session's writes in a commit: the script's op arguments, in order (see `COMMIT`). */
export interface CommitGroup {
  readonly sessionId: string;
  readonly ops: readonly string[];
}

export type RedisRequest =
  | { readonly id: number; readonly op: 'connect' }
  | { readonly id: number; readonly op: 'restore' }
  | { readonly id: number; readonly op: 'claim'; readonly sessionId: string }
  | { readonly id: number; readonly op: 'release'; readonly sessionId: string }
  | {
      readonly id: number;
      readonly op: 'commit';
      readonly batchId: string;
      readonly groups: readonly CommitGroup[];
    }
  | { readonly id: number; readonly op: 'advertise'; readonly instance: Readonly<Record<string, unknown>> }
  | { readonly id: number; readonly op: 'close' };

/** A failure as it crosses the thread: a vigil error code and message. */
export interface WireError {
  readonly code: 'ERR_STORE_UNAVAILABLE' | 'ERR_JOURNAL' | 'ERR_SESSION_OWNED';
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** A group the commit did not apply, and why (`fenced[:<owner>]`, or `gap:<lastSeq>:<seq>`). */
export interface RefusedGroup {
  readonly sessionId: string;
  readonly status: string;
}

export type RedisReply =
  | { readonly id: number; readonly error: WireError }
  | { readonly id: number; readonly ok: true }
  | { readonly id: number; readonly refused: readonly RefusedGroup[] }
  | { readonly id: number; readonly restored: readonly RestoredSession[] }
  | { readonly id: number; readonly claimed: RestoredSession | null };

/** Pushed by the worker: leases this instance lost (another instance owns those sessions now). */
export interface LeasesLost {
  readonly lost: readonly string[];
}

/** Pushed by the worker: a session of a gone instance this one took over (failover). */
export interface SessionTaken {
  readonly taken: RestoredSession;
}

/** Pushed by the worker after each failover scan that ran (see `RedisStore#onScanned`). */
export interface ScanDone {
  readonly scanned: true;
}

export type RedisMessage = RedisReply | LeasesLost | SessionTaken | ScanDone;
