import { createVigil, type Vigil } from '@vigil/core';
import { createWorkerHost } from '@vigil/worker';

export interface DemoOptions {
  /** Where progress lines go. Default: stdout. */
  readonly write?: (line: string) => void;
  readonly sessions?: number;
}

/**
 * `vigil demo`: opens sessions on the worker host, shows each session's poller start on a pooled
 * thread, proves each answers, closes them and shows every poller stop and every thread end.
 */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const count = options.sessions ?? 3;
  const vigil: Vigil = createVigil({ host: createWorkerHost() });
  vigil.on('poller:started', (info) =>
    write(`  poller:started  session=${info.sessionId} thread=${info.threadId} run=${info.runId}`),
  );
  vigil.on('poller:exited', (info) =>
    write(`  poller:exited   session=${info.sessionId} thread=${info.threadId} reason=${info.reason}`),
  );
  vigil.on('session:closed', (info) => write(`  session:closed  session=${info.sessionId}`));
  try {
    const ids = Array.from({ length: count }, (_, i) => `demo-${i + 1}`);
    write(`[1/3] opening ${count} sessions on the worker host`);
    for (const id of ids) await vigil.sessions.open(id);
    write(`[2/3] probing every session's poller`);
    for (const id of ids) {
      const started = performance.now();
      const probe = await vigil.sessions.probe(id);
      write(
        `  ${id} answered from thread ${probe.threadId} in ${(performance.now() - started).toFixed(2)} ms`,
      );
    }
    const stats = vigil.stats();
    write(`  stats: ${stats.sessions} sessions, ${stats.pollers} pollers on ${stats.threads} threads`);
    write(`[3/3] closing every session`);
    await Promise.all(ids.map((id) => vigil.sessions.close(id, { reason: 'demo finished' })));
  } finally {
    await vigil.close();
  }
  const after = vigil.stats();
  write(`done: ${after.sessions} sessions, ${after.pollers} pollers, ${after.threads} threads left`);
}
