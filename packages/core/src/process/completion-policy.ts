import { z } from 'zod';
import type { ExitRecord } from './process-info.js';

/** When a process's completion becomes a notification. */
export type CompletionPolicy = 'always' | 'onFailure' | 'never';

/** `notifyOnComplete` input: a policy, or a boolean (`true` is `'always'`, `false` is `'never'`). */
export const completionPolicySchema = z
  .union([z.boolean(), z.enum(['always', 'onFailure', 'never'])])
  .transform((value) => completionPolicyOf(value));

/** The policy of `notifyOnComplete` as given, or as journaled by versions where it was a boolean. */
export function completionPolicyOf(value: boolean | CompletionPolicy): CompletionPolicy {
  if (value === true) return 'always';
  if (value === false) return 'never';
  return value;
}

/** A process failed: it did not exit by itself with code 0 (a signal, a kill, a failed start, ...). */
export function failed(exit: Pick<ExitRecord, 'state' | 'exitCode'>): boolean {
  return exit.state !== 'exited' || exit.exitCode !== 0;
}

/**
 * Whether the completion of a process that ended this way is delivered, by its policy and
 * `notifyOnEmptySuccess` (a success that printed nothing at all).
 */
export function wantsCompletion(
  exit: Pick<ExitRecord, 'state' | 'exitCode' | 'outputBytes'>,
  options: { readonly policy: CompletionPolicy; readonly notifyOnEmptySuccess: boolean },
): boolean {
  const { policy, notifyOnEmptySuccess } = options;
  if (policy === 'never') return false;
  if (failed(exit)) return true;
  if (policy === 'onFailure') return false;
  return notifyOnEmptySuccess || exit.outputBytes > 0;
}
