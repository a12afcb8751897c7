import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { ClusterKeys } from './cluster-keys.js';
import { guarded } from './redis-errors.js';

/** What an instance publishes of itself in `P instances`. */
export interface InstanceEntry {
  readonly url?: string;
  readonly pid: number;
  readonly hostname: string;
  readonly startedAt: number;
}

/**
 * This instance's entry in the cluster: its url (where the others forward to) in `P instances`,
 * and its liveness key `P instance:<id>`, renewed every `leaseMs / 3` while it runs and deleted
 * when it stops.
 */
export class InstanceRegistration {
  readonly #redis: Redis;
  readonly #keys: ClusterKeys;
  readonly #instanceId: string;
  readonly #leaseMs: number;
  readonly #url: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    redis: Redis,
    keys: ClusterKeys,
    options: { instanceId: string; leaseMs: number; redisUrl: string },
  ) {
    this.#redis = redis;
    this.#keys = keys;
    this.#instanceId = options.instanceId;
    this.#leaseMs = options.leaseMs;
    this.#url = options.redisUrl;
  }

  /** Publishes the entry and starts renewing the liveness key. */
  async register(url: string | undefined): Promise<void> {
    const entry: InstanceEntry = {
      ...(url === undefined ? {} : { url }),
      pid: process.pid,
      hostname: hostname(),
      startedAt: Date.now(),
    };
    await guarded(this.#url, () =>
      this.#redis
        .multi()
        .hset(this.#keys.instances, this.#instanceId, JSON.stringify(entry))
        .set(this.#keys.instance(this.#instanceId), String(process.pid), 'PX', this.#leaseMs)
        .exec(),
    );
    this.#timer = setInterval(() => {
      // A renewal Redis refuses is retried at the next tick; the key outlives two missed ones.
      this.#redis
        .set(this.#keys.instance(this.#instanceId), String(process.pid), 'PX', this.#leaseMs)
        .catch(() => undefined);
    }, this.#leaseMs / 3);
  }

  /** Stops renewing and removes the liveness key (the entry stays: a restart replaces it). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#redis.del(this.#keys.instance(this.#instanceId)).catch(() => undefined);
  }
}
