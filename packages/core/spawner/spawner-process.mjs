/**
 * vigil's spawner: a small Node process that starts the children of a vigil instance on its behalf.
 * Node forks to spawn, and a fork copies the page tables of the forking process: in a gateway of
 * several GB that blocks its main thread for tens of milliseconds per spawn. This process stays
 * small, so its forks stay cheap, and the gateway only sends a message.
 *
 * Messages are those of `src/process/spawner-protocol.ts`. Each child runs in its own process group
 * (pgid = pid), its stdout and stderr appended to its spool file, its stdin a pipe fed from the
 * gateway's `write` messages; or, with `pty`, in a pseudo-terminal whose master side this process
 * holds (`terminal-child.mjs`). Its exit is reported when the child itself exits (G6).
 *
 * It is also what records each child's exit status for a later vigil (`<spool>.exit`, see
 * `src/process/exit-status.ts`): it is the children's parent, so it alone learns their exact code
 * or signal, and it runs in its own process group, so a gateway killed (even with SIGKILL) leaves
 * it alive. When the gateway goes it closes the children's stdin and stays until the last of them
 * ended, writing each status, then exits. Plain JavaScript so that it runs the same from the
 * sources (tests) and from `dist`.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { TerminalChild } from './terminal-child.mjs';

/** @type {Map<number, import('node:child_process').ChildProcess | TerminalChild>} */
const children = new Map();

/** @param {unknown} message */
function send(message) {
  // The channel can break before 'disconnect' is seen (the gateway was killed): with a callback,
  // that EPIPE is not thrown, and this process lives on to record its children's exits.
  if (process.connected) process.send?.(message, undefined, undefined, () => {});
}

/**
 * Clock ticks from boot to the start of `pid` (`/proc/<pid>/stat` field 22); undefined without it.
 * @param {number} pid
 */
function startTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ', 20)[19]);
    return Number.isSafeInteger(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes an exit status atomically (a temporary file renamed), as `writeExitStatus` does.
 * @param {string} path
 * @param {{ exitCode: number | null, signal: string | null }} status
 */
function recordStatus(path, status) {
  try {
    writeFileSync(`${path}.tmp`, JSON.stringify(status), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  } catch (error) {
    process.stderr.write(`vigil spawner: cannot record the exit status ${path}: ${error.message}\n`);
  }
}

/**
 * @typedef {{ id: number, file: string, args: string[], cwd?: string, env: Record<string, string>,
 *   output: string, status?: string, pty: { cols: number, rows: number } | null }} SpawnRequest
 */

/**
 * A child whose stdout and stderr are `output` (closed here once the child has its copy).
 * @param {SpawnRequest} request
 * @param {number} output
 */
function startPiped(request, output) {
  try {
    const child = spawn(request.file, request.args, {
      cwd: request.cwd,
      env: request.env,
      detached: true,
      stdio: ['pipe', output, output],
    });
    child.stdin.on('error', () => {});
    child.once('error', (error) => {
      if (child.pid === undefined) send({ type: 'failed', id: request.id, error: error.message });
    });
    return child.pid === undefined ? undefined : child;
  } finally {
    closeSync(output);
  }
}

/**
 * A child in a terminal, which keeps `output` to copy the terminal's output to it.
 * @param {SpawnRequest} request
 * @param {number} output
 */
function startInTerminal(request, output) {
  try {
    // The terminal's child would only print chdir's failure: say it as a start failure instead.
    if (request.cwd !== undefined && !statSync(request.cwd, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`cwd ${request.cwd} does not exist or is not a directory`);
    }
    const size = /** @type {{ cols: number, rows: number }} */ (request.pty);
    return new TerminalChild(request.file, request.args, {
      cwd: request.cwd,
      env: request.env,
      size,
      output,
    });
  } catch (error) {
    closeSync(output);
    send({ type: 'failed', id: request.id, error: `cannot start it in a terminal: ${error.message}` });
    return undefined;
  }
}

/** @param {SpawnRequest} request */
function start(request) {
  const { id } = request;
  let output;
  try {
    output = openSync(request.output, 'a');
  } catch (error) {
    send({ type: 'failed', id, error: `cannot open its output spool: ${error.message}` });
    return;
  }
  let child;
  try {
    child = request.pty === null ? startPiped(request, output) : startInTerminal(request, output);
  } catch (error) {
    send({ type: 'failed', id, error: error.message });
    return;
  }
  if (child === undefined) return;
  children.set(id, child);
  // Read now, before this process can reap it: the pid cannot name another process yet.
  send({ type: 'spawned', id, pid: child.pid, startTicks: startTicks(child.pid) });
  child.once('exit', (exitCode, signal) => {
    children.delete(id);
    // Recorded before it is reported: once vigil heard of the end, the status is on disk.
    if (request.status !== undefined) recordStatus(request.status, { exitCode, signal });
    send({ type: 'exit', id, exitCode, signal });
    child.stdin.destroy();
    if (!process.connected && children.size === 0) process.exit(0);
  });
}

/** @param {{ id: number, seq: number, data: string | Uint8Array }} request */
function write({ id, seq, data }) {
  const stdin = children.get(id)?.stdin;
  if (stdin == null || !stdin.writable) {
    send({ type: 'written', id, seq, error: 'The process has ended or its stdin is closed' });
    return;
  }
  stdin.write(data, (error) => send({ type: 'written', id, seq, error: error?.message }));
}

process.on('message', (message) => {
  switch (message.type) {
    case 'spawn':
      start(message);
      break;
    case 'write':
      write(message);
      break;
    case 'end':
      children.get(message.id)?.stdin?.end();
      break;
    case 'destroy':
      children.get(message.id)?.stdin?.destroy();
      break;
    case 'resize': {
      const child = children.get(message.id);
      if (child instanceof TerminalChild) child.resize(message.cols, message.rows);
      break;
    }
  }
});

// Signals are the gateway's to handle: it ends every group it started, then lets this process go.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => {});
// The gateway closed the channel (or died): nothing is left to report to, and nobody can write to
// the children's stdin any more (EOF). They keep running; this process stays to record how each
// ends, for the vigil that adopts them, and exits after the last.
process.on('disconnect', () => {
  // A terminal is left as it is (as a terminal emulator that stays open would): typing ^D into it
  // could be a keystroke for a program that reads it raw.
  for (const child of children.values()) if (!(child instanceof TerminalChild)) child.stdin?.end();
  if (children.size === 0) process.exit(0);
});
send({ type: 'ready' });
