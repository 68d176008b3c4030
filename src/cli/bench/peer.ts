/**
 * What the suite needs from a peer caching library (BentoCache, cache-manager, cacheable…). Peers are
 * plugged in by `bench/peers.js` for `npm run bench` only; the `stockpyle bench` CLI never loads them.
 */

/** One two-tier (memory + Redis) cache instance of a peer library. */
export interface PeerCache {
  /** The value under `key`, from memory or Redis; `undefined` on a miss. */
  get(key: string): Promise<unknown>
  /** Stores `value` in both tiers. */
  set(key: string, value: object): Promise<void>
  /** A batch read, when the library has one; otherwise the suite reads with `Promise.all` of `get`. */
  readonly getMany?: ((keys: string[]) => Promise<unknown[]>) | undefined
  /** The library's single-flight read-through (`getOrSet` / `wrap`). */
  getOrSet(key: string, load: () => Promise<object | undefined>): Promise<unknown>
  /** Closes its connections. */
  close(): Promise<void>
}

/** A peer library. */
export interface PeerLibrary {
  /** Column name, e.g. `'BentoCache'`. */
  readonly name: string
  readonly version: string
  /** How it is configured, for the notes. */
  readonly config: string
  /**
   * A new instance, configured as the library's docs recommend for memory + Redis. Instances created
   * with the same `namespace` share the Redis tier but each has its own (empty) memory tier.
   */
  create(options: { redisUrl: string; namespace: string; ttlSeconds: number }): Promise<PeerCache>
}

/** A memory-bound (S7) measurement run in a child process by a script outside the CLI (peers). */
export interface MemoryChild {
  /** Column name. */
  readonly library: string
  readonly role: 'peer' | 'floor' | 'stockpyle'
  /** Absolute path of the script; it gets the job as JSON in argv[2] and prints a {@link MemoryReport} as its last stdout line. */
  readonly script: string
  readonly label: string
}

/** What a memory-bound child reports. */
export interface MemoryReport {
  readonly library: string
  readonly label: string
  /** Objects inserted. */
  readonly inserted: number
  /** Objects the cache holds at the end. */
  readonly entries: number
  /** Heap used + external growth after a full GC, in bytes. */
  readonly growthBytes: number
  /** RSS growth, in bytes (informational: the allocator keeps freed pages). */
  readonly rssGrowthBytes: number
  /** The bound configured, in bytes. */
  readonly maxSize: number
  /** What the cache itself accounts (lru-cache's calculatedSize), in bytes, when it has one. */
  readonly accountedBytes?: number | undefined
  /** Seconds to insert everything. */
  readonly fillSeconds: number
  /** Gets of resident objects per second. */
  readonly getOpsPerSec: number
}
