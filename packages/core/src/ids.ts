import { randomBytes } from 'node:crypto';
import { VigilError } from './errors.js';

const SESSION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Whether `value` is a session id: 1–128 chars of `[A-Za-z0-9._:-]`. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && SESSION_ID.test(value);
}

/** Throws `ERR_INVALID_SESSION_ID` unless `value` is a session id. */
export function assertSessionId(value: unknown): asserts value is string {
  if (!isSessionId(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 140)) : typeof value;
    throw new VigilError(
      'ERR_INVALID_SESSION_ID',
      `sessionId must be 1-128 characters of [A-Za-z0-9._:-], got ${shown}`,
      { details: { field: 'sessionId' } },
    );
  }
}

/** A server-assigned id: `prefix` + 12 hex characters. */
export function newId(prefix: 'proc_' | 'appr_'): string {
  return prefix + randomBytes(6).toString('hex');
}
