import { existsSync } from 'node:fs';
import type { AdoptionRecord } from '../process/adopted-child.js';
import { identityState } from '../process/process-identity.js';
import type { ProcessRecord } from '../process/process-record.js';

/** What a restarted vigil does with a process that was running when the previous one stopped. */
export type RestoreOutcome =
  | { readonly kind: 'adopt'; readonly record: AdoptionRecord }
  | { readonly kind: 'lost'; readonly reason: string };

/**
 * The one place that decides the fate of a process found running in the journal after a restart.
 * It is adopted (`ManagedProcess.adopt`: its identity is checked before any signal) when its exit
 * status is recorded already or its recorder still waits for it. Otherwise nothing can ever tell
 * how it ends (no adoption record, or its recorder was vigil itself with `processes.spawner:
 * 'direct'` and is gone, or it ran on another instance, `goneInstance`, whose session this one took
 * over): it ends as `lost` at once, and its completion says why.
 */
export function restoreProcess(record: ProcessRecord, goneInstance?: string): RestoreOutcome {
  const { adoption } = record;
  // Started by another instance of a shared store, which is gone: nothing here can follow it.
  if (goneInstance !== undefined) {
    return { kind: 'lost', reason: `its instance ${goneInstance} is gone` };
  }
  if (adoption !== null && (recorderWaits(adoption) || existsSync(adoption.statusPath))) {
    return { kind: 'adopt', record: adoption };
  }
  const pid = record.pid === null ? '' : ` (pid ${record.pid})`;
  const why =
    adoption === null
      ? 'was not taken back'
      : `had no exit status recorded and the process that waited for it (pid ${adoption.recorder?.pid ?? 'unknown'}) is gone`;
  return {
    kind: 'lost',
    reason: `vigil restarted: the command${pid} ${why}, so how it ended cannot be known`,
  };
}

/** Its recorder is alive (asked before the status file: a recorder writes the status, then exits). */
function recorderWaits(adoption: AdoptionRecord): boolean {
  return adoption.recorder !== null && identityState(adoption.recorder) === 'alive';
}
