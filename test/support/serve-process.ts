// A real `vigil serve` process on a free loopback port, for tests of how it stops: real signals,
// real children, its output read line by line.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { VigilConfigInput } from '@vigil/core';
import { apiClient, type Call } from './http.js';
import { liveMembers } from './proc.js';
import { Recorder } from './recorder.js';

export const CLI = fileURLToPath(new URL('../../packages/gateway-plugin/dist/cli/cli.js', import.meta.url));

export interface ServeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ServeProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  readonly url: string;
  readonly token: string;
  readonly call: Call;
  /** Its stdout lines so far, and a way to await one. */
  readonly lines: Recorder<string>;
  readonly exited: Promise<ServeExit>;
  /** Opens a session and spawns `command` in it; resolves with the process id and its pgid. */
  spawn(command: string): Promise<{ readonly processId: string; readonly pgid: number }>;
  /** Resolves once the process's output contains `needle` (long-polls its tail). */
  outputOf(processId: string, needle: string): Promise<string>;
}

export interface ServeProcessOptions {
  readonly config?: VigilConfigInput;
  readonly env?: Record<string, string>;
  /** Node flags before the CLI (`--import` of a fault-injecting module). */
  readonly nodeArgs?: readonly string[];
  /** More arguments of `vigil serve` (`--state-dir`, ...). */
  readonly args?: readonly string[];
  /** The bearer token (a restarted serve takes its predecessor's). Default: a random one. */
  readonly token?: string;
  /** Joins the cluster of this Redis as this instance (`--redis`, `--instance-id`). */
  readonly cluster?: { readonly redis: string; readonly instanceId: string };
}

/**
 * Starts `vigil serve --port 0` with `config` and resolves once it serves. Disposing it SIGKILLs
 * it, if still running, and every process group it was asked to spawn, so a failed test leaks nothing.
 */
export async function startServe(options: ServeProcessOptions = {}): Promise<ServeProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-serve-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(options.config ?? {}));
  const token = options.token ?? randomBytes(24).toString('base64url');
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      CLI,
      'serve',
      '--port',
      '0',
      '--config',
      configFile,
      ...(options.cluster === undefined
        ? []
        : ['--redis', options.cluster.redis, '--instance-id', options.cluster.instanceId]),
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIGIL_TOKEN: token, ...options.env } },
  );
  const lines = new Recorder<string>();
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const serving = await Promise.race([
    lines.next((line) => /serving on http:/.test(line)),
    exited.then((exit) => {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`vigil serve exited before serving: ${JSON.stringify(exit)}: ${errors}`);
    }),
  ]);
  const url = /serving on (http:\/\/\S+)/.exec(serving)![1]!;
  const call = apiClient(url, token);
  const pgids: number[] = [];
  let sessions = 0;
  return {
    child,
    url,
    token,
    call,
    lines,
    exited,
    async spawn(command) {
      const sessionId = `stop-${++sessions}`;
      await call('POST', '/v1/sessions', { body: { sessionId } });
      const { body } = await call('POST', `/v1/sessions/${sessionId}/processes`, { body: { command } });
      // The spawner process reports the pid a moment later: the tape's process.started has it.
      let after = 0;
      for (;;) {
        const page = await call('GET', `/v1/sessions/${sessionId}/events?after=${after}&wait=10000`);
        const events = page.body.events as {
          seq: number;
          type: string;
          processId?: string;
          data: { pid: number };
        }[];
        const started = events.find((e) => e.type === 'process.started' && e.processId === body.processId);
        if (started !== undefined) {
          pgids.push(started.data.pid);
          return { processId: body.processId, pgid: started.data.pid };
        }
        after = events.at(-1)?.seq ?? after;
      }
    },
    async outputOf(processId, needle) {
      for (;;) {
        const { body } = await call('GET', `/v1/processes/${processId}/poll`);
        if (body.tail.includes(needle)) return body.tail;
        if (body.process.state !== 'running') throw new Error(`${processId} ended: ${body.tail}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      for (const pgid of pgids) {
        if (liveMembers(pgid).length > 0) process.kill(-pgid, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
