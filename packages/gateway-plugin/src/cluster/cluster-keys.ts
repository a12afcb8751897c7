/**
 * The Redis keys of a vigil cluster (the schema the Redis journal store writes), under one prefix.
 * The gateway only reads them, except its own instance's entry in `instances`.
 */
export class ClusterKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** Hash: instanceId → JSON `{ url?, pid, hostname, startedAt }`. */
  get instances(): string {
    return `${this.prefix}instances`;
  }
  /** Set: ids of the sessions not closed. */
  get sessions(): string {
    return `${this.prefix}sessions`;
  }
  /** String with an expiry: the instance is alive while it exists. */
  instance(instanceId: string): string {
    return `${this.prefix}instance:${instanceId}`;
  }
  /** Hash: the session record, `lastSeq`, `firstSeq`, `owner`. */
  session(sessionId: string): string {
    return `${this.prefix}s:${sessionId}`;
  }
  /** String `"<instanceId> <token>"` with an expiry: who serves the session now. */
  lease(sessionId: string): string {
    return `${this.prefix}s:${sessionId}:lease`;
  }
  /** Stream: entry `<seq>-0`, field `e` = the event's JSON. */
  tape(sessionId: string): string {
    return `${this.prefix}s:${sessionId}:tape`;
  }
  /** Hash: notificationId → pending notification JSON. */
  pending(sessionId: string): string {
    return `${this.prefix}s:${sessionId}:pending`;
  }
  /** Hash: approvalId → JSON `{ view, outcome, decision }`. */
  approvals(sessionId: string): string {
    return `${this.prefix}s:${sessionId}:approvals`;
  }
  /** Hash: processId → JSON `{ record, instanceId }`. */
  processes(sessionId: string): string {
    return `${this.prefix}s:${sessionId}:processes`;
  }
}
