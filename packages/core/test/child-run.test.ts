import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isDead, liveMembers, reusePid } from '../../../test/support/proc.js';
import { raceIt } from '../../../test/support/race.js';
import { type ChildEnd, ChildRun, type ChildRunOptions } from '../src/process/child-run.js';

// Timers are tracked by `trackTimers` instead: vitest's own timers come and go in this list.
const TRACKED = new Set(['ChildProcess', 'ProcessWrap', 'PipeWrap', 'TTYWrap']);

function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) {
    if (TRACKED.has(name)) counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/** Counts the timers created through the global `setTimeout` that have neither fired nor been cleared. */
function trackTimers(): { pending(): number; restore(): void } {
  const { setTimeout: realSet, clearTimeout: realClear } = globalThis;
  const pending = new Set<unknown>();
  globalThis.setTimeout = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = realSet(() => {
      pending.delete(timer);
      callback(...args);
    }, ms);
    pending.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer?: NodeJS.Timeout) => {
    pending.delete(timer);
    realClear(timer);
  }) as typeof clearTimeout;
  return {
    pending: () => pending.size,
    restore() {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

/** No event reports a foreign process's death, so poll it: bounded to ~2 s of short awaits. */
async function until(condition: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return condition();
}

/** Bounds of a write in these tests: long, as the children read at once. */
const WRITE = { timeoutMs: 10_000 };

const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Observed {
  readonly run: ChildRun;
  /** Resolves with the end and the output written before it. */
  readonly ended: Promise<{ end: ChildEnd; output: Buffer }>;
  endCalls(): number;
  /** The output file so far. */
  text(): string;
  /** Resolves when the output file contains `needle`; rejects if the run ends first. */
  waitFor(needle: string): Promise<void>;
}

const observedRuns: Observed[] = [];
const outputDir = mkdtempSync(join(tmpdir(), 'vigil-child-run-'));
afterAll(() => rmSync(outputDir, { recursive: true, force: true }));
let outputs = 0;

/** Starts a run whose output goes to a fresh file (as a spool would), and follows it. */
function observe(options: Partial<ChildRunOptions> & Pick<ChildRunOptions, 'command'>): Observed {
  const file = join(outputDir, `out-${++outputs}`);
  const output = openSync(file, 'a');
  let endCalls = 0;
  let settle: (value: { end: ChildEnd; output: Buffer }) => void = () => {};
  const ended = new Promise<{ end: ChildEnd; output: Buffer }>((resolve) => {
    settle = resolve;
  });
  const text = (): string => readFileSync(file, 'utf8');
  let run: ChildRun;
  try {
    run = ChildRun.start(
      { killGraceMs: 2000, output, ...options },
      {
        onEnd(end) {
          endCalls++;
          settle({ end, output: readFileSync(file) });
        },
      },
    );
  } finally {
    closeSync(output);
  }
  const observed: Observed = {
    run,
    ended,
    endCalls: () => endCalls,
    text,
    waitFor: async (needle) => {
      // The child writes the file directly: watch it for appends.
      const watcher = watch(file);
      try {
        while (!text().includes(needle)) {
          if (endCalls > 0) throw new Error(`ended before '${needle}'`);
          await Promise.race([once(watcher, 'change'), ended]);
        }
      } finally {
        watcher.close();
      }
    },
  };
  observedRuns.push(observed);
  return observed;
}

describe('ChildRun', () => {
  let baseline: Record<string, number>;
  let timers: ReturnType<typeof trackTimers>;

  beforeEach(() => {
    baseline = resourceCounts();
    timers = trackTimers();
  });

  afterEach(async () => {
    const observed = observedRuns.splice(0);
    await Promise.all(observed.map(({ run }) => run.kill('SIGKILL')));
    const pendingTimers = timers.pending();
    timers.restore();
    expect(pendingTimers).toBe(0);
    const pgids = observed.flatMap(({ run }) => (run.pid === undefined ? [] : [run.pid]));
    expect(await until(() => pgids.every((pgid) => liveMembers(pgid).length === 0))).toBe(true);
    // A closed handle leaves the list in the close phase of the loop turn after its close() call.
    await nextMacrotask();
    await nextMacrotask();
    expect(resourceCounts()).toEqual(baseline);
    expect(observed.map((o) => o.endCalls())).toEqual(observed.map(() => 1));
  });

  it('writes the output to its file and ends with the exit code', async () => {
    const observed = observe({ command: 'echo hi; exit 3' });
    expect(observed.run.running).toBe(true);
    expect(observed.run.pid).toBeGreaterThan(0);
    const { end, output } = await observed.ended;
    expect(end).toEqual({ kind: 'exited', exitCode: 3, signal: null });
    expect(output.toString()).toBe('hi\n');
    expect(observed.run.running).toBe(false);
  });

  it('ends promptly from its own exit while a grandchild holds stdout open (G6)', async () => {
    const observed = observe({ command: 'sleep 60 & echo $!' });
    const { end, output } = await observed.ended;
    expect(end).toEqual({ kind: 'exited', exitCode: 0, signal: null });
    // End-of-pipe would come only when the grandchild dies: it is still alive at the end.
    const grandchild = Number(output.toString().trim());
    expect(grandchild).toBeGreaterThan(1);
    expect(() => process.kill(grandchild, 0)).not.toThrow();
    process.kill(grandchild, 'SIGKILL');
    // The grandchild still holds the output file, yet our stdin pipe and the process handle are released.
    await nextMacrotask();
    await nextMacrotask();
    expect(resourceCounts()).toEqual(baseline);
  });

  it("has the child's final output in the file before onEnd", async () => {
    const expected = `${Array.from({ length: 20_000 }, (_, i) => i + 1).join('\n')}\n`;
    for (let i = 0; i < 20; i++) {
      const { end, output } = await observe({ command: ['seq', '1', '20000'] }).ended;
      expect(end).toEqual({ kind: 'exited', exitCode: 0, signal: null });
      expect(output.toString() === expected).toBe(true);
    }
  });

  it('writes stdout and stderr to the file in the order the child wrote them', async () => {
    const observed = observe({ command: 'echo out1; read a; echo err >&2; read b; echo out2' });
    await observed.waitFor('out1\n');
    await observed.run.write('\n', WRITE);
    await observed.waitFor('err\n');
    await observed.run.write('\n', WRITE);
    const { end, output } = await observed.ended;
    expect(end).toMatchObject({ kind: 'exited', exitCode: 0 });
    expect(output.toString()).toBe('out1\nerr\nout2\n');
  });

  it('calls onEnd exactly once when kill races the natural exit', async () => {
    for (let i = 0; i < 50; i++) {
      const observed = observe({ command: 'exit 3' });
      await observed.run.kill();
      await observed.run.kill();
      await nextMacrotask();
      expect(observed.endCalls()).toBe(1);
      const { end } = await observed.ended;
      expect(end.kind === 'exited' && (end.exitCode === 3 || end.signal === 'SIGTERM')).toBe(true);
    }
  });

  it('signals the whole process group and resolves kill after onEnd', async () => {
    const observed = observe({ command: 'sleep 60 & echo $!; wait' });
    await observed.waitFor('\n');
    const grandchild = Number.parseInt(observed.text(), 10);
    expect(isDead(grandchild)).toBe(false);
    await observed.run.kill();
    expect(observed.endCalls()).toBe(1);
    expect((await observed.ended).end).toEqual({ kind: 'exited', exitCode: null, signal: 'SIGTERM' });
    expect(await until(() => isDead(grandchild))).toBe(true);
  });

  it('sends SIGKILL after killGraceMs when the group ignores SIGTERM', async () => {
    const observed = observe({ command: "trap '' TERM; echo ready; sleep 60", killGraceMs: 300 });
    await observed.waitFor('ready');
    const started = performance.now();
    await observed.run.kill();
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect((await observed.ended).end).toEqual({ kind: 'exited', exitCode: null, signal: 'SIGKILL' });
  });

  raceIt(
    'resolves kill only once a TERM-ignoring grandchild is dead, though the leader exits on SIGTERM (G17)',
    async () => {
      const observed = observe({
        // The grandchild prints its pid once it ignores SIGTERM; `exec` keeps that disposition.
        command: `sh -c 'trap "" TERM; echo $$; exec sleep 1000' & wait`,
        killGraceMs: 100,
      });
      await observed.waitFor('\n');
      const grandchild = Number.parseInt(observed.text(), 10);
      await observed.run.kill();
      expect((await observed.ended).end).toMatchObject({ signal: 'SIGTERM' });
      expect(isDead(grandchild)).toBe(true);
      expect(liveMembers(observed.run.pid!)).toEqual([]);
    },
  );

  it('fails a write the child does not read in time with ERR_TIMEOUT and closes its stdin', async () => {
    const observed = observe({ command: 'echo ready; sleep 1000' });
    await observed.waitFor('ready');
    const write = observed.run.write(Buffer.alloc(1 << 20), { timeoutMs: 50 });
    await expect(write).rejects.toMatchObject({ code: 'ERR_TIMEOUT', message: /1048576 bytes/ });
    expect(observed.run.pendingStdinBytes).toBe(0);
    await expect(observed.run.write('x', WRITE)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
  });

  raceIt('fails a pending write when its signal aborts and when the child is killed', async () => {
    const aborted = observe({ command: 'echo ready; sleep 1000' });
    await aborted.waitFor('ready');
    const controller = new AbortController();
    const write = aborted.run.write(Buffer.alloc(1 << 20), { ...WRITE, signal: controller.signal });
    controller.abort();
    await expect(write).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(aborted.run.pendingStdinBytes).toBe(0);

    const killed = observe({ command: 'echo ready; sleep 1000' });
    await killed.waitFor('ready');
    const pending = killed.run.write(Buffer.alloc(1 << 20), WRITE);
    const kill = killed.run.kill();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
    await kill;
  });

  it('escalates at once when kill is repeated with SIGKILL', async () => {
    const observed = observe({ command: "trap '' TERM; echo ready; sleep 60", killGraceMs: 60_000 });
    await observed.waitFor('ready');
    void observed.run.kill();
    await observed.run.kill('SIGKILL');
    expect((await observed.ended).end).toMatchObject({ signal: 'SIGKILL' });
  });

  it('resolves kill at once after the end', async () => {
    const observed = observe({ command: 'true' });
    await observed.ended;
    await observed.run.kill();
    await expect(observed.run.kill('NOPE' as NodeJS.Signals)).rejects.toMatchObject({
      code: 'ERR_INVALID_INPUT',
    });
    expect(observed.endCalls()).toBe(1);
  });

  it('kills a grandchild left behind after the leader exited, resolving once it is dead', async () => {
    const observed = observe({ command: 'sleep 60 & echo $!' });
    const { end, output } = await observed.ended;
    expect(end).toMatchObject({ kind: 'exited', exitCode: 0 });
    const grandchild = Number.parseInt(output.toString(), 10);
    expect(isDead(grandchild)).toBe(false);
    await observed.run.kill('SIGKILL');
    expect(isDead(grandchild)).toBe(true);
    await observed.run.kill('SIGKILL');
  });

  /** How `newcomer` ends when this test ends it with SIGTERM: SIGKILL if something signalled it first. */
  async function endOf(newcomer: ChildProcess): Promise<NodeJS.Signals | null> {
    const exited = once(newcomer, 'exit');
    newcomer.kill('SIGTERM');
    const [, signal] = await exited;
    return signal as NodeJS.Signals | null;
  }

  it("never signals its group's id once the group is gone: another process may have it by then", async () => {
    // The leader alone: its group is gone when it exits.
    const alone = observe({ command: 'true' });
    await alone.ended;
    const first = await reusePid(alone.run.pid!);
    await alone.run.kill('SIGKILL');
    expect(await endOf(first)).toBe('SIGTERM');

    // A grandchild outlives the leader, then dies: the pid is free again.
    const left = observe({ command: 'sleep 60 & echo $!' });
    const grandchild = Number.parseInt((await left.ended).output.toString(), 10);
    process.kill(grandchild, 'SIGKILL');
    expect(await until(() => isDead(grandchild))).toBe(true);
    const second = await reusePid(left.run.pid!);
    await left.run.kill();
    await left.run.kill('SIGKILL');
    expect(await endOf(second)).toBe('SIGTERM');
  });

  it('reports a missing command as failed_start without throwing', async () => {
    const observed = observe({ command: ['vigil-no-such-command', '--flag'] });
    expect(observed.run.pid).toBeUndefined();
    expect(observed.run.running).toBe(false);
    const { end } = await observed.ended;
    expect(end).toEqual({ kind: 'failed_start', error: 'spawn vigil-no-such-command ENOENT' });
    await nextMacrotask();
    expect(observed.endCalls()).toBe(1);
    await expect(observed.run.write('x', WRITE)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
  });

  it('reports a missing cwd as failed_start naming the cwd', async () => {
    const observed = observe({ command: 'echo never', cwd: '/vigil/no/such/dir' });
    expect((await observed.ended).end).toEqual({
      kind: 'failed_start',
      error: 'cwd /vigil/no/such/dir does not exist',
    });
    await nextMacrotask();
    expect(observed.endCalls()).toBe(1);
  });

  it('reports a cwd that is a file as failed_start, asynchronously', async () => {
    const file = fileURLToPath(import.meta.url);
    const observed = observe({ command: ['true'], cwd: file });
    expect(observed.endCalls()).toBe(0);
    expect((await observed.ended).end).toEqual({
      kind: 'failed_start',
      error: `cwd ${file} is not a directory`,
    });
  });

  it('runs in cwd with env merged over process.env', async () => {
    const observed = observe({
      command: 'echo "$VIGIL_TEST_VAR:$(pwd):$HOME"',
      cwd: tmpdir(),
      env: { VIGIL_TEST_VAR: 'x' },
    });
    expect((await observed.ended).output.toString()).toBe(`x:${tmpdir()}:${process.env.HOME}\n`);
  });

  it("never lets a child inherit vigil's VIGIL_TOKEN, while an explicit env value is passed as given", async () => {
    const saved = process.env.VIGIL_TOKEN;
    process.env.VIGIL_TOKEN = 'secret-of-this-process';
    try {
      const inherited = observe({ command: 'echo "[$VIGIL_TOKEN]"' });
      const explicit = observe({ command: 'echo "[$VIGIL_TOKEN]"', env: { VIGIL_TOKEN: 'chosen' } });
      expect((await inherited.ended).output.toString()).toBe('[]\n');
      expect((await explicit.ended).output.toString()).toBe('[chosen]\n');
    } finally {
      if (saved === undefined) delete process.env.VIGIL_TOKEN;
      else process.env.VIGIL_TOKEN = saved;
    }
  });

  it('writes to stdin', async () => {
    const observed = observe({ command: ['head', '-n1'] });
    await observed.run.write('hello\nrest\n', WRITE);
    const { end, output } = await observed.ended;
    expect(end).toMatchObject({ kind: 'exited', exitCode: 0 });
    expect(output.toString()).toBe('hello\n');
  });

  it('closes stdin and then rejects writes with ERR_INVALID_INPUT', async () => {
    const observed = observe({ command: ['cat'] });
    await observed.run.write('a', WRITE);
    await observed.run.write(Buffer.from('b'), WRITE);
    observed.run.closeStdin();
    observed.run.closeStdin();
    await expect(observed.run.write('c', WRITE)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
    const { end, output } = await observed.ended;
    expect(end).toMatchObject({ kind: 'exited', exitCode: 0 });
    expect(output.toString()).toBe('ab');
    await expect(observed.run.write('d', WRITE)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' });
  });

  it('passes binary output through as bytes', async () => {
    const random = await observe({ command: ['head', '-c', '4096', '/dev/urandom'] }).ended;
    expect(random.output.length).toBe(4096);
    const exact = await observe({ command: ['printf', '\\377\\000\\200\\376\\n'] }).ended;
    expect([...exact.output]).toEqual([0xff, 0x00, 0x80, 0xfe, 0x0a]);
  });

  it('rejects invalid options with ERR_INVALID_INPUT', () => {
    const handlers = { onEnd() {} };
    expect(() => ChildRun.start({ command: '', killGraceMs: 10, output: 1 }, handlers)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT' }),
    );
    expect(() => ChildRun.start({ command: ['true'], killGraceMs: -1, output: 1 }, handlers)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT' }),
    );
    expect(() => ChildRun.start({ command: ['true'], killGraceMs: 1, output: -1 }, handlers)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_INPUT', message: expect.stringContaining('output') }),
    );
  });
});
