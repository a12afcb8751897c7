import type { ChildEnd, ChildRun } from './child-run.js';
import { OutputBuffer } from './output-buffer.js';
import type { SpawnSpec } from './process-spec.js';

export type ProcessState =
  | 'pending_approval'
  | 'running'
  | 'exited'
  | 'killed'
  | 'failed_start'
  | 'denied'
  | 'lost';

export const TERMINAL_STATES: ReadonlySet<ProcessState> = new Set([
  'exited',
  'killed',
  'failed_start',
  'denied',
  'lost',
]);

/** A process as callers see it (`processes.get`, `list`, the HTTP API). */
export interface ProcessInfo {
  readonly processId: string;
  readonly sessionId: string;
  readonly command: string;
  readonly cwd: string | null;
  readonly state: ProcessState;
  readonly pid: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** Why the process ended, in words (`exited with code 1`, `killed by SIGTERM`, `denied`, ...). */
  readonly reason: string | null;
  readonly notifyOnComplete: boolean;
  /** Whether watch matches are still reported (false once the rate limits disabled watching). */
  readonly watching: boolean;
  readonly watch: readonly string[];
  /** The completion was acknowledged or read through `wait` (G10). */
  readonly completionConsumed: boolean;
  readonly approvalId: string | null;
  readonly outputBytes: number;
}

/** The registry's record of one process. Mutated only by `ProcessRegistry`. */
export class ManagedProcess {
  readonly processId: string;
  readonly spec: SpawnSpec;
  readonly output: OutputBuffer;
  readonly createdAt: number;
  state: ProcessState;
  run: ChildRun | undefined;
  pid: number | null = null;
  startedAt: number | null = null;
  endedAt: number | null = null;
  exitCode: number | null = null;
  signal: string | null = null;
  reason: string | null = null;
  /** How the child ended, kept until the poller has drained its output. */
  end: ChildEnd | undefined;
  killRequested = false;
  /** Output reading is paused until the poller catches up (backpressure). */
  paused = false;
  watching: boolean;
  /** Watching was disabled: the completion is delivered even without `notifyOnComplete`. */
  fallbackNotify = false;
  consumed = false;
  /** Output up to here was reported by heartbeats. */
  heartbeatFrom = 0;
  approvalId: string | null = null;
  /** Patterns disabled because they made the poller stuck. */
  readonly disabledPatterns = new Set<number>();
  /** The session closed while this process (keepOnSessionClose) ran: nothing goes to its tape. */
  detached = false;
  forgetTimer: NodeJS.Timeout | undefined;
  readonly finished: Promise<void>;
  #finish!: () => void;

  constructor(processId: string, spec: SpawnSpec, bufferBytes: number, now: number) {
    this.processId = processId;
    this.spec = spec;
    this.output = new OutputBuffer(bufferBytes);
    this.createdAt = now;
    this.state = spec.requireApproval ? 'pending_approval' : 'running';
    this.watching = spec.patterns.length > 0;
    this.finished = new Promise<void>((resolve) => {
      this.#finish = resolve;
    });
  }

  get terminal(): boolean {
    return TERMINAL_STATES.has(this.state);
  }

  /** Marks the process finished: resolves every `wait`. */
  settle(): void {
    this.#finish();
  }

  info(): ProcessInfo {
    return {
      processId: this.processId,
      sessionId: this.spec.sessionId,
      command: this.spec.display,
      cwd: this.spec.cwd ?? null,
      state: this.state,
      pid: this.pid,
      createdAt: this.createdAt,
      startedAt: this.startedAt,
      endedAt: this.endedAt,
      exitCode: this.exitCode,
      signal: this.signal,
      reason: this.reason,
      notifyOnComplete: this.spec.notifyOnComplete,
      watching: this.watching,
      watch: this.spec.patterns.map((p) => (p.kind === 'substring' ? p.substring : `/${p.regex}/${p.flags}`)),
      completionConsumed: this.consumed,
      approvalId: this.approvalId,
      outputBytes: this.output.end,
    };
  }
}
