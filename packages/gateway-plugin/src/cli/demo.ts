import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Notification } from '@vigil/core';
import type { DemoCommand, DemoEvent } from './demo-protocol.js';
import { neutraliseControls } from './terminal-text.js';

export interface DemoOptions {
  /** Where progress lines go. Default: stdout. */
  readonly write?: (line: string) => void;
  /** Give up on a step after this long. Default 30 s. */
  readonly stepTimeoutMs?: number;
}

const SESSION = 'demo';
const GATEWAY_MODULE = fileURLToPath(new URL('./demo-gateway.js', import.meta.url));
/** How long the demo's last step waits for its gateway's full stop before it kills it. */
const STOP_LIMIT_MS = 20_000;

/** The demo's gateway process (`demo-gateway.ts`): where it serves, and what it restored. */
interface GatewayProcess {
  readonly pid: number;
  readonly url: string;
  readonly restored: readonly string[];
  /** SIGKILL: a crash, as far as vigil can tell. */
  kill(): Promise<void>;
  /** A full stop: every command ended, the journal emptied. */
  stop(): Promise<void>;
}

/** Forks the demo's gateway on `stateDir` and resolves once it serves. */
async function launchGateway(
  stateDir: string,
  token: string,
  onNotification: (notification: Notification, text: string, ack: () => void) => void,
): Promise<GatewayProcess> {
  const child: ChildProcess = fork(GATEWAY_MODULE, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  const tell = (command: DemoCommand): void => {
    if (child.connected) child.send(command);
  };
  const ended = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const serving = new Promise<GatewayProcess>((resolve, reject) => {
    child.on('message', (event: DemoEvent) => {
      if (event.type === 'failed') reject(new Error(`demo: the gateway did not start: ${event.message}`));
      else if (event.type === 'notification') {
        // A restarted gateway delivers what was pending before it reports that it serves.
        const { notification, text } = event;
        onNotification(notification, text, () => tell({ type: 'ack', id: notification.id }));
      } else {
        resolve({
          pid: child.pid!,
          url: event.url,
          restored: event.restored,
          async kill() {
            if (!ended()) child.kill('SIGKILL');
            await exited;
          },
          async stop() {
            if (ended()) return;
            tell({ type: 'stop' });
            const limit = setTimeout(() => child.kill('SIGKILL'), STOP_LIMIT_MS);
            await exited;
            clearTimeout(limit);
          },
        });
      }
    });
    void exited.then(() => reject(new Error('demo: the gateway exited before it served')));
  });
  tell({ type: 'start', stateDir, token });
  return serving;
}

/**
 * `vigil demo`: the embedded gateway, in a process of its own on a temporary state directory, with
 * a demo session that runs real commands through the HTTP API (a log producer with a READY and an
 * ERROR line, a command behind an approval that the demo answers, a failing command, one that gets
 * killed), printing each notification as the agent takes it. Then restart safety: while a build
 * runs and its notification waits unacknowledged (the agent is busy), the demo kills the gateway
 * with SIGKILL and starts it again on the same directory; the build is adopted again, the pending
 * notification is delivered once, and the build's completion follows.
 */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const print = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const write = (line: string): void => print(neutraliseControls(line));
  const stepTimeoutMs = options.stepTimeoutMs ?? 30_000;
  /** Notifications the agent took (acknowledged), in order. */
  const arrived: Notification[] = [];
  /** Notifications offered while the agent is busy: not acknowledged, the gateway waits. */
  const held: { notification: Notification; text: string; ack: () => void }[] = [];
  let busy = false;
  const waiters: (() => void)[] = [];
  const take = (notification: Notification, text: string, ack: () => void): void => {
    arrived.push(notification);
    write(`  > ${text.replaceAll('\n', '\n    ')}`);
    ack();
  };
  const onNotification = (notification: Notification, text: string, ack: () => void): void => {
    if (busy) {
      held.push({ notification, text, ack });
      write(
        `      offered while the agent is busy, left unacknowledged: ${notification.type} ${notification.id}`,
      );
    } else {
      take(notification, text, ack);
    }
    for (const wake of waiters.splice(0)) wake();
  };
  const stateDir = mkdtempSync(join(tmpdir(), 'vigil-demo-'));
  const token = randomBytes(24).toString('base64url');
  let gateway: GatewayProcess;
  try {
    gateway = await launchGateway(stateDir, token, onNotification);
  } catch (error) {
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
  const call = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await response.json()) as Record<string, unknown>;
    if (!response.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
    return json;
  };
  const until = async (what: string, done: () => boolean): Promise<void> => {
    const deadline = Date.now() + stepTimeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`demo: gave up waiting for ${what}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 250).unref();
      });
    }
  };
  const completed = (processId: unknown) => () =>
    arrived.some((n) => n.type === 'completion' && n.processId === processId);

  try {
    write(`[1/7] embedded gateway (pid ${gateway.pid}) on ${gateway.url}; opening session "${SESSION}"`);
    const session = await call('POST', '/v1/sessions', { sessionId: SESSION });
    write(`      its poller runs on worker thread ${(session.poller as { threadId: number }).threadId}`);

    write('[2/7] a log producer watched for READY and ERROR');
    const logs = await call('POST', `/v1/sessions/${SESSION}/processes`, {
      command: "echo 'booting'; echo 'server READY on :8080'; sleep 0.3; echo 'ERROR: disk almost full'",
      watch: ['READY', { regex: '^error', flags: 'i' }],
    });
    await until('the log producer', completed(logs.processId));

    write('[3/7] a deploy behind an approval, which the demo approves');
    const deploy = await call('POST', `/v1/sessions/${SESSION}/processes`, {
      command: "echo 'deploying build 42'; echo 'deployed'",
      requireApproval: true,
      description: 'deploy build 42 to staging',
    });
    const card = (await call('GET', `/v1/sessions/${SESSION}/approvals`)) as {
      head: { approvalId: string } | null;
    };
    write(`      approval card: ${JSON.stringify(card.head)}`);
    await call('POST', `/v1/sessions/${SESSION}/approvals/${card.head!.approvalId}`, { decision: 'approve' });
    await until('the deploy', completed(deploy.processId));

    write('[4/7] a build that fails');
    const build = await call('POST', `/v1/sessions/${SESSION}/processes`, {
      command: "echo 'compiling 12 files'; echo 'src/app.ts(3,7): error TS2322' >&2; exit 2",
    });
    await until('the failing build', completed(build.processId));

    write('[5/7] a server that gets killed');
    const server = await call('POST', `/v1/sessions/${SESSION}/processes`, {
      command: 'echo listening; sleep 300',
    });
    await call('POST', `/v1/processes/${server.processId as string}/kill`, {});
    await until('the killed server', completed(server.processId));

    write(`[6/7] restart safety: the gateway is killed with SIGKILL while a build runs (state: ${stateDir})`);
    busy = true;
    write('      the agent is busy: the gateway waits for it to take each notification');
    // The build links once the demo says so (a file in its directory): it runs across the restart.
    const release = await call('POST', `/v1/sessions/${SESSION}/processes`, {
      command:
        "echo 'build 43: compiling 40 files'; until [ -e linker.ready ]; do sleep 0.05; done; echo 'build 43: linked'",
      cwd: stateDir,
      watch: ['compiling'],
    });
    await until("the release build's match", () => held.length > 0);
    const pending = held[0]!.notification;
    write(`      SIGKILL to the gateway (pid ${gateway.pid}): the build runs on, ${pending.id} is pending`);
    await gateway.kill();
    held.length = 0;
    gateway = await launchGateway(stateDir, token, onNotification);
    const adopted = await call('GET', `/v1/processes/${release.processId as string}`);
    write(
      `      gateway started again (pid ${gateway.pid}) on ${gateway.url}: session "${gateway.restored.join('", "')}" restored, build ${String(adopted.processId)} adopted (${String(adopted.state)})`,
    );
    write('      the agent is free again, and the build links');
    busy = false;
    for (const { notification, text, ack } of held.splice(0)) take(notification, text, ack);
    writeFileSync(join(stateDir, 'linker.ready'), '');
    await until('the release build', completed(release.processId));
    const times = arrived.filter((n) => n.id === pending.id).length;
    write(
      `      the pending notification was delivered ${times === 1 ? 'once' : `${times} times`}, then the adopted build's completion`,
    );

    write('[7/7] closing the session and stopping the gateway');
    const closed = await call('DELETE', `/v1/sessions/${SESSION}`);
    write(`      session closed (${String(closed.reason)}); ${arrived.length} notifications delivered`);
  } finally {
    await gateway.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  const kinds = arrived.map((n) => n.type);
  write(
    `done: ${kinds.filter((k) => k === 'watch_match').length} watch matches and ${kinds.filter((k) => k === 'completion').length} completions delivered; the gateway stopped`,
  );
}
