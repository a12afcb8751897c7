/**
 * vigil benchmarks. Usage: node --expose-gc bench/run.mjs [--quick] [churn] [scale] [hung-close]
 * [latency] [throughput] [flood] [finished] [delivery] [tape] [http] [tenants] [stalled-sse] [page]
 * [spawn] [soak] [journal] [redis] [cluster]
 * (no scenario names: all of them). Each host is measured in its own child process; the run exits
 * non-zero if any child fails. Build first (`pnpm bench` does).
 */
import { report } from './report.mjs';
import * as churn from './scenarios/churn.mjs';
import * as cluster from './scenarios/cluster.mjs';
import * as delivery from './scenarios/delivery.mjs';
import * as finished from './scenarios/finished.mjs';
import * as flood from './scenarios/flood.mjs';
import * as http from './scenarios/http.mjs';
import * as hungClose from './scenarios/hung-close.mjs';
import * as journal from './scenarios/journal.mjs';
import * as latency from './scenarios/latency.mjs';
import * as page from './scenarios/page.mjs';
import * as redis from './scenarios/redis.mjs';
import * as scale from './scenarios/scale.mjs';
import * as soak from './scenarios/soak.mjs';
import * as spawn from './scenarios/spawn.mjs';
import * as stalledSse from './scenarios/stalled-sse.mjs';
import * as tape from './scenarios/tape.mjs';
import * as tenants from './scenarios/tenants.mjs';
import * as throughput from './scenarios/throughput.mjs';

const SCENARIOS = {
  churn,
  scale,
  'hung-close': hungClose,
  latency,
  throughput,
  flood,
  finished,
  delivery,
  tape,
  http,
  tenants,
  'stalled-sse': stalledSse,
  page,
  spawn,
  soak,
  journal,
  redis,
  cluster,
};

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const names = args.filter((arg) => !arg.startsWith('--'));
const unknown = names.filter((name) => !(name in SCENARIOS));
if (unknown.length > 0) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
const chosen = names.length > 0 ? names : Object.keys(SCENARIOS);

const started = Date.now();
const rows = [];
const errors = [];
for (const name of chosen) {
  console.error(`${name}${quick ? ' (quick)' : ''}`);
  try {
    rows.push(...(await SCENARIOS[name].run({ quick })));
  } catch (error) {
    console.error(`\n${name} failed: ${error instanceof Error ? error.message : error}`);
    errors.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
report(rows, { quick, scenarios: chosen, durationMs: Date.now() - started, errors });
if (errors.length > 0) {
  console.error(`${errors.length} scenario(s) failed:\n  ${errors.join('\n  ')}`);
  process.exitCode = 1;
}
