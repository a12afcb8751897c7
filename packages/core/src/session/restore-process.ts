import type { ProcessRecord } from '../process/process-record.js';

/** What a restarted vigil does with a process that was running when the previous one stopped. */
export type RestoreOutcome = { readonly kind: 'lost'; readonly reason: string };

/**
 * The one place that decides the fate of a process found running in the journal after a restart.
 * Until vigil can take a command back (an identity check of its pid, and a record of its exit that
 * outlives the gateway), nothing can be known of it: it ends as `lost`, and its completion says why.
 * Re-adoption replaces this function.
 */
export function restoreProcess(record: ProcessRecord): RestoreOutcome {
  const pid = record.pid === null ? '' : ` (pid ${record.pid})`;
  return {
    kind: 'lost',
    reason: `vigil restarted: the command${pid} was not taken back, so how it ended cannot be known`,
  };
}
