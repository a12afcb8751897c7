// What /proc tells about processes and threads: vigil announces neither a grandchild's death nor a
// thread's exit, so tests that check "nothing is left" read it here. A zombie counts as dead (this
// sandbox's PID 1 does not reap orphans).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  /** The state letter: R, S, Z, ... */
  readonly state: string;
  readonly ppid: number;
  readonly pgid: number;
}

/** `/proc/<pid>/stat`, or undefined when the pid does not exist. */
export function procStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const [state = '', ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid, state, ppid: Number(ppid), pgid: Number(pgid) };
}

/** The state letter of `/proc/<pid>/stat`, or null when the pid does not exist. */
export function procState(pid: number): string | null {
  return procStat(pid)?.state ?? null;
}

/** Gone or a zombie. */
export function isDead(pid: number): boolean {
  const state = procState(pid);
  return state === null || state === 'Z' || state === 'X';
}

/** Every process that is neither gone nor a zombie. */
export function living(): ProcStat[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => procStat(Number(name)))
    .filter((p): p is ProcStat => p !== undefined && p.state !== 'Z');
}

/** Live members of a process group. */
export function liveMembers(pgid: number): number[] {
  return living()
    .filter((p) => p.pgid === pgid)
    .map((p) => p.pid);
}

/** Live descendants of `pid`, children first. */
export function descendants(pid: number): number[] {
  const all = living();
  const found: number[] = [];
  for (const queue = [pid]; queue.length > 0; ) {
    const parent = queue.shift()!;
    for (const child of all.filter((p) => p.ppid === parent)) {
      found.push(child.pid);
      queue.push(child.pid);
    }
  }
  return found;
}

/** The command line of `pid`, space-separated ('' when gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** OS threads of this process (worker threads included). */
export function osThreads(): number {
  return readdirSync('/proc/self/task').length;
}

/**
 * Gives `pid` to a new process of its own group, as the kernel does once pids wrap around: sets
 * the last pid handed out (`ns_last_pid`, which needs CAP_SYS_ADMIN, as on CI) and starts
 * `sleep` until it gets it (another fork may take it first).
 */
export async function reusePid(pid: number): Promise<ChildProcess> {
  for (;;) {
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const newcomer = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    if (newcomer.pid === pid) return newcomer;
    const exited = once(newcomer, 'exit');
    newcomer.kill('SIGKILL');
    await exited;
  }
}

/** Pseudo-terminal master sides (`/dev/ptmx`) that process `pid` holds open. */
export function terminalMasters(pid: number): number {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return 0;
  }
  return fds.filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/ptmx';
    } catch {
      return false;
    }
  }).length;
}
