import { readdirSync, readFileSync } from 'node:fs';

/**
 * Whether any member of process group `pgid` is alive. A zombie is not: it runs nothing, and an
 * orphaned one may never be reaped (a container's PID 1 often reaps nothing). Signal 0 answers
 * "gone" cheaply; only a group that still exists is looked up in `/proc` for its live members.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    // EPERM: a member we may not signal (it changed its credentials) is still a member.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return true; // No /proc: the group exists, zombies included.
  }
  return names.some((name) => isLiveMember(name, pgid));
}

function isLiveMember(pid: string, pgid: number): boolean {
  if (pid.charCodeAt(0) > 57) return false; // not a number: /proc/self, /proc/sys, ...
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false; // exited meanwhile
  }
  // `pid (comm) state ppid pgrp ...`: comm may hold spaces and parentheses, so split after the last ')'.
  const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3);
  return Number(group) === pgid && state !== 'Z' && state !== 'X';
}
