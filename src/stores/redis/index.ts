/**
 * `stockpyle/redis`: a cache layer in Redis or a Redis Cluster, over ioredis (an optional peer
 * dependency, loaded only by this entry point).
 */
export { RedisBackend, type RedisBackendOptions } from './redis-backend.js'
export { redisSlot, SLOT_COUNT } from './redis-slot.js'
export { type RedisNode, RedisStore, type RedisStoreOptions } from './redis-store.js'
