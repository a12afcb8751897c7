// Writes openclaw.plugin.json from the built packages: run `tsc -b packages/gateway-plugin` first.
// The configSchema is vigil's zod config as JSON Schema (test/openclaw.test.ts keeps them equal).
import { writeFileSync } from 'node:fs';
import { configSchema } from '@vigil/core';
import { z } from 'zod';
import entry, { OPENCLAW_TOOL_NAME } from '../dist/openclaw/entry.js';

/** vigil's config as JSON Schema (machine-independent: the thread defaults resolve at run time). */
function openClawConfigSchema() {
  return z.toJSONSchema(configSchema, { io: 'input' });
}

const manifest = {
  id: entry.id,
  name: entry.name,
  description: entry.description,
  activation: { onStartup: true },
  contracts: { tools: [OPENCLAW_TOOL_NAME] },
  configSchema: openClawConfigSchema(),
};

const file = new URL('../openclaw.plugin.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`wrote ${file.pathname}`);
