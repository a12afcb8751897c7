import { type ProcessInfo, type Vigil, VigilError } from '@vigil/core';

/** Process ids start with this; an agent may leave it out of a prefix. */
const ID_PREFIX = 'proc_';

/**
 * The process of `sessionId` that `ref` names: its id, or a unique prefix of it (with or without
 * `proc_`), as agents shorten ids. Another session's process is as unknown as a missing one:
 * `ERR_UNKNOWN_PROCESS`; a prefix of two or more: `ERR_AMBIGUOUS_PROCESS` listing them.
 */
export function resolveProcess(
  vigil: Vigil,
  sessionId: string,
  ref: string,
  field = 'processId',
): ProcessInfo {
  const own = vigil.processes.list({ sessionId });
  const exact = own.find((process) => process.processId === ref);
  if (exact !== undefined) return exact;
  const matches = own.filter(
    (process) => process.processId.startsWith(ref) || process.processId.startsWith(ID_PREFIX + ref),
  );
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    throw new VigilError('ERR_UNKNOWN_PROCESS', `${field}: unknown process ${ref}`, { details: { field } });
  }
  const listed = matches.map((process) => `${process.processId} (${process.name})`).join(', ');
  throw new VigilError(
    'ERR_AMBIGUOUS_PROCESS',
    `${field} "${ref}" matches ${matches.length} processes: ${listed}; give more of the id`,
    { details: { field, matches: matches.map((process) => process.processId) } },
  );
}
