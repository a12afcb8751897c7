import { readFileSync } from 'node:fs';
import { configSchema, ERROR_CODES } from '@vigil/core';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';

const root = new URL('../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');

function leafKeys(schema: z.ZodType, prefix = ''): string[] {
  const def = (
    schema as {
      _zod: {
        def: { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; in?: z.ZodType };
      };
    }
  )._zod.def;
  if (def.type === 'default' || def.type === 'prefault' || def.type === 'optional') {
    return leafKeys(def.innerType as z.ZodType, prefix);
  }
  if (def.type === 'pipe') return leafKeys(def.in as z.ZodType, prefix);
  if (def.type === 'object' && def.shape) {
    return Object.entries(def.shape).flatMap(([key, value]) =>
      leafKeys(value, prefix ? `${prefix}.${key}` : key),
    );
  }
  return [prefix];
}

describe('README', () => {
  it('documents every configuration key in the config table', () => {
    const keys = leafKeys(configSchema);
    expect(keys.length).toBeGreaterThan(30);
    const cells = new Set([...readme.matchAll(/^\|\s*`([^`]+)`\s*\|/gm)].map((match) => match[1]));
    const missing = keys.filter((key) => !cells.has(key));
    expect(missing).toEqual([]);
  });

  it('lists every error code with its HTTP status in the error table', () => {
    const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('## Installing vigil'));
    const rows = [...section.matchAll(/^\|(.+)\|(.+)\|(.+)\|$/gm)].map(([, codes, statuses]) => ({
      codes: [...(codes ?? '').matchAll(/`(ERR_[A-Z_]+)`/g)].map((match) => match[1]),
      statuses: (statuses ?? '').split(',').map((status) => Number(status.trim())),
    }));
    for (const [code, status] of Object.entries(ERROR_CODES)) {
      const row = rows.find((candidate) => candidate.codes.includes(code));
      expect(row, code).toBeDefined();
      const at = row!.codes.indexOf(code);
      expect(row!.statuses[Math.min(at, row!.statuses.length - 1)], code).toBe(status);
    }
  });

  it('has a test command that .ci/run runs verbatim', () => {
    const ci = readFileSync(new URL('.ci/run', root), 'utf8');
    const commands = [...readme.matchAll(/```sh\n(.+)\n```/g)].map((match) => match[1]);
    const testCommand = commands.find((command) => command?.endsWith(' test'));
    expect(testCommand).toBeDefined();
    expect(ci.split('\n')).toContain(testCommand);
  });
});
