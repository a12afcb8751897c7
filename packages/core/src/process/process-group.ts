import { readdirSync, readFileSync } from 'node:fs';

/** What signal 0 says of a process group. */
type Presence = 'gone' | 'present' | 'unsignalable';

function presence(pgid: number): Presence {
  try {
    process.kill(-pgid, 0);
    return 'present';
  } catch (error) {
    // EPERM: a member we may not signal (it changed its credentials) is still a member.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? 'unsignalable' : 'gone';
  }
}

/** Whether a process (a zombie included) has the id `pid` (one syscall). */
export function pidInUse(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether process group `pgid` has any process at all, zombies included (one syscall). */
export function groupExists(pgid: number): boolean {
  return presence(pgid) !== 'gone';
}

/**
 * Which of `wanted` have a live member: one pass over `/proc`, ended as soon as each has one. A
 * zombie is not live: it runs nothing, and an orphaned one may never be reaped (a container's PID 1
 * often reaps nothing). Without `/proc`, every group that exists counts as live.
 */
function liveGroups(wanted: ReadonlySet<number>): Set<number> {
  const live = new Set<number>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return new Set(wanted);
  }
  for (const name of names) {
    if (name.charCodeAt(0) > 57) continue; // not a number: /proc/self, /proc/sys, ...
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // `pid (comm) state ppid pgrp ...`: comm may hold spaces and parentheses, so split after the last ')'.
    const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3);
    const pgid = Number(group);
    if (state === 'Z' || state === 'X' || !wanted.has(pgid)) continue;
    live.add(pgid);
    if (live.size === wanted.size) break;
  }
  return live;
}

/**
 * Answers "has process group N a live member?" for every group vigil waits on at once: each
 * question costs a signal 0, and all the questions asked in one turn of the event loop share one
 * pass over `/proc` (only the groups that still exist need it). Killing many groups, or a group
 * with survivors, so costs the main thread one scan per round, not one per group.
 */
class GroupProbe {
  #asked: { readonly pgid: number; readonly answer: (alive: boolean) => void }[] = [];

  alive(pgid: number): Promise<boolean> {
    return new Promise((answer) => {
      if (this.#asked.push({ pgid, answer }) === 1) setImmediate(() => this.#round());
    });
  }

  #round(): void {
    const asked = this.#asked;
    this.#asked = [];
    const answers = new Map<number, boolean>();
    const present = new Set<number>();
    for (const { pgid } of asked) {
      if (answers.has(pgid) || present.has(pgid)) continue;
      const found = presence(pgid);
      if (found === 'present') present.add(pgid);
      else answers.set(pgid, found === 'unsignalable');
    }
    if (present.size > 0) {
      const live = liveGroups(present);
      for (const pgid of present) answers.set(pgid, live.has(pgid));
    }
    for (const { pgid, answer } of asked) answer(answers.get(pgid) ?? false);
  }
}

/** The one probe of this process (it has no state between rounds). */
export const groupProbe = new GroupProbe();
