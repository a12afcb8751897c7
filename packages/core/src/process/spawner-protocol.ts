import type { TerminalSize } from './spawn-spec.js';

/**
 * The messages between a vigil instance and its spawner process (`spawner/spawner-process.mjs`),
 * over Node's IPC channel with `serialization: 'advanced'`. `id` names one child of the spawner.
 */

/** From vigil to the spawner. */
export type SpawnerRequest =
  /**
   * Start `file` with `args` in its own process group, stdout and stderr appended to `output`; when
   * it ends, write its exit status to `status` (if given), before reporting `exit`. With `pty`, in a
   * pseudo-terminal of that size instead: the spawner copies what the terminal shows to `output`.
   */
  | {
      readonly type: 'spawn';
      readonly id: number;
      readonly file: string;
      readonly args: readonly string[];
      readonly cwd: string | undefined;
      readonly env: Readonly<Record<string, string | undefined>>;
      readonly output: string;
      readonly status: string | undefined;
      readonly pty: TerminalSize | null;
    }
  /** Write to the child's stdin; answered by `written` once handed to the OS. */
  | { readonly type: 'write'; readonly id: number; readonly seq: number; readonly data: string | Uint8Array }
  /** End the child's stdin (EOF; in a terminal, its EOF character ^D, after the pending writes). */
  | { readonly type: 'end'; readonly id: number }
  /** Close the child's stdin at once (a terminal stays open: only the pending writes are dropped). */
  | { readonly type: 'destroy'; readonly id: number }
  /** Resize the child's terminal (a child without one ignores it). */
  | { readonly type: 'resize'; readonly id: number; readonly cols: number; readonly rows: number };

/** From the spawner to vigil, in the order things happened to each child. */
export type SpawnerReport =
  /** The spawner listens. */
  | { readonly type: 'ready' }
  /**
   * The child runs as `pid` (its process group id too), started `startTicks` after boot (read
   * before the spawner could reap it: it names this child), or undefined if `/proc` could not say.
   */
  | { readonly type: 'spawned'; readonly id: number; readonly pid: number; readonly startTicks?: number }
  /** The child could not start. */
  | { readonly type: 'failed'; readonly id: number; readonly error: string }
  /** Write `seq` was handed to the OS, or failed with `error`. */
  | { readonly type: 'written'; readonly id: number; readonly seq: number; readonly error?: string }
  /** The child exited (G6: its own exit, not the end of its output). */
  | {
      readonly type: 'exit';
      readonly id: number;
      readonly exitCode: number | null;
      readonly signal: NodeJS.Signals | null;
    };
