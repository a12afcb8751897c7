import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { VigilError } from '@vigil/core';

/** Allowed `Host` header values (`host:port`, case-insensitive), or a predicate over the header. */
export type HostAllowlist = readonly string[] | ((host: string, req: IncomingMessage) => boolean);

/** CORS settings. Without them no CORS header is ever sent. */
export interface CorsOptions {
  /** Origins (`scheme://host[:port]`) allowed to call the API from a browser. */
  readonly origins: readonly string[];
}

/** The loopback names of the port the request arrived on: `127.0.0.1:<port>`, `localhost:<port>`, `[::1]:<port>`. */
export function loopbackHosts(port: number): string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
}

/**
 * Rejects a request whose `Host` header is missing or not allowed (DNS rebinding), with
 * `ERR_FORBIDDEN_HOST`. Without an allowlist, the loopback names of the local port are allowed.
 */
export function checkHost(req: IncomingMessage, allowed: HostAllowlist | undefined): void {
  const host = req.headers.host?.toLowerCase();
  if (host === undefined || host === '') {
    throw new VigilError('ERR_FORBIDDEN_HOST', 'Host: the header is required');
  }
  const ok =
    typeof allowed === 'function'
      ? allowed(host, req)
      : (allowed ?? loopbackHosts(req.socket.localPort ?? 0)).some((name) => name.toLowerCase() === host);
  if (!ok) throw new VigilError('ERR_FORBIDDEN_HOST', `Host: ${JSON.stringify(host)} is not an allowed host`);
}

/** What every response carries against clickjacking; the page merges `frame-ancestors` into its own policy. */
export const FRAME_DENIAL = "frame-ancestors 'none'";

/** Forbids framing of the response by any origin (CSP `frame-ancestors` and `X-Frame-Options`). */
export function denyFraming(res: ServerResponse): void {
  res.setHeader('content-security-policy', FRAME_DENIAL);
  res.setHeader('x-frame-options', 'DENY');
}

/** Compares bearer tokens in constant time (both sides hashed to equal length first). */
export class BearerCheck {
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = digest(token);
  }

  /**
   * Throws `ERR_UNAUTHORIZED` (with `WWW-Authenticate: Bearer`) unless the `Authorization` header
   * carries the token, or, when no header is sent, `fallback` (an `access_token` query value) does.
   */
  check(req: IncomingMessage, fallback?: string): void {
    const header = req.headers.authorization;
    let given: string | undefined;
    if (header !== undefined) given = /^Bearer +(\S+) *$/i.exec(header)?.[1];
    else given = fallback;
    if (given === undefined) {
      throw new VigilError('ERR_UNAUTHORIZED', 'Authorization: a bearer token is required');
    }
    if (!timingSafeEqual(digest(given), this.#digest)) {
      throw new VigilError('ERR_UNAUTHORIZED', 'Authorization: the bearer token is not valid', {
        details: { reason: 'invalid_token' },
      });
    }
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

const CORS_METHODS = 'GET, POST, DELETE, OPTIONS';
const CORS_HEADERS = 'authorization, content-type, last-event-id';

/**
 * Sets the CORS headers for an allowed `Origin` and answers a preflight with 204. Returns true
 * when the request was a preflight and has been answered. Does nothing without `cors`.
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, cors: CorsOptions | undefined): boolean {
  if (cors === undefined) return false;
  res.setHeader('vary', 'Origin');
  const origin = req.headers.origin;
  if (origin === undefined || !cors.origins.includes(origin)) return false;
  res.setHeader('access-control-allow-origin', origin);
  if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return false;
  res.writeHead(204, {
    'access-control-allow-methods': CORS_METHODS,
    'access-control-allow-headers': CORS_HEADERS,
    'access-control-max-age': '600',
  });
  res.end();
  return true;
}

/**
 * Reads a request body of at most `limit` bytes as UTF-8. A larger body (declared or sent) is
 * `ERR_BODY_TOO_LARGE`; the rest of it is discarded, and the connection closes after the answer.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = (): VigilError => new VigilError('ERR_BODY_TOO_LARGE', `body: larger than ${limit} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      chunks.length = 0;
      // Keep reading (and dropping) so the client can finish sending and read the 413.
      req.resume();
      reject(tooLarge());
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    // A client that disconnects mid-body ends the read (the response goes nowhere anyway).
    const onClose = (): void => onError(new Error('the client disconnected before sending the whole body'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
