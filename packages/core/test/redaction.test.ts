import { describe, expect, test } from 'vitest';
import { parseConfig } from '../src/config.js';
import { stripAnsi } from '../src/secrets/ansi.js';
import { EnvScrub } from '../src/secrets/child-env.js';
import { lastChars, REDACTED, Redactor } from '../src/secrets/redactor.js';
import { DEFAULT_ENV_DENY, DEFAULT_REDACT_PATTERNS, instanceSecrets } from '../src/secrets/secrets-config.js';
import { enableLinearEngine, runsInLinearTime } from '../src/watch/regex-engine.js';

const ESC = '\u001b';

describe('stripAnsi', () => {
  test.each([
    ['colours (CSI)', `${ESC}[1;31merror${ESC}[0m: x`, 'error: x'],
    ['a private mode and a cursor move', `${ESC}[?25l${ESC}[2Kdone${ESC}[?25h`, 'done'],
    ['the 8-bit CSI', '\u009b31mred', 'red'],
    ['a title (OSC) ended by BEL', `${ESC}]0;title\u0007text`, 'text'],
    ['a hyperlink (OSC) ended by ST', `${ESC}]8;;http://x${ESC}\\link${ESC}]8;;${ESC}\\`, 'link'],
    ['a charset escape', `${ESC}(Btext`, 'text'],
    ['a lone ESC at the end', `text${ESC}`, 'text'],
    ['an unterminated OSC: to the end of its line only', `a${ESC}]0;open\nnext`, 'a\nnext'],
  ])('removes %s', (_what, input, output) => {
    expect(stripAnsi(input)).toBe(output);
  });

  test('keeps every newline, so lines stay where they were', () => {
    const text = `${ESC}[31mone\n${ESC}[0mtwo\n${ESC}]0;t\nthree\n`;
    expect(stripAnsi(text).split('\n')).toHaveLength(text.split('\n').length);
  });

  test('returns the same string when there is nothing to strip', () => {
    const text = 'plain text, ünïcode\n';
    expect(stripAnsi(text)).toBe(text);
  });
});

describe('Redactor', () => {
  test('replaces values, the longest first, and pattern matches', () => {
    const redactor = new Redactor({
      patterns: ['\\bid-[0-9]{4}\\b'],
      values: ['abcdefgh', 'abcdefgh-longer'],
    });
    expect(redactor.redact('x=abcdefgh-longer y=abcdefgh z=id-1234')).toBe(
      `x=${REDACTED} y=${REDACTED} z=${REDACTED}`,
    );
  });

  test('never fills a text with markers for a pattern that matches nothing there', () => {
    const redactor = new Redactor({ patterns: ['\\b'], values: [] });
    expect(redactor.redact('two words')).toBe('two words');
  });

  test('visible strips escapes, then redacts; with ansi it keeps them unless they split a secret', () => {
    const redactor = new Redactor({ patterns: [], values: ['s3cret-value'] });
    expect(redactor.visible(`${ESC}[1ms3cret-value${ESC}[0m`)).toBe(REDACTED);
    expect(redactor.visible(`${ESC}[1ms3cret-value${ESC}[0m`, { ansi: true })).toBe(
      `${ESC}[1m${REDACTED}${ESC}[0m`,
    );
    expect(redactor.visible(`s3cret${ESC}[1m-value`, { ansi: true })).toBe(REDACTED);
  });

  test('tail cuts after redacting, on code points', () => {
    const redactor = new Redactor({ patterns: [], values: ['0123456789'] });
    expect(redactor.tail('a 0123456789 b', 13)).toBe(` ${REDACTED} b`);
    expect(lastChars('x😀y', 2)).toBe('😀y');
  });
});

describe('the default redaction patterns', () => {
  const redactor = new Redactor({ patterns: DEFAULT_REDACT_PATTERNS, values: [] });

  test('each runs in linear time', () => {
    expect(enableLinearEngine()).toBe(true);
    for (const source of DEFAULT_REDACT_PATTERNS) expect(runsInLinearTime(source, '')).toBe(true);
  });

  test.each([
    'sk-proj-AbCdEfGhIjKlMnOpQrStUvWx',
    'sk-ant-api03-abcdefghijklmnopqrstuvwxyz',
    `ghp_${'a'.repeat(36)}`,
    'github_pat_11ABCDEFG0123456789_abcdefghijkl',
    'xoxb-1234567890-abcdefghij',
    'AKIAIOSFODNN7EXAMPLE',
    `AIza${'B'.repeat(35)}`,
    'sk_live_abcdefghij0123',
    `hf_${'c'.repeat(34)}`,
    'Bearer abcdefghijklmnopqrstuvwxyz.0123456789',
    'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  ])('redact %s', (secret) => {
    expect(redactor.redact(`before ${secret} after`)).toBe(`before ${REDACTED} after`);
  });

  test.each([
    'PATH=/usr/local/bin:/usr/bin',
    'task-runner-with-a-long-name finished',
    'Bearer authentication failed',
    'sk-short',
    'npm install eslint-plugin-import',
  ])('leave %s alone', (text) => {
    expect(redactor.redact(text)).toBe(text);
  });
});

describe('EnvScrub', () => {
  const scrub = new EnvScrub(DEFAULT_ENV_DENY);

  test.each(['VIGIL_TOKEN', 'GITHUB_TOKEN', 'openai_api_key', 'AWS_SECRET_ACCESS_KEY', 'DB_PASSWORD'])(
    'denies %s',
    (name) => {
      expect(scrub.denies(name)).toBe(true);
    },
  );

  test.each(['PATH', 'HOME', 'USER', 'SHELL', 'LANG', 'TERM', 'SSH_AUTH_SOCK', 'TOKENIZERS_PARALLELISM'])(
    'keeps %s',
    (name) => {
      expect(scrub.denies(name)).toBe(false);
    },
  );

  test('denies VIGIL_TOKEN with an empty list; its value and the denied values of 8+ characters are secrets', () => {
    expect(new EnvScrub([]).denies('VIGIL_TOKEN')).toBe(true);
    const config = parseConfig({ secrets: { values: ['configured-1'] } });
    const { rules } = instanceSecrets(config.secrets, {
      VIGIL_TOKEN: 'vigil-token-value',
      SHORT_TOKEN: 'short',
      HOME: '/home/someone',
    });
    expect(rules.values).toEqual(['configured-1', 'vigil-token-value']);
  });
});
