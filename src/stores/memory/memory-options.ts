import { LRUCache } from 'lru-cache'
import { capabilities, type StoreCapabilities } from '../../contracts/base-store.js'
import { CACHE_OPTION_NAMES, type CacheStoreOptions, type checkCacheOptions } from '../../contracts/cache-store-options.js'
import type { InvalidationBus } from '../../contracts/invalidation-bus.js'
import { InvalidOptionError, show } from '../../core/errors.js'
import { type MemoryRecord, sizeOf } from './memory-record.js'

/** Options of `ProcessMemoryStore`. */
export interface ProcessMemoryStoreOptions extends Omit<CacheStoreOptions, 'prefix'> {
  /** Most objects held (an object stored under three keys counts once). */
  max?: number | undefined
  /**
   * Most bytes of memory held, counting the encoded object and the per-entry and per-key overhead of
   * the index (an estimate calibrated against heap + external growth), not only the payload.
   * Default when neither `max` nor `maxSize` is given: {@link DEFAULT_MAX_SIZE}.
   */
  maxSize?: number | undefined
  /** Opt in to no bound at all (emits a one-time `STOCKPYLE_UNBOUNDED` warning). */
  unbounded?: boolean | undefined
  /** Name in messages and stats. Default `'memory'`. */
  name?: string | undefined
  /**
   * Keeps this layer coherent with the same layer in other processes: puts and deletes publish the
   * objects' record keys, and invalidations from other processes evict them here. While the bus is
   * disconnected the layer serves nothing (reads miss, writes are not held), and it is cleared when the
   * bus comes back, so an entry that may have missed an invalidation is never served as fresh.
   * The bus is yours: `close()` unsubscribes but does not close it.
   */
  bus?: InvalidationBus | undefined
}

/**
 * The option names `ProcessMemoryStore` accepts. `prefix` is accepted (so cache options can be
 * shared between stores), checked as every cache store checks it, and ignored: the map belongs to
 * this store alone.
 */
export const PROCESS_MEMORY_STORE_OPTIONS: readonly string[] = [...CACHE_OPTION_NAMES, 'max', 'maxSize', 'unbounded', 'name', 'bus']

/** The bound of a ProcessMemoryStore created without `max`, `maxSize` or `unbounded`: 64 MiB. */
export const DEFAULT_MAX_SIZE = 64 * 1024 * 1024

let warnedUnbounded = false

/**
 * The bounds of a store created with `options`, checked: `max` objects and/or `maxSize` bytes
 * (`DEFAULT_MAX_SIZE` when neither is given; no bound in practice with `unbounded: true`, which warns
 * once per process). @throws InvalidOptionError naming the bad option.
 */
export function memoryBounds(name: string, options: ProcessMemoryStoreOptions): { max: number | undefined; maxSize: number | undefined } {
  const { max, maxSize, unbounded } = options
  if (max !== undefined && !(Number.isSafeInteger(max) && max > 0)) {
    throw new InvalidOptionError(`${name}: option \`max\` must be a positive integer (objects), got ${show(max)}`)
  }
  if (maxSize !== undefined && !(Number.isSafeInteger(maxSize) && maxSize > 0)) {
    throw new InvalidOptionError(`${name}: option \`maxSize\` must be a positive integer (bytes), got ${show(maxSize)}`)
  }
  if (unbounded !== undefined && unbounded !== true && unbounded !== false) {
    throw new InvalidOptionError(`${name}: option \`unbounded\` must be a boolean, got ${show(unbounded)}`)
  }
  if (unbounded === true && (max !== undefined || maxSize !== undefined)) {
    throw new InvalidOptionError(`${name}: option \`unbounded\` cannot be combined with \`max\` or \`maxSize\``)
  }
  if (unbounded === true && !warnedUnbounded) {
    warnedUnbounded = true
    process.emitWarning('A ProcessMemoryStore without a bound grows without limit', {
      type: 'StockpyleWarning',
      code: 'STOCKPYLE_UNBOUNDED',
    })
  }
  return { max, maxSize: unbounded === true ? Number.MAX_SAFE_INTEGER : (maxSize ?? (max === undefined ? DEFAULT_MAX_SIZE : undefined)) }
}

/**
 * The lru-cache of a store's records, bounded by `max` objects and/or `maxSize` bytes without handing
 * it `max`: given `max`, lru-cache allocates arrays of that many slots up front (`max: 1e8` took 22 s
 * and 3.8 GiB, `1e9` ended the process). Instead:
 * - `maxSize` only: bytes, each record weighed by {@link sizeOf};
 * - `max` only: `maxSize: max` with every record weighing 1, so lru-cache counts objects;
 * - both: bytes as above; the store trims to `max` objects after each insertion.
 * `dispose` is told of each record that goes (evicted, replaced, deleted or cleared).
 */
export function recordCache(
  max: number | undefined,
  maxSize: number | undefined,
  dispose: (record: MemoryRecord, key: string) => void,
): LRUCache<string, MemoryRecord> {
  if (maxSize === undefined) return new LRUCache({ maxSize: max as number, sizeCalculation: () => 1, dispose })
  return new LRUCache({ maxSize, sizeCalculation: sizeOf, dispose })
}

/** The capabilities of a `ProcessMemoryStore` with these (checked) settings. */
export function memoryCapabilities(settings: ReturnType<typeof checkCacheOptions>): StoreCapabilities {
  return capabilities({
    polymorphic: settings.polymorphic,
    inProcess: true,
    clearable: true,
    addOnlyBackfills: true,
    tombstones: settings.tombstoneMs > 0,
    staleReads: settings.graceMs > 0,
    refillsExpired: true,
  })
}
