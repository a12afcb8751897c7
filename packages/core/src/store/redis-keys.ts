/**
 * The Redis key schema shared by every vigil instance of one cluster (P = `store.prefix`). The
 * commit scripts (`redis-scripts.ts`) build the same names from the prefix; readers on other
 * instances use these.
 */
export function redisKeys(prefix: string) {
  const session = (sessionId: string) => `${prefix}s:${sessionId}`;
  return {
    /** Hash: instanceId → JSON `{ url?, pid, hostname, startedAt }`. */
    instances: `${prefix}instances`,
    /** String with PX = leaseMs, renewed with the leases: the instance is alive while it exists. */
    instance: (instanceId: string) => `${prefix}instance:${instanceId}`,
    /** Set: ids of the sessions not closed. */
    sessions: `${prefix}sessions`,
    /** Hash: the SessionRecord's fields, `lastSeq`, `firstSeq`, `owner`. */
    session,
    /** String `"<instanceId>/<nonce> <token>"` (nonce: per process start), PX = leaseMs; see `leaseHolder`. */
    lease: (sessionId: string) => `${session(sessionId)}:lease`,
    /** Integer: INCR on every acquisition gives the fencing token. */
    fence: (sessionId: string) => `${session(sessionId)}:fence`,
    /** Stream: entry `<seq>-0`, field `e` = the event's JSON. */
    tape: (sessionId: string) => `${session(sessionId)}:tape`,
    /** Hash: notificationId → notification JSON, pending ones only. */
    pending: (sessionId: string) => `${session(sessionId)}:pending`,
    /** Zset: acknowledged notification ids scored by seq. */
    delivered: (sessionId: string) => `${session(sessionId)}:delivered`,
    /** Hash: approvalId → JSON `{ n, outcome, decision, view }`. */
    approvals: (sessionId: string) => `${session(sessionId)}:approvals`,
    /** Hash: processId → JSON `{ instanceId, record }`. */
    processes: (sessionId: string) => `${session(sessionId)}:processes`,
  };
}

/** The instance id a lease value names (`"<instanceId>/<nonce> <token>"`); undefined for none. */
export function leaseHolder(lease: string | null | undefined): string | undefined {
  if (lease === null || lease === undefined) return undefined;
  return /^[^/ ]*/.exec(lease)![0];
}

export type RedisKeys = ReturnType<typeof redisKeys>;

/** A Redis URL as messages show it: without its password. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
