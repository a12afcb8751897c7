import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Vigil } from '@vigil/core';
import { createHttpHandler, type HttpHandler } from '../../src/http/handler.js';
import type { HttpApiOptions } from '../../src/http/options.js';

export type Cleanup = () => Promise<void> | void;

/**
 * Serves the HTTP API for `vigil` on an ephemeral loopback port with a fresh token. Registers the
 * teardown (streams first, then connections, then the server) in `cleanups`.
 */
export async function serveApi(
  vigil: Vigil,
  apiOptions: Omit<HttpApiOptions, 'token'>,
  cleanups: Cleanup[],
): Promise<{ handler: HttpHandler; base: string; token: string }> {
  const token = randomBytes(24).toString('base64url');
  const handler = createHttpHandler(vigil, { token, ...apiOptions });
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    await handler.close();
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  return { handler, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token };
}
