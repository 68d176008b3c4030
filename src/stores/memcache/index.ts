/**
 * `stockpyle/memcache`: a cache layer on memcached. Needs the optional peer dependencies
 * `memcache-client` and `hashring`.
 */
export { MemcacheBackend, type MemcacheBackendOptions } from './memcache-backend.js'
export { MEMCACHE_EXPTIME_MARGIN, MEMCACHE_MAX_RELATIVE_EXPTIME, memcacheExptime } from './memcache-exptime.js'
export { MAX_PENDING_REPAIRS, type MemcacheServerStats } from './memcache-node-client.js'
export {
  DEFAULT_MEMCACHE_MAX_VALUE_BYTES,
  DEFAULT_MEMCACHE_RETRY_DELAY,
  DEFAULT_MEMCACHE_TIMEOUT,
  type MemcacheConnectionOptions,
  type MemcacheServer,
  type MemcacheWeightedServer,
} from './memcache-options.js'
export type { MemcacheHashing } from './memcache-ring.js'
export { MemcacheStore, type MemcacheStoreOptions } from './memcache-store.js'
