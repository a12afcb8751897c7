// The Redis store's worker thread: it owns the ioredis connection, runs the commit scripts, keeps
// the leases this instance holds and renews them. The main thread (`RedisStore`) talks to it over a
// MessagePort and, for its synchronous calls, waits on a shared counter this thread bumps after
// every message it posts.
import { workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import type { ApprovalView } from '../approvals/approval-queue.js';
import type { Notification } from '../journal/notification.js';
import type { TapeEvent } from '../journal/tape-events.js';
import type { ProcessRecord } from '../process/process-record.js';
import { displayUrl, redisKeys } from './redis-keys.js';
import type {
  CommitGroup,
  RedisMessage,
  RedisRequest,
  RedisWorkerData,
  RefusedGroup,
  WireError,
} from './redis-protocol.js';
import { CLAIM, COMMIT, opLetters, RELEASE, RENEW } from './redis-scripts.js';
import type { RestoredSession, SessionRecord } from './store.js';

interface VigilRedis extends Redis {
  vigilCommit(...args: (string | number)[]): Promise<string[]>;
  vigilClaim(...args: (string | number)[]): Promise<string[]>;
  vigilRenew(...args: (string | number)[]): Promise<string[]>;
  vigilRelease(...args: (string | number)[]): Promise<number>;
}

/** The longest wait between two reconnection attempts. */
const RECONNECT_MAX_MS = 2_000;

const data = workerData as RedisWorkerData;
const { port, prefix, leaseMs, timeoutMs, instanceId: me, previous } = data;
/** What this process's leases name: its instance id and a nonce of this start (another live process with the same id is not this one). */
const holder = `${me}/${data.nonce}`;
const signal = new Int32Array(data.signal);
const keys = redisKeys(prefix);
const shownUrl = displayUrl(data.url);
let instance = JSON.stringify(data.instance);

const redis = new Redis(data.url, {
  lazyConnect: true,
  // Fail at once while Redis is away, never queue silently: the store keeps and retries the batch.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  connectTimeout: timeoutMs,
  commandTimeout: timeoutMs,
  retryStrategy: (attempt) => Math.min(attempt * 100, RECONNECT_MAX_MS),
}) as VigilRedis;
// Failures reach the caller of each command; the client's own reports would only repeat them.
redis.on('error', () => undefined);
/** When the connection was last (re)established: no takeover scan before leaseMs after it. */
let readyAt = Number.POSITIVE_INFINITY;
redis.on('ready', () => {
  readyAt = performance.now();
  // Back from an outage: the leases that expired meanwhile are taken back before anyone scans.
  if (renewal !== undefined) renew().catch(() => undefined);
});
redis.defineCommand('vigilCommit', { numberOfKeys: 0, lua: COMMIT });
redis.defineCommand('vigilClaim', { numberOfKeys: 0, lua: CLAIM });
redis.defineCommand('vigilRenew', { numberOfKeys: 0, lua: RENEW });
redis.defineCommand('vigilRelease', { numberOfKeys: 0, lua: RELEASE });

/** Sessions whose lease this instance holds, with their fencing token. */
const held = new Map<string, string>();
let renewal: NodeJS.Timeout | undefined;
let scan: NodeJS.Timeout | undefined;

function post(message: RedisMessage): void {
  port.postMessage(message);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

function wireError(error: unknown): WireError {
  const message = error instanceof Error ? error.message : String(error);
  // A Lua or reply error is Redis answering: the journal's data is not what vigil wrote.
  if (error instanceof Error && error.name === 'ReplyError') {
    return { code: 'ERR_JOURNAL', message: `the journal in Redis ${shownUrl} refused a write: ${message}` };
  }
  return {
    code: 'ERR_STORE_UNAVAILABLE',
    message: `Redis at ${shownUrl} is unavailable: ${message}`,
    details: { url: shownUrl },
  };
}

async function connect(): Promise<void> {
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  await renew();
  renewal = setInterval(
    () => {
      renew().catch(() => {
        // Redis is away: the leases are renewed on the next tick, or taken back while nobody took them.
      });
    },
    Math.max(50, Math.floor(leaseMs / 3)),
  );
}

async function renew(): Promise<void> {
  const sent = new Map(held);
  const lost = await redis.vigilRenew(prefix, holder, leaseMs, instance, ...[...sent].flat());
  // A session released or claimed again meanwhile has another token: this answer is not about it.
  const gone = lost.filter(
    (sessionId) => held.get(sessionId) === sent.get(sessionId) && held.delete(sessionId),
  );
  if (gone.length > 0) post({ lost: gone });
}

/** Claims run one at a time, so that the takeover scan and an open of the same session never both restore it. */
let claiming: Promise<unknown> = Promise.resolve();

function serially<T>(work: () => Promise<T>): Promise<T> {
  const next = claiming.then(work);
  claiming = next.catch(() => undefined);
  return next;
}

/** `scan`: for the failover scan, which takes only sessions whose owner is gone. */
function claim(sessionId: string, mode: 'open' | 'scan' = 'open'): Promise<RestoredSession | null> {
  return serially(() => claimNow(sessionId, mode));
}

async function claimNow(sessionId: string, mode: 'open' | 'scan'): Promise<RestoredSession | null> {
  // Held already (a claim whose answer the main thread gave up on, or the takeover scan's): as it is now.
  if (held.has(sessionId)) return readOrRelease(sessionId);
  const [status, value, extra] = await redis.vigilClaim(prefix, holder, sessionId, leaseMs, mode, previous);
  if (status === 'owned') {
    const owner = value!;
    const url = ownerUrl(extra ?? '');
    throw {
      code: 'ERR_SESSION_OWNED',
      message: `session ${sessionId} is served by instance ${owner}${url === undefined ? '' : ` (${url})`}`,
      details: { owner, ...(url === undefined ? {} : { url }) },
    } satisfies WireError;
  }
  held.set(sessionId, value!);
  // A session a gone instance left open: it continues here.
  return extra === '' || extra === undefined ? null : readOrRelease(sessionId);
}

/** The session as Redis has it; when that cannot be read, its lease goes back (nobody would serve it). */
async function readOrRelease(sessionId: string): Promise<RestoredSession | null> {
  try {
    return await read(sessionId);
  } catch (error) {
    await release(sessionId);
    throw error;
  }
}

function ownerUrl(json: string): string | undefined {
  try {
    const { url } = JSON.parse(json) as { url?: unknown };
    return typeof url === 'string' ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Failover: every leaseMs / 2, the open sessions nobody holds a lease of (their instance is gone)
 * are taken, one at a time, and sent to the main thread to continue here. Not within leaseMs (plus
 * a reconnection's delay) of a (re)connection: after a Redis outage every lease has expired, and
 * the live owners take theirs back first.
 */
async function takeOver(): Promise<void> {
  if (performance.now() - readyAt < leaseMs + RECONNECT_MAX_MS) return;
  for (const sessionId of await redis.smembers(keys.sessions)) {
    if (held.has(sessionId) || (await redis.exists(keys.lease(sessionId))) === 1) continue;
    try {
      const taken = await claim(sessionId, 'scan');
      if (taken !== null) post({ taken });
      // Closed meanwhile: the lease goes back.
      else if (held.has(sessionId)) await release(sessionId);
    } catch (error) {
      // Another instance was faster: it is theirs.
      if ((error as WireError).code !== 'ERR_SESSION_OWNED') throw error;
    }
  }
  post({ scanned: true });
}

async function release(sessionId: string): Promise<void> {
  const token = held.get(sessionId);
  held.delete(sessionId);
  if (token !== undefined)
    await redis.vigilRelease(prefix, holder, 0, sessionId, token).catch(() => undefined);
}

/** Every open session whose lease this instance can take, with what it needs to continue. */
async function restore(): Promise<RestoredSession[]> {
  const restored: RestoredSession[] = [];
  for (const sessionId of (await redis.smembers(keys.sessions)).sort()) {
    try {
      const session = await claim(sessionId);
      if (session !== null) restored.push(session);
    } catch (error) {
      // Served by a live instance: it is not ours to restore.
      if ((error as WireError).code !== 'ERR_SESSION_OWNED') throw error;
    }
  }
  return restored;
}

/** One session as the store holds it (its lease is ours, so nobody writes it meanwhile). */
async function read(sessionId: string): Promise<RestoredSession | null> {
  const results = await redis
    .multi()
    .hgetall(keys.session(sessionId))
    .xrange(keys.tape(sessionId), '-', '+')
    .hgetall(keys.pending(sessionId))
    .zrange(keys.delivered(sessionId), 0, -1, 'WITHSCORES')
    .hgetall(keys.approvals(sessionId))
    .hgetall(keys.processes(sessionId))
    .exec();
  const [hash, tape, pendingMap, deliveredFlat, approvalMap, processMap] = (results ?? []).map(
    ([error, value]) => {
      if (error !== null) throw error;
      return value;
    },
  ) as [
    Record<string, string>,
    [string, string[]][],
    Record<string, string>,
    string[],
    Record<string, string>,
    Record<string, string>,
  ];
  if (hash.state === undefined || hash.state === 'closed') return null;
  const events = tape.map(([, fields]) => JSON.parse(fields[1]!) as TapeEvent);
  const firstSeq = events[0]?.seq ?? 0;
  const delivered: string[] = [];
  for (let i = 0; i < deliveredFlat.length; i += 2) {
    const id = deliveredFlat[i]!;
    // An acknowledgement counts while its event is on the tape (a completion while its process is kept).
    if (Number(deliveredFlat[i + 1]) >= firstSeq || id.endsWith(':completion')) delivered.push(id);
  }
  const pending = Object.values(pendingMap)
    .map((json) => JSON.parse(json) as Notification)
    .sort((a, b) => a.seq - b.seq);
  const approvals = Object.values(approvalMap)
    .map((json) => JSON.parse(json) as StoredApproval)
    .sort((a, b) => a.n - b.n);
  const processes: ProcessRecord[] = [];
  const foreign = new Map<string, string>();
  for (const json of Object.values(processMap)) {
    const { instanceId, record } = JSON.parse(json) as { instanceId: string; record: ProcessRecord };
    processes.push(record);
    if (instanceId !== me) foreign.set(record.processId, instanceId);
  }
  const record: SessionRecord = {
    sessionId,
    state: hash.state as SessionRecord['state'],
    openedAt: Number(hash.openedAt ?? 0),
    closedAt: hash.closedAt === undefined ? null : Number(hash.closedAt),
    closeReason: hash.closeReason ?? null,
    approvalVersion: Number(hash.approvalVersion ?? 0),
  };
  return {
    record,
    events,
    lastSeq: Number(hash.lastSeq ?? events.at(-1)?.seq ?? 0),
    pending,
    delivered,
    approvals: approvals.filter((approval) => approval.outcome === null).map(({ view }) => view),
    grants: approvals.filter((approval) => approval.decision === 'approve_session').map(({ view }) => view),
    processes,
    foreign,
  };
}

interface StoredApproval {
  readonly n: number;
  readonly outcome: string | null;
  readonly decision: string | null;
  readonly view: ApprovalView;
}

async function commit(batchId: string, groups: readonly CommitGroup[]): Promise<RefusedGroup[]> {
  const refused: RefusedGroup[] = [];
  const args: (string | number)[] = [prefix, holder, batchId, leaseMs, 0];
  let count = 0;
  for (const { sessionId, ops } of groups) {
    const token = held.get(sessionId);
    if (token === undefined) {
      // The lease was lost (reported already): nothing of it is written.
      refused.push({ sessionId, status: 'fenced' });
      continue;
    }
    args.push(sessionId, token, ops.length, ...ops);
    count++;
  }
  args[4] = count;
  if (count === 0) return refused;
  const statuses = await redis.vigilCommit(...args);
  for (let i = 0; i < statuses.length; i += 2) {
    const sessionId = statuses[i]!;
    const status = statuses[i + 1]!;
    if (status === 'ok' || status === 'applied') continue;
    // Fenced, or refused (its tape is not where this instance left it): the session is dropped
    // here, and its lease is no longer renewed (once it lapses, the failover scan restores it).
    held.delete(sessionId);
    refused.push({ sessionId, status });
  }
  // A deleted session's lease went with it.
  for (const { sessionId, ops } of groups) if (opLetters(ops).includes('Z')) held.delete(sessionId);
  return refused;
}

async function close(): Promise<void> {
  clearInterval(renewal);
  clearInterval(scan);
  try {
    if (redis.status === 'ready') await redis.vigilRelease(prefix, holder, 1, ...[...held].flat());
  } finally {
    held.clear();
    redis.disconnect();
  }
}

async function handle(request: RedisRequest): Promise<RedisMessage> {
  const { id } = request;
  switch (request.op) {
    case 'connect':
      await connect();
      return { id, ok: true };
    case 'restore': {
      const restored = await restore();
      // From now on, sessions of gone instances are taken over (after the restore: never twice).
      scan = setInterval(
        () => {
          takeOver().catch(() => {
            // Redis is away: the next scan tries again.
          });
        },
        Math.max(100, Math.floor(leaseMs / 2)),
      );
      return { id, restored };
    }
    case 'claim':
      return { id, claimed: await claim(request.sessionId) };
    case 'release':
      // After the claims before it: a claim the main thread gave up on gives its lease back.
      await serially(() => release(request.sessionId));
      return { id, ok: true };
    case 'commit':
      return { id, refused: await commit(request.batchId, request.groups) };
    case 'advertise':
      instance = JSON.stringify(request.instance);
      await renew();
      return { id, ok: true };
    case 'close':
      await close();
      return { id, ok: true };
  }
}

port.on('message', (request: RedisRequest) => {
  void handle(request)
    .then(post, (error: unknown) => {
      const code = (error as WireError | undefined)?.code;
      post({ id: request.id, error: code === 'ERR_SESSION_OWNED' ? (error as WireError) : wireError(error) });
    })
    .finally(() => {
      // Once `close` answered the thread has nothing left and ends.
      if (request.op === 'close') port.close();
    });
});
