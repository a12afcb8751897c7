// `pnpm test:stress`: every race test (declared with raceIt) 50 times in one vitest process.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const repeats = process.env.VIGIL_STRESS ?? '50';

function* testFiles(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* testFiles(path);
    else if (name.endsWith('.test.ts')) yield path;
  }
}

const files = [...testFiles('packages'), ...testFiles('test')].filter((file) =>
  readFileSync(file, 'utf8').includes('raceIt('),
);
console.log(`stress: ${files.length} files with race tests, each race test x${repeats}`);
const result = spawnSync('npx', ['vitest', 'run', '--reporter=dot', ...files], {
  stdio: 'inherit',
  env: { ...process.env, VIGIL_STRESS: repeats },
});
process.exit(result.status ?? 1);
