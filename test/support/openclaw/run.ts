import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface RunResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** Runs a command in its own process group, killing the group if it outlives `timeoutMs`. */
export async function run(
  file: string,
  args: readonly string[],
  options: { readonly env: NodeJS.ProcessEnv; readonly cwd?: string; readonly timeoutMs: number },
): Promise<RunResult> {
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk;
  });
  const watchdog = setTimeout(() => killGroup(child.pid, 'SIGKILL'), options.timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(watchdog);
  return { code, out, err };
}

/** Signals a whole process group; a group that is gone already is fine. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  try {
    if (pid !== undefined) process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
