import type { ApprovalSnapshot, SessionState, TapeEvent, Vigil } from '@vigil/core';
import type { ClusterRouting } from './cluster-routing.js';

/** Where one session of a stream comes from: this instance's vigil, or the cluster's store. */
export interface StreamSource {
  info(): Promise<{ readonly lastSeq: number; readonly state: SessionState }>;
  subscribe(options: { readonly after: number; readonly signal: AbortSignal }): AsyncIterable<TapeEvent>;
  /** Calls `listener` with the current approval snapshot, then with each later one; returns the unsubscribe. */
  approvals(listener: (snapshot: ApprovalSnapshot) => void): () => void;
}

/** A session this instance serves. */
export function localSource(vigil: Vigil, sessionId: string): StreamSource {
  return {
    info: async () => vigil.sessions.get(sessionId),
    subscribe: (options) => vigil.tape.subscribe(sessionId, options),
    approvals: (listener) => vigil.approvals.subscribe(sessionId, listener),
  };
}

/**
 * A session another instance serves, read from the store. Its approval queue changes only with an
 * `approval.*` tape event: each one fetches the snapshot again.
 */
export function remoteSource(
  cluster: ClusterRouting,
  sessionId: string,
  onError: (error: unknown) => void,
): StreamSource {
  const listeners = new Set<(snapshot: ApprovalSnapshot) => void>();
  // Two fetches may answer out of order: an older version never follows a newer one.
  let sent = -1;
  const refresh = (): void => {
    cluster.approvals(sessionId).then((snapshot) => {
      if (snapshot.version < sent) return;
      sent = snapshot.version;
      for (const listener of listeners) listener(snapshot);
    }, onError);
  };
  return {
    info: () => cluster.session(sessionId),
    async *subscribe(options) {
      for await (const event of cluster.subscribe(sessionId, options)) {
        yield event;
        if (event.type === 'approval.requested' || event.type === 'approval.resolved') refresh();
      }
    },
    approvals(listener) {
      listeners.add(listener);
      refresh();
      return () => {
        listeners.delete(listener);
      };
    },
  };
}
