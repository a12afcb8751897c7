import { type ProcessInfo, processName } from '@vigil/core';

/** A process as the Redis store keeps it: its journal record and the instance that ran it. */
export interface StoredProcess {
  readonly instanceId: string;
  readonly record: {
    readonly processId: string;
    readonly sessionId: string;
    readonly spec: {
      readonly command: string | readonly string[];
      readonly display: string;
      readonly cwd?: string | undefined;
      readonly notifyOnComplete: ProcessInfo['notifyOnComplete'];
      readonly notifyOnEmptySuccess?: boolean;
      readonly patterns: readonly (
        | { kind: 'substring'; substring: string }
        | { kind: 'regex'; regex: string; flags: string }
      )[];
      readonly key?: string | undefined;
      readonly pty?: ProcessInfo['terminal'];
    };
    readonly state: ProcessInfo['state'];
    readonly pid: number | null;
    readonly createdAt: number;
    readonly startedAt: number | null;
    readonly deadline: number | null;
    readonly endedAt: number | null;
    readonly exit: {
      readonly exitCode: number | null;
      readonly signal: string | null;
      readonly reason: string | null;
      readonly timedOut: boolean;
      readonly outputBytes: number;
      readonly outputDropped: number;
    } | null;
    readonly spoolPath: string;
    readonly approvalId: string | null;
    readonly watching: boolean;
    readonly completionConsumed?: boolean;
    readonly supersededBy?: string | null;
  };
}

/**
 * The `ProcessInfo` of a process another instance runs, from its journal record. Its output lives
 * on the owner: the byte counts are those of its last journaled state (final once it ended).
 */
export function processInfoOf({ record }: StoredProcess): ProcessInfo {
  const { spec, exit } = record;
  return {
    processId: record.processId,
    sessionId: record.sessionId,
    command: spec.display,
    name: processName(spec.command),
    cwd: spec.cwd ?? null,
    state: record.state,
    pid: record.pid,
    createdAt: record.createdAt,
    startedAt: record.startedAt,
    endedAt: record.endedAt,
    exitCode: exit?.exitCode ?? null,
    signal: exit?.signal ?? null,
    reason: exit?.reason ?? null,
    timedOut: exit?.timedOut ?? false,
    deadline: record.deadline,
    notifyOnComplete: spec.notifyOnComplete,
    notifyOnEmptySuccess: spec.notifyOnEmptySuccess ?? true,
    key: spec.key ?? null,
    supersededBy: record.supersededBy ?? null,
    watching: record.watching,
    watch: spec.patterns.map((p) => (p.kind === 'substring' ? p.substring : `/${p.regex}/${p.flags}`)),
    completionConsumed: record.completionConsumed ?? false,
    approvalId: record.approvalId,
    outputBytes: exit?.outputBytes ?? 0,
    outputDropped: exit?.outputDropped ?? 0,
    outputPath: record.spoolPath,
    terminal: spec.pty ?? null,
  };
}
