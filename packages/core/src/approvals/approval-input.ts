import { VigilError } from '../errors.js';
import { newId } from '../ids.js';
import type { ApprovalRequest, ApprovalView } from './approval-queue.js';

// The checks of what callers hand an approval queue: each failure is `ERR_INVALID_INPUT` naming the field.

/** The longest timer Node keeps. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** A new pending approval of session `sessionId`, with a fresh id; `requestedAt` is the queue's to add. */
export function newView(sessionId: string, req: ApprovalRequest): Omit<ApprovalView, 'requestedAt'> {
  if (typeof req !== 'object' || req === null) throw invalid('request', 'request must be an object');
  const { command, description = '', processId, patternKey, meta } = req;
  if (typeof command !== 'string' || command.trim() === '') {
    throw invalid('command', `command must be a non-empty string, got ${show(command)}`);
  }
  if (typeof description !== 'string') throw invalid('description', 'description must be a string');
  if (processId !== undefined && typeof processId !== 'string') {
    throw invalid('processId', 'processId must be a string');
  }
  if (patternKey !== undefined && (typeof patternKey !== 'string' || patternKey === '')) {
    throw invalid('patternKey', `patternKey must be a non-empty string, got ${show(patternKey)}`);
  }
  if (meta !== undefined && (typeof meta !== 'object' || meta === null)) {
    throw invalid('meta', 'meta must be an object');
  }
  return {
    approvalId: newId('appr_'),
    sessionId,
    command,
    description,
    ...(processId === undefined ? {} : { processId }),
    ...(patternKey === undefined ? {} : { patternKey }),
    ...(meta === undefined ? {} : { meta: Object.freeze({ ...meta }) }),
  };
}

export function checkTimeout(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIMEOUT_MS) {
    throw invalid(
      'timeoutMs',
      `timeoutMs must be an integer from 0 to ${MAX_TIMEOUT_MS}, got ${show(value)}`,
    );
  }
  return value;
}

export function checkBacklog(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 100_000) {
    throw invalid(
      'subscriberBacklog',
      `subscriberBacklog must be an integer from 1 to 100000, got ${show(value)}`,
    );
  }
  return value;
}

/** A version a caller answered must be one the queue has had (`current` at most). */
export function checkVersion(version: unknown, current: number): void {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0 || version > current) {
    throw invalid(
      'version',
      `version must be an integer from 0 to the queue's current version ${current}, got ${show(version)}`,
    );
  }
}

export function invalid(field: string, message: string): VigilError {
  return new VigilError('ERR_INVALID_INPUT', message, { details: { field } });
}

export function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 140)) : String(value);
}
