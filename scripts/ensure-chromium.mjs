// The browser tests drive Debian's Chromium. On a fresh machine (root, Debian), install it; anywhere
// else, say what is missing instead of failing later with a vague launch error.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CHROMIUM = '/usr/bin/chromium';
if (existsSync(CHROMIUM)) process.exit(0);
if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
  console.error(
    `${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium) for the browser tests`,
  );
  process.exit(1);
}
console.log('installing Debian chromium for the browser tests (apt-get)…');
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [
  ['update', '-qq'],
  ['install', '-y', '-qq', '--no-install-recommends', 'chromium'],
]) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (result.status !== 0) {
    console.error(`apt-get ${args.join(' ')} failed with ${result.status}`);
    process.exit(1);
  }
}
