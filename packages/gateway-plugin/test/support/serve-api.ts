import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVigil, type Vigil, type VigilOptions } from '@vigil/core';
import { apiClient, type Call } from '../../../../test/support/http.js';
import { createHttpHandler, type HttpHandler } from '../../src/http/handler.js';
import type { HttpApiOptions } from '../../src/http/options.js';

/** The HTTP API of a vigil on an ephemeral loopback port. Disposing it stops all of it. */
export interface ApiServer extends AsyncDisposable {
  readonly vigil: Vigil;
  readonly handler: HttpHandler;
  readonly port: number;
  readonly base: string;
  readonly token: string;
  readonly call: Call;
  /** Runs `cleanup` when the server is disposed, before the server itself stops (latest first). */
  defer(cleanup: () => Promise<void> | void): void;
}

/**
 * Serves the HTTP API for a new vigil (or the one `wrap` makes of it) with a fresh token. Disposing
 * it runs the deferred cleanups, then closes the streams, the connections, the server and the vigil.
 */
export async function serveApi(
  vigilOptions: VigilOptions = {},
  apiOptions: Omit<HttpApiOptions, 'token'> = {},
  wrap: (vigil: Vigil) => Vigil = (vigil) => vigil,
): Promise<ApiServer> {
  const vigil = createVigil(vigilOptions);
  const token = randomBytes(24).toString('base64url');
  const handler = createHttpHandler(wrap(vigil), { token, ...apiOptions });
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  const deferred: (() => Promise<void> | void)[] = [];
  return {
    vigil,
    handler,
    port,
    base,
    token,
    call: apiClient(base, token),
    defer: (cleanup) => void deferred.push(cleanup),
    async [Symbol.asyncDispose]() {
      for (const cleanup of deferred.splice(0).reverse()) await cleanup();
      await handler.close();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
      await vigil.close();
    },
  };
}
