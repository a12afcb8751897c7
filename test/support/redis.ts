// A real redis-server (Debian's) for the Redis store and cluster tests: on 127.0.0.1, an ephemeral
// port, its own data directory; stopped (or killed) by the test that started it.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { VigilError } from '@vigil/core';
import { RedisStore, type RedisStoreOptions } from '@vigil/core/redis';
import { Redis } from 'ioredis';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisServerOptions {
  /**
   * Keep the data across a restart: an append-only file fsynced on every write, so `restart()`
   * (after a stop or a SIGKILL) finds every acknowledged write. Default false: memory only.
   */
  readonly persist?: boolean;
}

export interface RedisServer extends AsyncDisposable {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** The running server's process (replaced by `restart`). */
  readonly child: ChildProcess;
  /** Stops the server: SIGTERM (a clean shutdown), or SIGKILL. Resolves once it exited. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and directory (after `stop`); resolves once it accepts connections. */
  restart(): Promise<void>;
}

/** Starts redis-server on a free loopback port; resolves once it accepts connections. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-redis-'));
  try {
    // A port found free can be taken before redis binds it: then another one is tried.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        let child = await launch(port, dir, options);
        const server: RedisServer = {
          port,
          url: `redis://127.0.0.1:${port}`,
          dir,
          get child() {
            return child;
          },
          async stop(signal = 'SIGTERM') {
            await stopChild(child, signal);
          },
          async restart() {
            child = await launch(port, dir, options);
          },
          async [Symbol.asyncDispose]() {
            await stopChild(child, 'SIGKILL');
            rmSync(dir, { recursive: true, force: true });
          },
        };
        return server;
      } catch (error) {
        if (attempt >= 5 || !String(error).includes('Address already in use')) throw error;
      }
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function launch(port: number, dir: string, options: RedisServerOptions): Promise<ChildProcess> {
  const persistence = options.persist
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    : ['--appendonly', 'no', '--save', ''];
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--protected-mode', 'yes', ...persistence],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      output.push(line);
      if (line.includes('Ready to accept connections')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${output.join('\n')}`)),
    );
  });
  try {
    await ready;
  } catch (error) {
    lines.close();
    throw error;
  }
  // Its later output is not needed; keep the pipes drained so it never blocks on a full pipe.
  child.stderr!.resume();
  return child;
}

async function stopChild(child: ChildProcess, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** A test event of seq `seq` (what a store journals). */
export const eventOf = (seq: number) =>
  ({ seq, type: 'watch.resumed', at: seq, data: { suppressed: 0, pausedMs: 0, message: `${seq}` } }) as never;

/** Journals `sessionId` as open on `target` (not committed yet). */
export function putOpen(target: RedisStore, sessionId: string): void {
  target.putSession({
    sessionId,
    state: 'open',
    openedAt: 1,
    closedAt: null,
    closeReason: null,
    approvalVersion: 0,
  });
}

/**
 * Starts servers and clients for one test, each stopped by a function pushed on `cleanups` (the
 * test file runs them, last first, after each test).
 */
export function redisFixture(cleanups: (() => unknown)[]) {
  return {
    async server(options: RedisServerOptions = {}): Promise<RedisServer> {
      const server = await startRedis(options);
      cleanups.push(() => server[Symbol.asyncDispose]());
      return server;
    },
    /** A `RedisStore` of `instanceId` on `server` (prefix `vigil:`), closed after the test; its errors go to `errors`. */
    store(
      server: RedisServer,
      instanceId: string,
      errors: VigilError[],
      options: Partial<Omit<RedisStoreOptions, 'url' | 'instanceId' | 'onError'>> = {},
    ): RedisStore {
      const opened = new RedisStore({
        url: server.url,
        prefix: 'vigil:',
        leaseMs: 10_000,
        timeoutMs: 2_000,
        instanceId,
        onError: (error) => errors.push(error),
        ...options,
      });
      cleanups.push(() => {
        opened.close();
        return opened.released;
      });
      return opened;
    },
    /** A client for the test's own checks. */
    client(server: RedisServer): Redis {
      const redis = new Redis(server.url);
      // Some tests stop the server under it: its reconnection attempts fail, and that is expected.
      redis.on('error', () => undefined);
      cleanups.push(() => redis.disconnect());
      return redis;
    },
  };
}
