/**
 * vigil's spawner: a small Node process that starts the children of a vigil instance on its behalf.
 * Node forks to spawn, and a fork copies the page tables of the forking process: in a gateway of
 * several GB that blocks its main thread for tens of milliseconds per spawn. This process stays
 * small, so its forks stay cheap, and the gateway only sends a message.
 *
 * Messages are those of `src/process/spawner-protocol.ts`. Each child runs in its own process group
 * (pgid = pid), its stdout and stderr appended to its spool file, its stdin a pipe fed from the
 * gateway's `write` messages. Its exit is reported when the child itself exits (G6).
 * Plain JavaScript so that it runs the same from the sources (tests) and from `dist`.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** @type {Map<number, import('node:child_process').ChildProcess>} */
const children = new Map();

/** @param {unknown} message */
function send(message) {
  if (process.connected) process.send?.(message);
}

/** @param {{ id: number, file: string, args: string[], cwd?: string, env: Record<string, string>, output: string }} request */
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
    child = spawn(request.file, request.args, {
      cwd: request.cwd,
      env: request.env,
      detached: true,
      stdio: ['pipe', output, output],
    });
  } catch (error) {
    send({ type: 'failed', id, error: error.message });
    return;
  } finally {
    closeSync(output);
  }
  child.stdin.on('error', () => {});
  child.once('error', (error) => {
    if (child.pid === undefined) send({ type: 'failed', id, error: error.message });
  });
  if (child.pid === undefined) return;
  children.set(id, child);
  send({ type: 'spawned', id, pid: child.pid });
  child.once('exit', (exitCode, signal) => {
    children.delete(id);
    send({ type: 'exit', id, exitCode, signal });
    child.stdin.destroy();
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
  }
});

// Signals are the gateway's to handle: it ends every group it started, then lets this process go.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => {});
// The gateway closed the channel (or died): nothing is left to report to. Children keep running,
// as they would have if the gateway had spawned them itself and died.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
