#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';

const HELP = `vigil: background commands for agent gateways, with exactly-once notifications

Usage:
  vigil demo [--sessions N]   run the demo: sessions, their pollers on worker threads, clean shutdown
  vigil --help                show this help
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, sessions: { type: 'string' } },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined && !values.help ? 1 : 0;
  }
  if (command === 'demo') {
    const sessions = values.sessions === undefined ? 3 : Number(values.sessions);
    if (!Number.isInteger(sessions) || sessions < 1 || sessions > 1000) {
      process.stderr.write('vigil demo: --sessions must be an integer from 1 to 1000\n');
      return 2;
    }
    await runDemo({ sessions });
    return 0;
  }
  process.stderr.write(`vigil: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`vigil: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
