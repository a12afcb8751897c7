import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Notification, ProcessInfo, SessionInfo, VigilOptions } from '@vigil/core';
import { expect } from 'vitest';

const ENTRY = fileURLToPath(new URL('../fixtures/journal-child.mjs', import.meta.url));

interface Reply {
  readonly id?: number;
  readonly result?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  readonly event?: string;
  readonly [key: string]: unknown;
}

/** A `deliver` call the child made: `acked` when it resolved. */
export interface Delivery {
  readonly sessionId: string;
  readonly notification: Notification;
  readonly acked: boolean;
}

/**
 * A vigil running in a child Node process (`test/fixtures/journal-child.mjs`), driven over IPC: a
 * test kills it with a real SIGKILL and starts another on the same `stateDir`.
 */
export class JournalChild implements AsyncDisposable {
  readonly deliveries: Delivery[] = [];
  /** Every pushed message (`{ event, ... }`), in arrival order. */
  readonly #pushed: Reply[] = [];
  readonly #child: ChildProcess;
  readonly #pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  readonly #listeners = new Set<(message: Reply) => void>();
  #next = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: Reply) => {
      if (message.event === 'deliver') this.deliveries.push(message as unknown as Delivery);
      if (message.event !== undefined) this.#pushed.push(message);
      for (const listener of this.#listeners) listener(message);
      if (message.id === undefined) return;
      const waiting = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error === undefined) waiting?.resolve(message.result);
      else waiting?.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
    });
    child.on('exit', () => {
      for (const { reject } of this.#pending.values()) reject(new Error('the vigil child exited'));
      this.#pending.clear();
    });
  }

  /** Starts a child and a vigil in it with `options` (a `stateDir` among them). */
  static async start(options: VigilOptions): Promise<JournalChild> {
    const child = new JournalChild(fork(ENTRY, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    await child.call('start', { options });
    return child;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#child.send({ id, op, ...args });
    });
  }

  /** Resolves with the first pushed message that satisfies `match` (checked from now on). */
  next(match: (message: Reply) => boolean): Promise<Reply> {
    return new Promise((resolve) => {
      const listener = (message: Reply): void => {
        if (!match(message)) return;
        this.#listeners.delete(listener);
        resolve(message);
      };
      this.#listeners.add(listener);
    });
  }

  /**
   * Resolves with the first pushed message of `event`, also one that came before this call: IPC
   * messages read together are emitted before a test's await resumes, so `next` could miss it.
   */
  pushed(event: string): Promise<Reply> {
    const seen = this.#pushed.find((message) => message.event === event);
    return seen === undefined ? this.next((message) => message.event === event) : Promise.resolve(seen);
  }

  /** Resolves once `count` deliveries were made in all. */
  async deliveredCount(count: number): Promise<void> {
    while (this.deliveries.length < count) await this.next((message) => message.event === 'deliver');
  }

  /** SIGKILL, and wait for the child to be gone. */
  async kill(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    this.#child.kill('SIGKILL');
    await exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/** Spawns `command`s one after the other, each once the previous one ended: their completions come in this order. */
export async function runInTurn(
  child: JournalChild,
  sessionId: string,
  commands: readonly string[],
): Promise<string[]> {
  const ids: string[] = [];
  for (const command of commands) {
    const exited = child.next((message) => message.event === 'process:exited');
    const info = await child.call<ProcessInfo>('spawn', { input: { sessionId, command } });
    ids.push(info.processId);
    await exited;
  }
  return ids;
}

/** The ids of the notifications delivered, in delivery order. */
export const completionIds = (deliveries: readonly Delivery[]): string[] =>
  deliveries.map(({ notification }) => notification.id);

/**
 * Ten commands in session `agent` of a vigil started with `options`, whose deliver acknowledges
 * three completions and hangs on the 4th; then a SIGKILL. Returns the ten process ids.
 */
export async function killedAfterThreeOfTen(options: VigilOptions): Promise<string[]> {
  await using first = await JournalChild.start(options);
  await first.call('open', { sessionId: 'agent', ackFirst: 3 });
  const ids = await runInTurn(
    first,
    'agent',
    Array.from({ length: 10 }, (_, i) => `exit ${i}`),
  );
  // The 4th call hangs: three acknowledged, the 4th in flight, six waiting.
  await first.deliveredCount(4);
  expect(first.deliveries.map(({ acked }) => acked)).toEqual([true, true, true, false]);
  await first.kill();
  return ids;
}

/** Opening `agent` on `second` delivers exactly the other seven completions, once each and in order. */
export async function deliversTheOtherSeven(second: JournalChild, ids: readonly string[]): Promise<void> {
  await second.call('open', { sessionId: 'agent' });
  await second.deliveredCount(7);
  const info = await second.call<SessionInfo>('session', { sessionId: 'agent' });
  expect(info.outboxDepth).toBe(0);
  expect(completionIds(second.deliveries)).toEqual(ids.slice(3).map((id) => `${id}:completion`));
  const codes = second.deliveries.map(
    ({ notification }) => (notification as Notification & { type: 'completion' }).data.exitCode,
  );
  expect(codes).toEqual([3, 4, 5, 6, 7, 8, 9]);
}
