// The tests drive Debian's Chromium (browser tests) and Debian's redis-server (the Redis store and
// cluster tests). On a fresh machine (root, Debian), install what is missing; anywhere else, say
// what is missing instead of failing later with a vague launch error.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PACKAGES = [
  { binary: '/usr/bin/chromium', name: 'chromium', for: 'the browser tests' },
  { binary: '/usr/bin/redis-server', name: 'redis-server', for: 'the Redis tests' },
];

const missing = PACKAGES.filter((pkg) => !existsSync(pkg.binary));
if (missing.length === 0) process.exit(0);
if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
  for (const pkg of missing) {
    console.error(
      `${pkg.binary} is missing: install Debian's ${pkg.name} package (apt-get install ${pkg.name}) for ${pkg.for}`,
    );
  }
  process.exit(1);
}
const names = missing.map((pkg) => pkg.name);
console.log(`installing Debian ${names.join(', ')} for the tests (apt-get)…`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [
  ['update', '-qq'],
  ['install', '-y', '-qq', '--no-install-recommends', ...names],
]) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (result.status !== 0) {
    console.error(`apt-get ${args.join(' ')} failed with ${result.status}`);
    process.exit(1);
  }
}
