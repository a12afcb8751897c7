#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';
import { serve } from './serve.js';

const HELP = `vigil: background commands for agent gateways, with exactly-once notifications

Usage:
  vigil serve [options]   run the embedded reference gateway: HTTP API, SSE stream, web page
  vigil demo              run the demo: a session with real commands, printing each notification
  vigil --help            show this help

Options of serve:
  --host <addr>           interface to bind (default 127.0.0.1: loopback only)
  --port <n>              port (default 7420; 0 picks a free one)
  --token <t>             bearer token (default: VIGIL_TOKEN, else a random one, printed at start);
                          prefer VIGIL_TOKEN: a command-line token shows in the process list
  --config <file.json>    vigil configuration as JSON (see the README's config table)
  --allowed-host <h:p>    also accept this Host header (repeatable; for a proxy or a name)
  --cors-origin <origin>  allow this browser origin (repeatable; default: no CORS)
  --state-dir <dir>       keep vigil's journal and output spools here (default: VIGIL_STATE_DIR,
                          else none: everything in memory); a restart on it restores the sessions
                          and adopts their running commands
  --stop-processes-on-exit
                          with a state directory, end every running command on stop anyway
                          (default: they run on, for the next start on the directory to adopt)
  --redis <url>           join a cluster of instances sharing this Redis (redis://host:port/db;
                          default: VIGIL_REDIS_URL, else none); all instances share one token
  --instance-id <id>      this instance's id in the cluster (default: a random one)
  --advertise-url <url>   the URL the other instances reach this one by (default: its own URL)
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      host: { type: 'string' },
      port: { type: 'string' },
      token: { type: 'string' },
      config: { type: 'string' },
      'allowed-host': { type: 'string', multiple: true },
      'cors-origin': { type: 'string', multiple: true },
      'state-dir': { type: 'string' },
      'stop-processes-on-exit': { type: 'boolean' },
      redis: { type: 'string' },
      'instance-id': { type: 'string' },
      'advertise-url': { type: 'string' },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined && !values.help ? 1 : 0;
  }
  if (command === 'demo') {
    await runDemo();
    return 0;
  }
  if (command === 'serve') {
    const port = values.port === undefined ? undefined : Number(values.port);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65_535)) {
      process.stderr.write('vigil serve: --port must be an integer from 0 to 65535\n');
      return 2;
    }
    await serve({
      ...(values.host === undefined ? {} : { host: values.host }),
      ...(port === undefined ? {} : { port }),
      ...(values.token === undefined ? {} : { token: values.token }),
      ...(values.config === undefined ? {} : { configFile: values.config }),
      ...(values['allowed-host'] === undefined ? {} : { allowedHosts: values['allowed-host'] }),
      ...(values['cors-origin'] === undefined ? {} : { corsOrigins: values['cors-origin'] }),
      ...(values['state-dir'] === undefined ? {} : { stateDir: values['state-dir'] }),
      ...(values['stop-processes-on-exit'] === true ? { stopProcessesOnExit: true } : {}),
      cluster: {
        redis: values.redis,
        instanceId: values['instance-id'],
        advertiseUrl: values['advertise-url'],
      },
    });
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
