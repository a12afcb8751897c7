import { readFileSync } from 'node:fs';
import { VigilError } from '@vigil/core';
import { type EmbeddedGateway, type GatewayHttpOptions, startGateway } from './gateway.js';
import { neutraliseControls } from './terminal-text.js';

export interface ServeOptions {
  readonly host?: string;
  readonly port?: number;
  readonly token?: string;
  /** A JSON file with vigil's configuration (the README's config table), and the gateway's under `http`. */
  readonly configFile?: string;
  readonly allowedHosts?: readonly string[];
  readonly corsOrigins?: readonly string[];
  readonly write?: (line: string) => void;
}

function readConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new VigilError('ERR_INVALID_CONFIG', `--config: cannot read ${file}`, { cause });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch (cause) {
    throw new VigilError('ERR_INVALID_CONFIG', `--config: ${file} is not a JSON object`, { cause });
  }
}

/** The config file's `http` key holds the gateway's HTTP options; every other key is vigil's config. */
function splitConfig({ http, ...config }: Record<string, unknown>): {
  config: Record<string, unknown>;
  http?: GatewayHttpOptions;
} {
  return http === undefined ? { config } : { config, http: http as GatewayHttpOptions };
}

/** `vigil serve`: the embedded gateway until SIGINT or SIGTERM. */
export async function serve(options: ServeOptions = {}): Promise<EmbeddedGateway> {
  const print = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  // Lines carry processes' output and clients' text: no control character reaches the terminal.
  const write = (line: string): void => print(neutraliseControls(line));
  const gateway = await startGateway({
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.configFile === undefined ? {} : splitConfig(readConfig(options.configFile))),
    ...(options.allowedHosts === undefined ? {} : { allowedHosts: options.allowedHosts }),
    ...(options.corsOrigins === undefined ? {} : { cors: { origins: [...options.corsOrigins] } }),
    onNotification: (sessionId, message) =>
      write(`[${sessionId}] ${message.text.replaceAll('\n', '\n    ')}`),
  });
  write(`vigil is serving on ${gateway.url}`);
  write(`  page:  ${gateway.url}/#token=${gateway.token}`);
  write(`  token: ${gateway.token}${process.env.VIGIL_TOKEN ? ' (from VIGIL_TOKEN)' : ''}`);
  write('  stop with Ctrl-C');
  const stop = (signal: string): void => {
    write(`${signal}: closing every session…`);
    gateway.close().then(
      () => write('stopped'),
      (error: unknown) => write(`stop failed: ${String(error)}`),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return gateway;
}
