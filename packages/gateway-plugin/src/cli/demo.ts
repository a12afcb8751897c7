import type { Notification } from '@vigil/core';
import type { RenderedNotification } from '../plugin/render.js';
import { startGateway } from './gateway.js';
import { neutraliseControls } from './terminal-text.js';

export interface DemoOptions {
  /** Where progress lines go. Default: stdout. */
  readonly write?: (line: string) => void;
  /** Give up on a step after this long. Default 30 s. */
  readonly stepTimeoutMs?: number;
}

const SESSION = 'demo';

/**
 * `vigil demo`: the embedded gateway with a demo session that runs real commands through the HTTP
 * API (a log producer with a READY and an ERROR line, a command behind an approval that the demo
 * answers, a failing command, and one that gets killed), printing each notification as it arrives.
 */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const print = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const write = (line: string): void => print(neutraliseControls(line));
  const stepTimeoutMs = options.stepTimeoutMs ?? 30_000;
  const arrived: Notification[] = [];
  const waiters: (() => void)[] = [];
  const gateway = await startGateway({
    port: 0,
    token: `demo-${Math.random().toString(36).slice(2)}-${Date.now()}`,
    config: { watch: { cooldownMs: 0 } },
    onNotification: (_sessionId: string, message: RenderedNotification) => {
      arrived.push(message.notification);
      write(`  > ${message.text.replaceAll('\n', '\n    ')}`);
      for (const wake of waiters.splice(0)) wake();
    },
  });
  const call = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${gateway.token}`, 'content-type': 'application/json' },
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
    write(`[1/6] embedded gateway on ${gateway.url}; opening session "${SESSION}"`);
    const session = await call('POST', '/v1/sessions', { sessionId: SESSION });
    write(`      its poller runs on worker thread ${(session.poller as { threadId: number }).threadId}`);

    write('[2/6] a log producer watched for READY and ERROR');
    const logs = await call('POST', `/v1/sessions/${SESSION}/processes`, {
      command: "echo 'booting'; echo 'server READY on :8080'; sleep 0.3; echo 'ERROR: disk almost full'",
      watch: ['READY', { regex: '^error', flags: 'i' }],
    });
    await until('the log producer', completed(logs.processId));

    write('[3/6] a deploy behind an approval, which the demo approves');
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

    write('[4/6] a build that fails');
    const build = await call('POST', `/v1/sessions/${SESSION}/processes`, {
      command: "echo 'compiling 12 files'; echo 'src/app.ts(3,7): error TS2322' >&2; exit 2",
    });
    await until('the failing build', completed(build.processId));

    write('[5/6] a server that gets killed');
    const server = await call('POST', `/v1/sessions/${SESSION}/processes`, {
      command: 'echo listening; sleep 300',
    });
    await call('POST', `/v1/processes/${server.processId as string}/kill`, {});
    await until('the killed server', completed(server.processId));

    write('[6/6] closing the session and stopping the gateway');
    const closed = await call('DELETE', `/v1/sessions/${SESSION}`);
    write(`      session closed (${String(closed.reason)}); ${arrived.length} notifications delivered`);
  } finally {
    await gateway.close();
  }
  const kinds = arrived.map((n) => n.type);
  write(
    `done: ${kinds.filter((k) => k === 'watch_match').length} watch matches and ${kinds.filter((k) => k === 'completion').length} completions delivered; the gateway stopped`,
  );
}
