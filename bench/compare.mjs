/**
 * Compares two benchmark results row by row: `node bench/compare.mjs <baseline.json> [current.json]`
 * (current defaults to results/latest.json). Prints each numeric row that both runs have, with
 * the ratio current / baseline and whether that is better or worse for the row's unit, and writes
 * the comparison to results/compare.json. Use it to check a change against the code before it:
 * run `pnpm bench` on both in the same session, on the same machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [baselinePath, currentPath = fileURLToPath(new URL('./results/latest.json', import.meta.url))] =
  process.argv.slice(2);
if (baselinePath === undefined) {
  console.error('usage: node bench/compare.mjs <baseline.json> [current.json]');
  process.exit(2);
}

/** Units where more is better; for every other unit (ms, µs, MB, threads, ...) less is better. */
const MORE_IS_BETTER = new Set(['/s', 'MB/s', 'events', 'calls', 'reads']);

const load = (path) => JSON.parse(readFileSync(path, 'utf8'));
const key = (row) => `${row.scenario}\u0000${row.host}\u0000${row.metric}`;
const baseline = load(baselinePath);
const current = load(currentPath);
const before = new Map(baseline.rows.map((row) => [key(row), row]));

const rows = [];
for (const row of current.rows) {
  const old = before.get(key(row));
  if (old === undefined || typeof row.value !== 'number' || typeof old.value !== 'number') continue;
  const ratio = old.value === 0 ? (row.value === 0 ? 1 : Number.POSITIVE_INFINITY) : row.value / old.value;
  const better = MORE_IS_BETTER.has(row.unit) ? ratio >= 1 : ratio <= 1;
  rows.push({
    scenario: row.scenario,
    host: row.host,
    metric: row.metric,
    unit: row.unit,
    baseline: old.value,
    current: row.value,
    ratio: Number.isFinite(ratio) ? Math.round(ratio * 100) / 100 : ratio,
    better,
  });
}

const line = (cells) => `| ${cells.join(' | ')} |`;
console.log(line(['scenario', 'host', 'metric', 'unit', 'baseline', 'current', 'ratio']));
console.log(line(Array(7).fill('---')));
for (const row of rows) {
  const ratio = `${row.ratio}${row.better ? '' : ' (worse)'}`;
  console.log(
    line([
      row.scenario,
      row.host,
      row.metric.replaceAll('|', '\\|'),
      row.unit,
      row.baseline,
      row.current,
      ratio,
    ]),
  );
}
console.log(`\n${rows.length} rows compared; baseline ${baseline.date}, current ${current.date}`);
writeFileSync(
  fileURLToPath(new URL('./results/compare.json', import.meta.url)),
  `${JSON.stringify({ baseline: baseline.date, current: current.date, rows }, null, 2)}\n`,
);
