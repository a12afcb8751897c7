/** Prints the rows as an aligned text table and a Markdown table, and writes them to results/latest.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const RESULTS = fileURLToPath(new URL('./results/latest.json', import.meta.url));
const COLUMNS = ['scenario', 'host', 'metric', 'value', 'unit', 'target', 'pass'];

/** @param {import('./lib/child.mjs').Row} row */
function cells(row) {
  const pass = row.pass === undefined ? '' : row.pass ? 'PASS' : 'FAIL';
  return [row.scenario, row.host, row.metric, String(row.value), row.unit, row.target ?? '', pass];
}

/** @param {import('./lib/child.mjs').Row[]} rows */
export function textTable(rows) {
  const table = [COLUMNS, ...rows.map(cells)];
  const widths = COLUMNS.map((_, c) => Math.max(...table.map((line) => line[c].length)));
  const numeric = (c) => c === 3;
  const format = (line) =>
    line
      .map((cell, c) => (numeric(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [format(COLUMNS), rule, ...rows.map((row) => format(cells(row)))].join('\n');
}

/** @param {import('./lib/child.mjs').Row[]} rows */
export function markdownTable(rows) {
  const escapePipes = (cell) => cell.replaceAll('|', '\\|');
  const line = (values) => `| ${values.map(escapePipes).join(' | ')} |`;
  return [line(COLUMNS), line(COLUMNS.map(() => '---')), ...rows.map((row) => line(cells(row)))].join('\n');
}

/** The machine the numbers were measured on. */
export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    totalMemoryMb: Math.round(os.totalmem() / (1024 * 1024)),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/**
 * Prints both tables and writes the JSON results file; returns its path.
 * @param {import('./lib/child.mjs').Row[]} rows
 * @param {{ quick: boolean, scenarios: string[], durationMs: number, errors: string[] }} run
 */
export function report(rows, run) {
  console.log(textTable(rows));
  console.log(`\n${markdownTable(rows)}\n`);
  const misses = rows.filter((row) => row.pass === false);
  console.log(`${rows.length} rows, ${misses.length} below target, ${(run.durationMs / 1000).toFixed(1)} s`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const results = { date: new Date().toISOString(), machine: machine(), ...run, rows };
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`results: ${RESULTS}`);
  return RESULTS;
}
