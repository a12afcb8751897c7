import { readFileSync } from 'node:fs';

/**
 * Who a process is, beyond its pid (which the kernel hands to another process once it is free):
 * its start time in clock ticks since boot (`/proc/<pid>/stat` field 22) and the boot it ran in.
 * Two processes of one boot never share a pid and a start time, so a record of these four outlives
 * vigil and still names that process, or nothing, after a restart.
 */
export interface ProcessIdentity {
  readonly pid: number;
  /** Its process group (the pid of a command vigil started: it leads its own group). */
  readonly pgid: number;
  /** Clock ticks from boot to its start. */
  readonly startTicks: number;
  /** `/proc/sys/kernel/random/boot_id` when it was read. */
  readonly bootId: string;
}

/** What became of the process a `ProcessIdentity` names. */
export type IdentityState =
  /** It runs. */
  | 'alive'
  /** It ended and its parent has not reaped it yet: its pid is still its own. */
  | 'zombie'
  /** No process has its pid. */
  | 'gone'
  /** Another process has its pid now. */
  | 'reused'
  /** The machine restarted since: the pid says nothing. */
  | 'rebooted';

let currentBoot: string | undefined;

/** This boot's id (read once: it cannot change while this process lives). */
export function bootId(): string {
  currentBoot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  return currentBoot;
}

interface Stat {
  readonly state: string;
  readonly pgid: number;
  readonly startTicks: number;
}

/** Fields of `/proc/<pid>/stat`, or undefined when no process has that pid. */
function readStat(pid: number | 'self'): Stat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // `pid (comm) state ppid pgrp ...`: comm may hold spaces and parentheses, so split after the last ')'.
  // After it, field 3 (state) is index 0, field 5 (pgrp) index 2, field 22 (starttime) index 19.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 20);
  return { state: fields[0] ?? '', pgid: Number(fields[2]), startTicks: Number(fields[19]) };
}

/**
 * The identity of process `pid`, or undefined when it is gone. Read it while `pid` cannot be reused:
 * by its parent before reaping it, or while it is known to run.
 */
export function readIdentity(pid: number | 'self'): ProcessIdentity | undefined {
  const stat = readStat(pid);
  if (stat === undefined) return undefined;
  const own = pid === 'self' ? process.pid : pid;
  return { pid: own, pgid: stat.pgid, startTicks: stat.startTicks, bootId: bootId() };
}

/** What became of the process `identity` names (one read of `/proc`). */
export function identityState(identity: ProcessIdentity): IdentityState {
  if (identity.bootId !== bootId()) return 'rebooted';
  const stat = readStat(identity.pid);
  if (stat === undefined) return 'gone';
  if (stat.startTicks !== identity.startTicks) return 'reused';
  return stat.state === 'Z' || stat.state === 'X' ? 'zombie' : 'alive';
}

/** Whether `pid` still names the process of `identity`, alive or a zombie: only then may it be signalled. */
export function stillSameProcess(identity: ProcessIdentity): boolean {
  const state = identityState(identity);
  return state === 'alive' || state === 'zombie';
}
