import { readFileSync } from 'node:fs';
import { SURVIVOR_LIMIT_MS, VigilError } from '@vigil/core';
import { displayUrl } from '@vigil/core/redis';
import { bearerTokenProblem } from '../http/bearer-token.js';
import { type ClusterFlags, chooseCluster } from './cluster-flags.js';
import { type EmbeddedGateway, type GatewayHttpOptions, startGateway } from './gateway.js';
import { chooseStateDir, type StateDirChoice } from './state-dir.js';
import { neutraliseControls } from './terminal-text.js';

export interface ServeOptions {
  readonly host?: string;
  readonly port?: number;
  readonly token?: string;
  /** A JSON file with vigil's configuration (the README's config table), and the gateway's under `http`. */
  readonly configFile?: string;
  readonly allowedHosts?: readonly string[];
  readonly corsOrigins?: readonly string[];
  /** `--state-dir`: vigil's journal and spools (G16); default `VIGIL_STATE_DIR`, else none (in memory). */
  readonly stateDir?: string;
  /** With a state directory, a stop still ends every command (as without one) instead of leaving them to the next start. */
  readonly stopProcessesOnExit?: boolean;
  /** `--redis`, `--instance-id`, `--advertise-url`: join a cluster (default `VIGIL_REDIS_URL`, else none). */
  readonly cluster?: ClusterFlags;
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

/**
 * The config file's `http` key holds the gateway's HTTP options; every other key is vigil's config.
 * A state directory from the command line or the environment wins over the file's `stateDir`.
 */
function splitConfig(
  { http, ...config }: Record<string, unknown>,
  stateDir: StateDirChoice | undefined,
): { config: Record<string, unknown>; http?: GatewayHttpOptions } {
  const withState = stateDir === undefined ? config : { ...config, stateDir: stateDir.path };
  return http === undefined ? { config: withState } : { config: withState, http: http as GatewayHttpOptions };
}

/** Beyond every bound of a stop, how long `vigil serve` waits before it exits anyway. */
const LAST_RESORT_MARGIN_MS = 5_000;

/** The signals that stop `vigil serve`: Ctrl-C, `kill`, and the terminal that runs it closing. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * `vigil serve`: the embedded gateway until SIGINT, SIGTERM or SIGHUP. Without a state directory
 * (or with `stopProcessesOnExit`) each closes every session (every process group ended within
 * `shutdownTimeoutMs`, G17), then exits; a second signal hurries the stop (SIGKILL at once) but
 * never skips it. With a state directory the stop is restart-safe: deliveries settle, the journal
 * stays as it is and the commands run on, for the next `vigil serve` on the directory to adopt
 * (G16). A fatal error stops the same way as a signal, then exits 1.
 */
export async function serve(options: ServeOptions = {}): Promise<EmbeddedGateway> {
  const print = options.write ?? writeLine;
  // Lines carry processes' output and clients' text: no control character reaches the terminal.
  const write = (line: string): void => print(neutraliseControls(line));
  const problem = options.token === undefined ? undefined : bearerTokenProblem(options.token);
  if (problem !== undefined) {
    throw new VigilError('ERR_INVALID_CONFIG', `--token: ${problem}`, { details: { field: 'token' } });
  }
  const stateDir = chooseStateDir(options.stateDir, process.env.VIGIL_STATE_DIR);
  const cluster = chooseCluster(options.cluster ?? {}, process.env.VIGIL_REDIS_URL);
  const gateway = await startGateway({
    ...(cluster === undefined ? {} : { cluster }),
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...splitConfig(options.configFile === undefined ? {} : readConfig(options.configFile), stateDir),
    ...(options.allowedHosts === undefined ? {} : { allowedHosts: options.allowedHosts }),
    ...(options.corsOrigins === undefined ? {} : { cors: { origins: [...options.corsOrigins] } }),
    onNotification: (sessionId, message) =>
      write(`[${sessionId}] ${message.text.replaceAll('\n', '\n    ')}`),
  });
  // The directory in effect (also when it came from the config file's `stateDir`).
  const state = gateway.plugin.vigil.config.stateDir;
  const keepProcesses = state !== undefined && options.stopProcessesOnExit !== true;
  // Before the first line: whoever reads that it serves may signal it at once.
  stopOnSignals(gateway, write, keepProcesses);
  write(`vigil is serving on ${gateway.url}`);
  write(`  page:  ${gateway.url}/#token=${gateway.token}`);
  write(`  token: ${gateway.token}${process.env.VIGIL_TOKEN ? ' (from VIGIL_TOKEN)' : ''}`);
  if (state !== undefined) {
    const from = stateDir === undefined ? '' : ` (from ${stateDir.from})`;
    const count = gateway.restored.length;
    write(`  state: ${state}${from}; ${count} session${count === 1 ? '' : 's'} restored`);
  }
  gateway.plugin.vigil.on('session:restored', ({ sessionId }) =>
    write(`[${sessionId}] taken over: its instance is gone; continued here`),
  );
  if (cluster !== undefined) {
    const advertised = cluster.advertiseUrl ?? gateway.url;
    write(
      `  cluster: instance ${gateway.instanceId} on ${displayUrl(cluster.url)}, reached at ${advertised}`,
    );
  }
  write(
    keepProcesses
      ? '  stop with Ctrl-C: running commands go on, and the next start on this state directory adopts them'
      : '  stop with Ctrl-C: every running command is ended',
  );
  return gateway;
}

/**
 * Installs the stops. Listeners stay installed (`on`, not `once`): Node's default action for a
 * repeated signal would exit at once and leave the process groups running.
 */
function stopOnSignals(
  gateway: EmbeddedGateway,
  write: (line: string) => void,
  keepProcesses: boolean,
): void {
  let stopping = false;
  let exitCode = 0;
  const stop = (why: string, code: number): void => {
    exitCode = Math.max(exitCode, code);
    if (stopping) {
      write(keepProcesses ? `${why}: stopping now` : `${why}: ending every process now`);
      gateway.close({ force: true }).catch((error: unknown) => write(`stop failed: ${String(error)}`));
      return;
    }
    stopping = true;
    write(
      keepProcesses
        ? `${why}: stopping; running commands go on for the next start…`
        : `${why}: closing every session…`,
    );
    // The last resort: a stop that outlasts every bound it has (the graceful close, the SIGKILL of
    // what is left, the wait for its survivors) exits anyway.
    const { shutdownTimeoutMs, processes } = gateway.plugin.vigil.config;
    setTimeout(
      () => {
        write('stop overran its time: exiting now');
        process.exit(1);
      },
      shutdownTimeoutMs + processes.killGraceMs + SURVIVOR_LIMIT_MS + LAST_RESORT_MARGIN_MS,
    ).unref();
    gateway
      .close({ keepProcesses })
      .then(
        () => write('stopped'),
        (error: unknown) => {
          exitCode = 1;
          write(`stop failed: ${String(error)}`);
        },
      )
      .finally(() => process.exit(exitCode));
  };
  for (const signal of STOP_SIGNALS) process.on(signal, () => stop(signal, 0));
  process.on('uncaughtException', (error) => stop(`fatal error: ${error.stack ?? String(error)}`, 1));
  process.on('unhandledRejection', (reason) =>
    stop(`fatal error (unhandled rejection): ${String(reason)}`, 1),
  );
}

/** Prints to stdout, which may be gone (SIGHUP: the terminal closed); that must not become a fatal error. */
function writeLine(line: string): void {
  if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', () => undefined);
  try {
    process.stdout.write(`${line}\n`);
  } catch {
    // EIO or EPIPE: nobody reads any more.
  }
}
