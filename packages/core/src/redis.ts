// `@vigil/core/redis`: what the embedded gateway needs of the Redis store to serve a cluster of
// instances (the key schema, the store itself). Importing it does not load ioredis: only the
// store's worker thread does.
export { instanceIdOf } from './store/instance-id.js';
export { displayUrl, leaseHolder, type RedisKeys, redisKeys } from './store/redis-keys.js';
export { RedisStore, type RedisStoreOptions } from './store/redis-store.js';
