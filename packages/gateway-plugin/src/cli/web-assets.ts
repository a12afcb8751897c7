import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FRAME_DENIAL } from '../http/security.js';

const WEB = new URL('../../web/', import.meta.url);
const SCRIPT = 'text/javascript; charset=utf-8';
const FILES: Readonly<Record<string, readonly [file: string, type: string]>> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/assets/app.css': ['app.css', 'text/css; charset=utf-8'],
  ...Object.fromEntries(
    ['app.js', 'api.js', 'stream.js', 'store.js', 'view.js'].map((file) => [
      `/assets/${file}`,
      [file, SCRIPT],
    ]),
  ),
};

/**
 * The page's static files, served by the package itself (no CDN). They hold no data, so they need
 * no token; everything they show comes from the API, which does.
 */
export function createWebAssets(): (req: IncomingMessage, res: ServerResponse) => boolean {
  const cache = new Map<string, Buffer>();
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const entry = FILES[path];
    if (entry === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const [file, type] = entry;
    let body = cache.get(file);
    if (body === undefined) {
      body = readFileSync(new URL(file, WEB));
      cache.set(file, body);
    }
    res.writeHead(200, {
      'content-type': type,
      'content-length': body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy': `default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; ${FRAME_DENIAL}`,
      'x-frame-options': 'DENY',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
