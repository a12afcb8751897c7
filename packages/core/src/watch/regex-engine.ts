import { setFlagsFromString } from 'node:v8';

/**
 * V8's linear-time regex engine (Node 20+), switched on process-wide: with these flags a regex
 * the engine accepts and that backtracks more than V8's threshold (50,000 backtracks) re-runs in
 * linear time, so it cannot get stuck; the `l` flag also becomes valid, which is how a pattern is
 * tested for the engine. The engine runs far slower than the backtracking one (about 16 MB/s
 * against several GB/s here), so patterns keep running on the fast engine until they run away.
 * Flags are process-wide and shared by every thread; setting them again is harmless.
 */
const FLAGS = [
  '--enable-experimental-regexp-engine',
  '--enable-experimental-regexp-engine-on-excessive-backtracks',
];

let available: boolean | undefined;

/** Switches the linear-time fallback on (once per process) and tells whether this Node has it. */
export function enableLinearEngine(): boolean {
  if (available === undefined) {
    if (!acceptsLinearFlag()) for (const flag of FLAGS) setFlagsFromString(flag);
    available = acceptsLinearFlag();
  }
  return available;
}

/**
 * Whether V8 can run `source` with `flags` in linear time: false for what needs backtracking
 * (backreferences, lookarounds, large counted repetitions) and, on Node 20, for the `i` and `u`
 * flags (`patterns.ts` runs most `i` patterns without the flag: `case-fold.ts`); false everywhere
 * when the engine is not enabled.
 */
export function runsInLinearTime(source: string, flags: string): boolean {
  try {
    new RegExp(source, `${flags}l`);
    return true;
  } catch {
    return false;
  }
}

function acceptsLinearFlag(): boolean {
  return runsInLinearTime('', '');
}
