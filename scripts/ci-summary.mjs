// Prints `N passed, N failed` from vitest's JSON report. A run that failed before vitest
// (install, lint, type check) wrote no report and counts as one failure.
import { existsSync, readFileSync } from 'node:fs';

const [reportPath = '.vitest-report.json', status = '0'] = process.argv.slice(2);
let passed = 0;
let failed = 0;
if (existsSync(reportPath)) {
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  passed = report.numPassedTests ?? 0;
  failed = (report.numFailedTests ?? 0) + (report.numFailedTestSuites ?? 0);
  const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  if (skipped > 0) console.log(`ci: ${skipped} skipped or todo tests`);
}
if (failed === 0 && status !== '0') failed = 1;
console.log(`${passed} passed, ${failed} failed`);
