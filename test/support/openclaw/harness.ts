/**
 * A real OpenClaw gateway with vigil installed, for the end-to-end test: openclaw on Node 24, both
 * installed from the npm registry into test/.cache/openclaw (every step works from empty npm and
 * pnpm caches; the folder only makes later runs faster). The built plugin is deployed as a
 * self-contained package (`pnpm deploy` with hoisted dependencies: OpenClaw's install scan refuses
 * node_modules symlinks that leave the plugin root, which pnpm's workspace links do), installed with
 * `openclaw plugins install --link`, and driven through `openclaw gateway run` and `openclaw agent`.
 * The model is a local OpenAI-compatible stub on 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killGroup, type RunResult, run } from './run.js';
import { type ChatRequest, type Reply, type StubModel, startStubModel } from './stub-model.js';

const NODE_VERSION = '24.21.0';
const OPENCLAW_VERSION = '2026.9.6';
const CACHE = fileURLToPath(new URL('../../.cache/openclaw/', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PLUGIN = join(ROOT, 'packages/gateway-plugin');

/** `npm install spec` into `dir`, unless an earlier run completed it (marked by `.complete`). */
async function npmInstall(dir: string, spec: string, env: NodeJS.ProcessEnv): Promise<void> {
  if (existsSync(join(dir, '.complete'))) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "private": true }\n');
  const args = ['install', spec, '--no-audit', '--no-fund', '--loglevel=error'];
  const result = await run('npm', args, { cwd: dir, env, timeoutMs: 480_000 });
  if (result.code !== 0) throw new Error(`npm install ${spec} failed:\n${result.err}`);
  writeFileSync(join(dir, '.complete'), `${new Date().toISOString()}\n`);
}

/** The README's install path: a self-contained copy of the built plugin with real (hoisted) dependencies. */
async function deployPlugin(stage: string): Promise<void> {
  if (!existsSync(join(PLUGIN, 'dist/openclaw/entry.js'))) throw new Error('build first: pnpm build');
  const deploy = [
    '--filter',
    '@vigil/gateway-plugin',
    'deploy',
    '--prod',
    '--legacy',
    '--config.node-linker=hoisted',
  ];
  // The pnpm that runs this test command (a fresh machine has no global pnpm), else npx's.
  const execPath = process.env.npm_execpath;
  const [pnpm, ...pnpmArgs] =
    execPath !== undefined && /pnpm/.test(execPath)
      ? [process.execPath, execPath]
      : ['npx', '-y', 'pnpm@10.34.8'];
  const deployed = await run(pnpm!, [...pnpmArgs, ...deploy, stage], {
    cwd: ROOT,
    env: process.env,
    timeoutMs: 120_000,
  });
  if (deployed.code !== 0) throw new Error(`pnpm deploy failed:\n${deployed.out}${deployed.err}`);
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** Where a scripted model reply can find the harness's files. */
export interface HarnessPaths {
  /** A file the test creates to let a scripted command finish. */
  readonly release: string;
  /** Another such file, for the command that outlives a crash of the gateway. */
  readonly releaseAdopted: string;
}

const harnessPaths = (home: string): HarnessPaths => ({
  release: join(home, 'release'),
  releaseAdopted: join(home, 'release-adopted'),
});

/**
 * One OpenClaw installation with vigil in a fresh home, a stub model and (once started) its gateway.
 * Disposing it kills the gateway's group and removes the home (unless `VIGIL_E2E_KEEP` is set).
 */
export class OpenClawHarness implements AsyncDisposable {
  readonly home: string;
  /** OpenClaw's Node (24), the one its plugins run on. */
  readonly node: string;
  /** The plugin's trace file (`VIGIL_OPENCLAW_LOG`). */
  readonly trace: string;
  readonly paths: HarnessPaths;
  /** Milliseconds since the harness was created, by step. */
  readonly timings: Record<string, number> = {};
  readonly #began: number;
  readonly #openclaw: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #port: number;
  readonly #stub: StubModel;
  #gateway: ChildProcess | undefined;

  private constructor(parts: {
    home: string;
    node: string;
    openclaw: string;
    env: NodeJS.ProcessEnv;
    port: number;
    stub: StubModel;
    began: number;
  }) {
    this.#began = parts.began;
    this.home = parts.home;
    this.trace = join(parts.home, 'vigil-trace.jsonl');
    this.paths = harnessPaths(parts.home);
    this.node = parts.node;
    this.#openclaw = parts.openclaw;
    this.#env = { ...parts.env, VIGIL_OPENCLAW_LOG: this.trace };
    this.#port = parts.port;
    this.#stub = parts.stub;
  }

  /**
   * Installs Node 24 and OpenClaw (or reuses the cache), deploys and installs the plugin, and
   * configures a gateway on a free loopback port whose model answers with `decide`.
   */
  static async create(decide: (body: ChatRequest, paths: HarnessPaths) => Reply): Promise<OpenClawHarness> {
    const began = Date.now();
    const nodeDir = join(CACHE, `node-${NODE_VERSION}`);
    const clawDir = join(CACHE, `openclaw-${OPENCLAW_VERSION}`);
    const node = join(nodeDir, 'node_modules/node/bin/node');
    const openclaw = join(clawDir, 'node_modules/openclaw/openclaw.mjs');
    await npmInstall(nodeDir, `node@${NODE_VERSION}`, process.env);
    const path = `${dirname(node)}:${process.env.PATH}`;
    await npmInstall(clawDir, `openclaw@${OPENCLAW_VERSION}`, { ...process.env, PATH: path });
    const home = mkdtempSync(join(tmpdir(), 'vigil-openclaw-'));
    const stage = join(home, 'vigil-plugin');
    const paths = harnessPaths(home);
    let stub: StubModel | undefined;
    try {
      // OpenClaw's Node has node:sqlite, so vigil's journal needs no build for it.
      await deployPlugin(stage);
      stub = await startStubModel((body) => decide(body, paths));
    } catch (error) {
      await stub?.[Symbol.asyncDispose]();
      rmSync(home, { recursive: true, force: true });
      throw error;
    }
    const state = join(home, '.openclaw');
    const {
      NODE_OPTIONS: _o,
      VITEST: _v,
      VITEST_POOL_ID: _p,
      VITEST_WORKER_ID: _w,
      ...inherited
    } = process.env;
    const env = {
      ...inherited,
      PATH: path,
      HOME: home,
      OPENCLAW_HOME: home,
      OPENCLAW_STATE_DIR: state,
      OPENCLAW_CONFIG_PATH: join(state, 'openclaw.json'),
      OPENCLAW_SKIP_CHANNELS: '1',
      OPENCLAW_DISABLE_BONJOUR: '1',
      OPENCLAW_NO_AUTO_UPDATE: '1',
      OPENCLAW_NO_RESPAWN: '1',
      NO_COLOR: '1',
    };
    const harness = new OpenClawHarness({ home, node, openclaw, env, port: await freePort(), stub, began });
    harness.mark('installed');
    try {
      const install = await harness.cli([
        'plugins',
        'install',
        '--link',
        stage,
        '--force',
        '--accept-capabilities',
      ]);
      if (install.code !== 0)
        throw new Error(`openclaw plugins install failed:\n${install.out}${install.err}`);
      harness.#configure(join(state, 'openclaw.json'));
    } catch (error) {
      await harness[Symbol.asyncDispose]();
      throw error;
    }
    harness.mark('set up');
    return harness;
  }

  /** The running gateway (after `startGateway`). */
  get gateway(): ChildProcess {
    if (this.#gateway === undefined) throw new Error('the gateway has not been started');
    return this.#gateway;
  }

  get model(): StubModel {
    return this.#stub;
  }

  mark(step: string): void {
    this.timings[step] = Date.now() - this.#began;
  }

  /** Runs an `openclaw` command. */
  cli(args: readonly string[]): Promise<RunResult> {
    return run(this.node, [this.#openclaw, ...args], { env: this.#env, timeoutMs: 120_000 });
  }

  /** One agent turn in the session with `key`. */
  agent(key: string, message: string): Promise<RunResult> {
    return this.cli(['agent', '--agent', 'main', '--session-key', key, '--message', message, '--json']);
  }

  /** Starts `openclaw gateway run` in its own process group and resolves once it is ready. */
  async startGateway(): Promise<ChildProcess> {
    const args = ['gateway', 'run', '--port', String(this.#port), '--auth', 'none', '--bind', 'loopback'];
    const child = spawn(this.node, [this.#openclaw, ...args], {
      env: this.#env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#gateway = child;
    let output = '';
    // Everything it prints, for a post-mortem (VIGIL_E2E_KEEP keeps the home).
    const log = join(this.home, 'gateway.log');
    await new Promise<void>((resolve, reject) => {
      const read = (chunk: Buffer) => {
        appendFileSync(log, chunk);
        output += chunk;
        if (/\[gateway\] ready/.test(output)) resolve();
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      child.once('exit', (code) =>
        reject(new Error(`the gateway exited (${code}) before it was ready:\n${output}`)),
      );
    });
    this.mark('gateway ready');
    return child;
  }

  /** Kills the gateway's process group with SIGKILL, as a crash would: no hook, no stop, no flush. */
  async crashGateway(): Promise<void> {
    const gateway = this.gateway;
    const exited = once(gateway, 'exit');
    killGroup(gateway.pid, 'SIGKILL');
    await exited;
    this.mark('gateway killed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const gateway = this.#gateway;
    if (gateway !== undefined && gateway.exitCode === null && gateway.signalCode === null) {
      const exited = once(gateway, 'exit');
      killGroup(gateway.pid, 'SIGKILL');
      await exited;
    }
    await this.#stub[Symbol.asyncDispose]();
    console.log(`openclaw e2e, ms since start: ${JSON.stringify(this.timings)}`);
    if (!process.env.VIGIL_E2E_KEEP) rmSync(this.home, { recursive: true, force: true });
  }

  /** vigil's config, the stub model as the only provider, and the gateway on loopback without auth. */
  #configure(file: string): void {
    const config = readJson<{ plugins: { entries: Record<string, object> } }>(file);
    config.plugins.entries.vigil = {
      ...config.plugins.entries.vigil,
      config: { processes: { killGraceMs: 1000 } },
    };
    const model = {
      id: 'stub-1',
      name: 'Stub',
      reasoning: false,
      input: ['text'],
      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
      contextWindow: 128_000,
      maxTokens: 4096,
    };
    Object.assign(config, {
      logging: { file: join(this.home, 'openclaw.log') },
      models: {
        mode: 'merge',
        providers: {
          stub: { baseUrl: this.#stub.url, apiKey: 'stub-key', api: 'openai-completions', models: [model] },
        },
      },
      agents: { defaults: { model: { primary: 'stub/stub-1' } } },
      gateway: { mode: 'local', bind: 'loopback', port: this.#port, auth: { mode: 'none' } },
      // As the README asks: OpenClaw's own `process` denied, so background commands go through vigil.
      tools: { toolSearch: false, deny: ['process'] },
    });
    writeFileSync(file, JSON.stringify(config, null, 2));
  }
}
