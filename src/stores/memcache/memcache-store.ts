import {
  CACHE_OPTION_NAMES,
  checkCacheOptions,
  KeyValueStore,
  type KeyValueStoreOptions,
  pickCacheOptions,
} from '../../contracts/key-value-store.js'
import { InvalidOptionError, UnsupportedOperationError } from '../../core/errors.js'
import { repairWrite } from '../../core/repair-action.js'
import { MemcacheBackend } from './memcache-backend.js'
import type { MemcacheServerStats } from './memcache-node-client.js'
import type { MemcacheConnectionOptions } from './memcache-options.js'

/**
 * Options of {@link MemcacheStore}: the cache options every store shares (`lifetime`, `polymorphic`,
 * `prefix`, `clock`, `name`) plus the pool's connection options (`servers`, `timeout`, …).
 */
export interface MemcacheStoreOptions extends KeyValueStoreOptions, MemcacheConnectionOptions {
  /**
   * The servers hold nothing but this store's entries, so `clear()` may empty them with `flush_all`
   * (memcached cannot list keys, so it cannot clear one prefix). Default `false`: `clear()` is refused.
   */
  ownsServers?: boolean | undefined
}

/**
 * A cache layer on a pool of memcached servers (`stockpyle/memcache`).
 *
 * ```ts
 * const cache = new MemcacheStore({ servers: ['10.0.0.1:11211', '10.0.0.2:11211'], lifetime: 300 })
 * ```
 *
 * Objects are stored as records under their primary key with small aliases under every other key
 * (see `KeyValueStore`), spread over the servers with ketama consistent hashing; a `batchGet` by
 * primary key sends one multi-get per server. Lifetimes are rounded up to whole seconds (never end
 * early); values over `maxValueBytes` fail with `ValueTooLargeError` before anything is sent. A server
 * that is down or does not answer within `timeout` ms makes calls reject with `StoreUnavailableError`
 * naming it — except reads under `partialReads` (default), which answer from the other servers and
 * report the failure to `onError`. See docs/stores/memcache.md.
 */
export class MemcacheStore extends KeyValueStore {
  /**
   * Validates every option synchronously; no connection is opened before the first call.
   * @throws InvalidOptionError naming the offending option.
   */
  constructor(options: MemcacheStoreOptions) {
    super(MemcacheStore.#backend(options), pickCacheOptions(options))
  }

  /**
   * Empties every server of the pool with `flush_all` — only with `ownsServers: true`, because
   * memcached cannot list keys and so cannot clear one prefix: everything on the servers goes.
   * @throws UnsupportedOperationError without `ownsServers`; StoreUnavailableError naming failed servers.
   */
  override async clear(): Promise<void> {
    this.assertOpen('clear')
    if (this.backend.clear === undefined) {
      throw new UnsupportedOperationError(
        `${this.name} store cannot clear(): memcached cannot list the keys of one prefix; create the store with ownsServers: true if its servers hold nothing else (clear() then sends flush_all to each)`,
      )
    }
    await super.clear()
  }

  static #backend(options: MemcacheStoreOptions): MemcacheBackend {
    const name = typeof options?.name === 'string' ? options.name : 'memcache store'
    // the shared cache options first, so their errors come before any client is created
    const { clock, tombstoneMs } = checkCacheOptions(name, options)
    // the backend's own repair option: the store sets it from its tombstones, a caller may not
    if (Object.hasOwn(options ?? {}, 'repairKey')) {
      throw new InvalidOptionError(`${name}: unknown option \`repairKey\` (the store's repairs follow its tombstones)`)
    }
    // A server's repair of a key whose write failed leaves a tombstone lasting from the failure, and
    // never removes or cuts short the tombstone of another process's later delete (which would let a
    // copy read before that delete be backfilled).
    const repairKey =
      tombstoneMs === 0
        ? undefined
        : (current: Uint8Array | undefined, failedAt: number) => repairWrite(current, failedAt + tombstoneMs, clock.now())
    return new MemcacheBackend({ ...options, clock, ...(repairKey === undefined ? {} : { repairKey }) }, CACHE_OPTION_NAMES)
  }

  /** The memcached backend: the pool, its hashing (`serverFor`) and counters. */
  override get backend(): MemcacheBackend {
    return super.backend as MemcacheBackend
  }

  /** A snapshot of each server's counters (requests, hits, errors, down), in configuration order. */
  stats(): MemcacheServerStats[] {
    return this.backend.stats()
  }
}
