import type { IncomingMessage, ServerResponse } from 'node:http';
import { VigilError, type VigilErrorCode } from '@vigil/core';
import type { z } from 'zod';
import { emptySchema, parseJson, parseRequest } from './schemas.js';

// The tiny route table of the HTTP API: path patterns with `:params`, a strictly validated query and body.

export type Method = 'GET' | 'POST' | 'DELETE';

export interface Context<Q, B> {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Q;
  readonly body: B;
  /** Aborts when the client disconnects or the handler closes. */
  readonly signal: AbortSignal;
}

/** A JSON answer; `undefined` when the route answered by itself (the stream). */
export type Reply = { readonly status: number; readonly body?: unknown } | undefined;

/** A route with its types erased, as the table holds it. */
export interface Route {
  readonly method: Method;
  readonly segments: readonly string[];
  run(ctx: Context<Record<string, string>, undefined>, readText: () => Promise<string>): Promise<Reply>;
}

interface RouteSpec<Q, B> {
  readonly query?: z.ZodType<Q>;
  readonly body?: z.ZodType<B>;
  /** The body is optional and defaults to `{}`. */
  readonly optionalBody?: boolean;
  /** The error code of an invalid body, by its first offending field. Default `ERR_INVALID_INPUT`. */
  readonly bodyError?: (field: string) => VigilErrorCode;
}

/** One route: its query and body are validated (strictly) before `handle` runs. */
export function route<Q = Record<string, never>, B = undefined>(
  method: Method,
  path: string,
  spec: RouteSpec<Q, B>,
  handle: (ctx: Context<Q, B>) => Promise<Reply> | Reply,
): Route {
  return {
    method,
    segments: path.split('/').slice(1),
    async run(ctx, readText) {
      const query = parseRequest(spec.query ?? emptySchema, ctx.query, 'query') as Q;
      let body = undefined as B;
      if (spec.body !== undefined) {
        const json = parseJson(await readText(), spec.optionalBody ? {} : undefined);
        body = parseRequest(spec.body, json, 'body', spec.bodyError);
      }
      return handle({ ...ctx, query, body });
    },
  };
}

export const ok = (body: unknown): Reply => ({ status: 200, body });
export const created = (body: unknown): Reply => ({ status: 201, body });

/** Finds the route for a method and path: 404 for an unknown path, 405 (with `Allow`) for a wrong method. */
export function match(
  table: readonly Route[],
  method: string,
  segments: readonly string[],
): { route: Route; params: Record<string, string> } {
  const allowed: string[] = [];
  for (const candidate of table) {
    if (candidate.segments.length !== segments.length) continue;
    const params: Record<string, string> = Object.create(null);
    const fits = candidate.segments.every((part, i) => {
      const actual = segments[i] ?? '';
      if (part.startsWith(':')) {
        params[part.slice(1)] = actual;
        return actual !== '';
      }
      return part === actual;
    });
    if (!fits) continue;
    if (candidate.method === method) return { route: candidate, params };
    allowed.push(candidate.method);
  }
  if (allowed.length === 0) throw new VigilError('ERR_NOT_FOUND', 'No such route');
  throw new VigilError('ERR_METHOD_NOT_ALLOWED', `Method ${method} is not allowed here`, {
    details: { allow: allowed },
  });
}

/** The request target as a URL, or undefined when it cannot be parsed (`GET //[`). */
export function parseTarget(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://vigil.invalid');
  } catch {
    return undefined;
  }
}

/** The decoded segments of a path after the leading `/`; bad percent-encoding is `ERR_INVALID_INPUT`. */
export function pathSegments(pathname: string): string[] {
  try {
    return pathname.split('/').slice(1).map(decodeURIComponent);
  } catch {
    throw new VigilError('ERR_INVALID_INPUT', 'path: malformed percent-encoding', {
      details: { field: 'path' },
    });
  }
}

/** Answers with JSON (or no body, e.g. 204), unless the response already started or the client left. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  if (body === undefined) {
    res.writeHead(status, { 'cache-control': 'no-store', ...headers });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}
