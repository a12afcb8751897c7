import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { apiClient } from './support/http.js';
import { isDead } from './support/proc.js';

const CLI = fileURLToPath(new URL('../packages/gateway-plugin/dist/cli/cli.js', import.meta.url));

function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const watchdog = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exited = once(child, 'exit').then(([code, signal]) => {
    clearTimeout(watchdog);
    return { code: code as number | null, signal: signal as string | null, out, err };
  });
  return { child, exited };
}

describe('vigil CLI', () => {
  it('runs the demo to completion, printing every notification as it arrives, and exits 0', async () => {
    const { exited } = run(['demo']);
    const { code, out, err } = await exited;
    expect({ code, err }).toEqual({ code: 0, err: '' });
    for (const step of ['[1/7]', '[2/7]', '[3/7]', '[4/7]', '[5/7]', '[6/7]', '[7/7]'])
      expect(out).toContain(step);
    expect(out).toContain('Watch pattern "READY" matched');
    expect(out).toContain('server READY on :8080');
    expect(out).toContain('Watch pattern /^error/i matched');
    expect(out).toContain('deployed');
    expect(out).toContain('exited with code 2');
    expect(out).toContain('killed by SIGTERM');
    expect(out).toMatch(/done: 3 watch matches and 5 completions delivered/);
    expect(out.indexOf('Watch pattern "READY"')).toBeLessThan(out.indexOf('[3/7]'));

    // Restart safety: the gateway killed with SIGKILL while the build runs and its match is pending.
    const lines = out.split('\n');
    const at = (prefix: string): number => lines.findIndex((line) => line.startsWith(prefix));
    const killed = at('      SIGKILL to the gateway');
    const restarted = at('      gateway started again');
    expect(killed).toBeGreaterThan(at('[6/7]'));
    expect(restarted).toBeGreaterThan(killed);
    expect(lines[restarted]).toMatch(/session "demo" restored, build proc_\w+ adopted \(running\)$/);
    // The pending match is delivered once, after the restart, then the adopted build's completion.
    const taken = lines.filter((line) => line.startsWith('  > [vigil] Watch pattern "compiling" matched'));
    expect(taken).toHaveLength(1);
    const match = lines.indexOf(taken[0]!);
    expect(match).toBeGreaterThan(restarted);
    const completion = lines.findIndex((line) =>
      /^ {2}> \[vigil\] Background process .*build 43.* exited with code 0/.test(line),
    );
    expect(completion).toBeGreaterThan(match);
    expect(out).toContain('the pending notification was delivered once');
    // Both gateway processes are gone, and so is the temporary state directory.
    for (const pid of out.matchAll(/\(pid (\d+)\)/g)) expect(isDead(Number(pid[1]))).toBe(true);
    const stateDir = /\(state: (\S+)\)/.exec(out)?.[1];
    expect(stateDir).toBeDefined();
    expect(existsSync(stateDir!)).toBe(false);
  });

  it('serves the API and the page on loopback, refuses requests without the token, and stops on SIGTERM', async () => {
    const token = 'a-test-token-that-is-long-enough';
    const { child, exited } = run(['serve', '--port', '0'], { VIGIL_TOKEN: token });
    const lines = createInterface({ input: child.stdout });
    let url = '';
    for await (const line of lines) {
      const found = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (found?.[1]) {
        url = found[1];
        break;
      }
    }
    expect(url).not.toBe('');
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/assets/app.js">');
    expect((await fetch(`${url}/v1/sessions`)).status).toBe(401);
    const authed = await fetch(`${url}/v1/sessions`, { headers: { authorization: `Bearer ${token}` } });
    expect(await authed.json()).toEqual({ sessions: [], next: null, total: 0 });
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });

  it('neutralises control characters from processes and commands in what serve prints', async () => {
    const token = 'a-test-token-that-is-long-enough';
    const { child, exited } = run(['serve', '--port', '0'], { VIGIL_TOKEN: token });
    let out = '';
    const printed = (match: (text: string) => boolean): Promise<string> =>
      new Promise((resolve) => {
        const onData = (chunk: Buffer): void => {
          out += chunk.toString();
          if (!match(out)) return;
          child.stdout.off('data', onData);
          resolve(out);
        };
        child.stdout.on('data', onData);
      });
    const url = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(
      await printed((text) => /serving on .*\n/.test(text)),
    )?.[1];
    const call = apiClient(url ?? '', token);
    await call('POST', '/v1/sessions', { body: { sessionId: 'tty' } });
    // The output sets the title, clears the screen, returns to the line start to fake a line, sends
    // a C1 CSI and a right-to-left override; the command itself carries a raw ESC.
    const command = `printf '\\033]0;pwned\\007\\033[2J\\rvigil is serving on http://evil\\n\\302\\233c\\342\\200\\256'; : \u001b[31m`;
    const { processId } = (await call('POST', '/v1/sessions/tty/processes', { body: { command } })).body;
    await printed((text) => text.includes(`processId "${processId}") for the full output.`));
    child.kill('SIGTERM');
    await exited;

    const hazards = [...out].filter((char) => {
      const code = char.charCodeAt(0);
      return (code < 0x20 && char !== '\n') || (code >= 0x7f && code <= 0x9f) || char === '\u202e';
    });
    expect(hazards).toEqual([]);
    // The output's escape sequences were stripped before it left vigil; what is left is escaped.
    expect(out).not.toContain('\\x1b]0;pwned');
    expect(out).toContain('\\x0dvigil is serving on http://evil\n    \\u202e');
    expect(out).toContain(': \\x1b[31m');
    // One line claims to serve: the real one. The fake stays inside the indented notification.
    const lines = out.split('\n');
    expect(lines.filter((line) => line.startsWith('vigil is serving on'))).toEqual([
      `vigil is serving on ${url}`,
    ]);
    expect(lines).toContain('    \\x0dvigil is serving on http://evil');
  });

  it('refuses at start a token that cannot travel in an Authorization: Bearer header, naming where it came from', async () => {
    const spaced = await run(['serve', '--port', '0'], { VIGIL_TOKEN: 'a token with spaces in it' }).exited;
    expect(spaced.code).toBe(1);
    expect(spaced.err).toContain('VIGIL_TOKEN: has a space at position 2');
    const accented = await run(['serve', '--port', '0', '--token', 'tökentökentökentöken']).exited;
    expect(accented.code).toBe(1);
    expect(accented.err).toContain('--token: has U+00F6 at position 2');
    const padding = await run(['serve', '--port', '0', '--token', `short${'='.repeat(20)}`]).exited;
    expect(padding.code).toBe(1);
    expect(padding.err).toContain('--token: must be at least 16 characters before any = padding, got 5');
    expect(`${spaced.out}${accented.out}${padding.out}`).not.toContain('serving on');
  });

  it('refuses at start a state directory it cannot use, naming --state-dir or VIGIL_STATE_DIR; the flag wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-cli-state-'));
    try {
      const file = join(dir, 'a-file');
      writeFileSync(file, '');
      const token = { VIGIL_TOKEN: 'a-test-token-that-is-long-enough' };
      const notDir = await run(['serve', '--port', '0', '--state-dir', file], token).exited;
      expect(notDir.code).toBe(1);
      expect(notDir.err).toBe(`vigil: --state-dir: ${file} is not a directory\n`);
      const under = await run(['serve', '--port', '0'], { ...token, VIGIL_STATE_DIR: join(file, 'state') })
        .exited;
      expect(under.code).toBe(1);
      expect(under.err).toBe(
        `vigil: VIGIL_STATE_DIR: cannot create the directory ${join(file, 'state')} (ENOTDIR)\n`,
      );
      const empty = await run(['serve', '--port', '0', '--state-dir', ''], token).exited;
      expect(empty.err).toBe('vigil: --state-dir: must be a directory path, got an empty string\n');
      expect(`${notDir.out}${under.out}${empty.out}`).not.toContain('serving on');

      // The flag wins over the variable, which alone would fail; a missing directory is created.
      const state = join(dir, 'state');
      const { child, exited } = run(['serve', '--port', '0', '--state-dir', state], {
        ...token,
        VIGIL_STATE_DIR: file,
      });
      for await (const line of createInterface({ input: child.stdout })) {
        if (line.startsWith('  state:')) {
          expect(line).toBe(`  state: ${state} (from --state-dir); 0 sessions restored`);
          break;
        }
      }
      expect(statSync(join(state, 'journal.db')).isFile()).toBe(true);
      child.kill('SIGTERM');
      expect((await exited).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints help with every serve flag and rejects unknown commands', async () => {
    const help = await run(['--help']).exited;
    for (const flag of [
      '--host',
      '--port',
      '--token',
      '--config',
      '--allowed-host',
      '--cors-origin',
      '--state-dir',
      '--stop-processes-on-exit',
    ]) {
      expect(help.out).toContain(flag);
    }
    const bad = await run(['launch']).exited;
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown command "launch"');
  });
});
