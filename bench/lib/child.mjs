/**
 * Each host is measured in a fresh child process so that RSS, threads and ports of one host do not
 * pollute the next. A scenario file is both the parent-side `run()` and the child's entry point.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MARK = '@@bench-rows ';
/** A child that takes longer than this (unless its scenario gives its own bound) is killed and the run fails. */
const CHILD_TIMEOUT_MS = 170_000;
/** After reporting, a child must exit on its own (every vigil closed) within this. */
const EXIT_GRACE_MS = 10_000;

/**
 * @typedef {{ op: '>=' | '<=' | '<' | '==', value: number | string }} Target
 * @typedef {{ scenario: string, host: string, metric: string, value: number | string, unit: string, target?: string, pass?: boolean }} Row
 */

/**
 * One measured value; `pass` is computed when a target is given.
 * @param {string} metric @param {number | string} value @param {string} unit @param {Target} [target]
 */
export function metric(metric, value, unit, target) {
  if (target === undefined) return { metric, value, unit };
  const { op, value: goal } = target;
  const pass =
    op === '==' ? value === goal : op === '>=' ? value >= goal : op === '<=' ? value <= goal : value < goal;
  return { metric, value, unit, target: `${op} ${goal}`, pass };
}

/** Parses the child's argv: `--host <name> [--quick]`. */
function childArgs() {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--host');
  return { host: at >= 0 ? argv[at + 1] : undefined, quick: argv.includes('--quick') };
}

/**
 * When `moduleUrl` is the process's entry script, measures the host named on the command line and
 * prints its rows for the parent.
 * @param {string} moduleUrl @param {string} scenario
 * @param {(host: string, opts: { quick: boolean }) => Promise<ReturnType<typeof metric>[]>} measure
 */
export function childMain(moduleUrl, scenario, measure) {
  if (process.argv[1] !== fileURLToPath(moduleUrl)) return;
  const { host, quick } = childArgs();
  if (host === undefined) {
    console.error(`usage: node --expose-gc ${process.argv[1]} --host <name> [--quick]`);
    process.exitCode = 2;
    return;
  }
  measure(host, { quick }).then(
    (metrics) => {
      const rows = metrics.map((m) => ({ scenario, host, ...m }));
      process.stdout.write(`${MARK}${JSON.stringify(rows)}\n`);
    },
    (error) => {
      console.error(`[${scenario} / ${host}]`, error);
      process.exitCode = 1;
    },
  );
}

/**
 * Measures `host` in a fresh `node --expose-gc <scenario file>` and resolves with its rows.
 * @param {string} moduleUrl @param {string} host @param {boolean} quick @returns {Promise<Row[]>}
 */
export function runChild(moduleUrl, host, quick, timeoutMs = CHILD_TIMEOUT_MS) {
  const file = fileURLToPath(moduleUrl);
  const args = ['--expose-gc', file, '--host', host, ...(quick ? ['--quick'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let rows;
  let failure;
  const kill = (why) => {
    failure ??= why;
    child.kill('SIGKILL');
  };
  let timer = setTimeout(() => kill(`timed out after ${timeoutMs} ms`), timeoutMs);
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    out += chunk;
    const line = out.split('\n').find((l) => l.startsWith(MARK));
    if (line === undefined || rows !== undefined) return;
    rows = JSON.parse(line.slice(MARK.length));
    clearTimeout(timer);
    timer = setTimeout(() => kill(`did not exit on its own within ${EXIT_GRACE_MS} ms`), EXIT_GRACE_MS);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const name = `${file} --host '${host}'`;
      if (failure !== undefined) reject(new Error(`${name}: ${failure}`));
      else if (code !== 0) reject(new Error(`${name}: exited with ${code ?? signal}`));
      else if (rows === undefined) reject(new Error(`${name}: reported no rows`));
      else resolve(rows);
    });
  });
}

/**
 * Parent side of a scenario: each host in turn, each in its own child. `fixed` rows stand in for
 * hosts that cannot be measured (no child is started for them).
 * @param {string} moduleUrl @param {string} scenario @param {string[]} hosts @param {{ quick: boolean }} opts
 * @param {Record<string, ReturnType<typeof metric>[]>} [fixed] @param {number} [timeoutMs] bound per child
 */
export async function runHosts(moduleUrl, scenario, hosts, { quick }, fixed = {}, timeoutMs = undefined) {
  const rows = [];
  for (const host of hosts) {
    const started = Date.now();
    if (fixed[host] !== undefined) {
      rows.push(...fixed[host].map((m) => ({ scenario, host, ...m })));
      continue;
    }
    process.stderr.write(`  ${scenario} / ${host} ... `);
    rows.push(...(await runChild(moduleUrl, host, quick, timeoutMs)));
    process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
  return rows;
}
