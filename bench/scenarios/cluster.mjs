/**
 * Cross-instance latency of a cluster (`vigil serve --redis`): a real redis-server (append-only
 * file fsynced every second) and two real
 * `vigil serve --redis` processes, A and B. One session on A runs an echo child watching 'PING'
 * (rate limits out of the way); a sample writes `PING <k>` to its stdin through A's HTTP API and
 * ends when the line's `watch.match` tape event arrives on an SSE stream:
 *
 * - of B, which does not serve the session: the event goes through Redis (A's commit script, then
 *   B's `XREAD BLOCK` wakes and `XRANGE` reads it);
 * - of A itself, open at the same time: the local path, for comparison.
 *
 * One sample at a time, after a warm-up. Only the worker host (shared threads): `vigil serve` runs it.
 *
 * Failover: two more instances, C and D, with `store.leaseMs` L. A session on C runs a command;
 * C is SIGKILLed; the time is from the kill until D prints the first notification it delivers for
 * the session (the command's completion, ended `lost`: it ran on the instance that is gone). D
 * finds the session once C's lease expired (up to L after C's last renewal) and its scan runs
 * (every L/2), measured once D has run for L + 2 s (it does not scan before: see the README).
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { SHARED } from '../lib/hosts.mjs';
import { percentile, round, within } from '../lib/measure.mjs';
import { benchRedis } from '../lib/redis-server.mjs';

const SCENARIO = 'cluster';
const TOKEN = 'bench-cluster-token-0123456789abcdef';
const CLI = fileURLToPath(new URL('../../packages/gateway-plugin/dist/cli/cli.js', import.meta.url));
const ECHO = 'while read l; do echo "$l"; done';
const CONFIG = {
  watch: { cooldownMs: 0, lifetimeMaxHits: 1_000_000, breaker: { maxMatches: 1_000_000 } },
};
const WARM_UP = 30;

/** Starts `command args` and resolves once a line of its stdout matches `ready`, with that line. */
async function started(command, args, ready, env = {}) {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', () => {});
  const line = await within(
    new Promise((resolve, reject) => {
      lines.on('line', (text) => {
        if (ready.test(text)) resolve(text);
      });
      child.once('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready`)));
    }),
    20_000,
    command,
  );
  return { child, line, lines };
}

/** Stops instances while their Redis still runs: a stop without a state directory ends their commands. */
async function stopAll(children) {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
}

/** Resolves with the time (performance.now) of the first line of `lines` matching `pattern`. */
const lineAt = (lines, pattern) =>
  new Promise((resolve) => {
    const listener = (text) => {
      if (!pattern.test(text)) return;
      lines.off('line', listener);
      resolve(performance.now());
    };
    lines.on('line', listener);
  });

/**
 * Milliseconds from the SIGKILL of a session's owner until another instance delivers the
 * session's first notification, with `store.leaseMs` = `leaseMs`.
 */
async function failover(dir, leaseMs) {
  // A Redis and instances of its own: any live instance of a cluster may take a session over.
  const redis = await benchRedis();
  const children = [];
  try {
    return await failoverOn(redis.url, dir, leaseMs, children);
  } finally {
    await stopAll(children);
    await redis.stop();
  }
}

async function failoverOn(redisUrl, dir, leaseMs, children) {
  const config = join(dir, `failover-${leaseMs}.json`);
  writeFileSync(config, JSON.stringify({ ...CONFIG, store: { kind: 'redis', url: redisUrl, leaseMs } }));
  const serve = async (id) => {
    const args = [CLI, 'serve', '--port', '0', '--config', config, '--redis', redisUrl, '--instance-id', id];
    const started_ = await started(process.execPath, args, /serving on/, { VIGIL_TOKEN: TOKEN });
    children.push(started_.child);
    return { ...started_, url: /serving on (\S+)/.exec(started_.line)[1] };
  };
  const owner = await serve(`bench-owner-${leaseMs}`);
  const heir = await serve(`bench-heir-${leaseMs}`);
  const sessionId = `failover-${leaseMs}`;
  await call(owner.url, 'POST', '/v1/sessions', { sessionId });
  // An instance scans for orphaned sessions only from leaseMs + 2 s after it connected (live owners
  // renew first after an outage): measure the steady state, not a start.
  await new Promise((resolve) => setTimeout(resolve, leaseMs + 2_000));
  // Marked, to be found and ended afterwards (its pid may not be known yet when the spawn answers).
  const marker = `vigil-bench-failover-${process.pid}-${leaseMs}`;
  await call(owner.url, 'POST', `/v1/sessions/${sessionId}/processes`, { command: `sleep 600 # ${marker}` });
  const takenOver = lineAt(heir.lines, new RegExp(`^\\[${sessionId}\\] taken over`));
  const delivered = lineAt(heir.lines, new RegExp(`^\\[${sessionId}\\] (?!taken over)`));
  const exited = once(owner.child, 'exit');
  const killedAt = performance.now();
  owner.child.kill('SIGKILL');
  await exited;
  const [takenAt, deliveredAt] = await within(
    Promise.all([takenOver, delivered]),
    10 * leaseMs + 30_000,
    'the failover',
  );
  // The command outlived its instance (as on a machine that is gone): end it here.
  spawnSync('pkill', ['-KILL', '-f', marker]);
  return { takenOver: takenAt - killedAt, delivered: deliveredAt - killedAt };
}

function call(base, method, path, body) {
  return fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).then(async (res) => {
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  });
}

/** An SSE stream of `sessionId` on `base`: calls `onMatch(line)` for each watch.match. */
async function stream(base, sessionId, onMatch) {
  const abort = new AbortController();
  const res = await fetch(`${base}/v1/stream?sessions=${sessionId}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: abort.signal,
  });
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!block.includes('event: tape')) continue;
          const data = JSON.parse(block.slice(block.indexOf('data: ') + 6));
          if (data.event.type === 'watch.match') onMatch(data.event.data.lines[0]);
        }
      }
    } catch {
      // Aborted at the end.
    }
  })();
  return async () => {
    abort.abort();
    await reading;
  };
}

async function measure(_host, { quick }) {
  const samples = quick ? 100 : 500;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-cluster-'));
  const redis = await benchRedis();
  const children = [];
  try {
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify(CONFIG));
    const serve = async (id) => {
      const args = [CLI, 'serve', '--port', '0', '--config', config, '--redis', redis.url];
      const { child, line } = await started(process.execPath, [...args, '--instance-id', id], /serving on/, {
        VIGIL_TOKEN: TOKEN,
      });
      children.push(child);
      return /serving on (\S+)/.exec(line)[1];
    };
    const a = await serve('bench-a');
    const b = await serve('bench-b');
    await call(a, 'POST', '/v1/sessions', { sessionId: 'bench' });
    const { processId } = await call(a, 'POST', '/v1/sessions/bench/processes', {
      command: ECHO,
      watch: ['PING'],
    });
    const waiters = { a: new Map(), b: new Map() };
    const arrived = (side) => (line) => waiters[side].get(line)?.();
    const stops = [await stream(a, 'bench', arrived('a')), await stream(b, 'bench', arrived('b'))];
    const times = { a: [], b: [] };
    for (let k = 0; k < WARM_UP + samples; k++) {
      const line = `PING ${k}`;
      const start = process.hrtime.bigint();
      const seen = ['a', 'b'].map(
        (side) =>
          new Promise((resolve) => {
            waiters[side].set(line, () => {
              waiters[side].delete(line);
              resolve(Number(process.hrtime.bigint() - start) / 1e6);
            });
          }),
      );
      await call(a, 'POST', `/v1/processes/${processId}/write`, { data: `${line}\n` });
      const [onA, onB] = await within(Promise.all(seen), 10_000, `sample ${k}`);
      if (k >= WARM_UP) {
        times.a.push(onA);
        times.b.push(onB);
      }
    }
    for (const stop of stops) await stop();
    const failovers = [];
    for (const leaseMs of quick ? [1_000] : [1_000, 10_000]) {
      const { takenOver, delivered } = await failover(dir, leaseMs);
      failovers.push(
        metric(
          `failover: owner SIGKILLed → first notification delivered by another instance (leaseMs ${leaseMs})`,
          Math.round(delivered),
          'ms',
        ),
        metric('  of which until the session was taken over', Math.round(takenOver), 'ms'),
      );
    }
    return [
      ...failovers,
      metric(
        `line written on A → watch.match on B's SSE, p50 (${samples} samples)`,
        round(percentile(times.b, 50), 2),
        'ms',
      ),
      metric('  the same, p99', round(percentile(times.b, 99), 2), 'ms'),
      metric("  the same on A's own SSE (local), p50", round(percentile(times.a, 50), 2), 'ms'),
      metric("  the same on A's own SSE (local), p99", round(percentile(times.a, 99), 2), 'ms'),
    ];
  } finally {
    await stopAll(children);
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

childMain(import.meta.url, SCENARIO, measure);

export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, [SHARED], opts);
}
