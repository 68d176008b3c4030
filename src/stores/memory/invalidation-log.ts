import { LRUCache } from 'lru-cache'
import { nextInvalidation } from '../../core/invalidation-sequence.js'

/**
 * Record keys whose last invalidation a store remembers (newest first), at most: fewer in a store
 * bounded in bytes whose quarter cannot hold them. A backfill read before an invalidation it no longer
 * remembers is refused, whatever its key.
 */
export const MAX_INVALIDATIONS = 100_000

/**
 * What one remembered invalidation counts against a store's `maxSize` beyond its key's length: the key
 * string's header and the cache's entry (Map slot, lru-cache's arrays, the sequence number). Measured
 * at 91–123 bytes per entry for 20,000–100,000 fresh keys (the Map's table grows by doubling), up to
 * ~160 in a store where each key is also a tombstone's (built by concatenation); this covers the worst.
 */
export const LOG_ENTRY_OVERHEAD = 176

/**
 * When each recently invalidated record key of a memory store was invalidated (the process-wide
 * `nextInvalidation` sequence), the newest {@link MAX_INVALIDATIONS} kept, and in a store bounded in
 * bytes no more than `maxBytes` of them (each key's length + {@link LOG_ENTRY_OVERHEAD}): a backfill
 * read before the invalidation of its key (or before one no longer remembered) must not land.
 */
export class InvalidationLog {
  readonly #invalidated: LRUCache<string, number>
  /** The most bytes the log counts (`undefined`: not counted, only {@link MAX_INVALIDATIONS} keys). */
  readonly #maxBytes: number | undefined
  /** The newest invalidation no longer remembered: backfills read before it are refused. */
  #forgottenUpTo = 0
  /** The newest invalidation that named a key the store could not tie to a record key (see {@link aliasesInvalidatedAt}). */
  #aliasesUpTo = 0
  /** The newest invalidation noted (or forgotten at once), see {@link newest}. */
  #newest = 0

  /** `maxBytes`: the most the log may count (a quarter of the store's `maxSize`); `undefined` for a store not bounded in bytes. */
  constructor(maxBytes?: number) {
    this.#maxBytes = maxBytes === undefined ? undefined : Math.max(1, Math.floor(maxBytes))
    this.#invalidated = new LRUCache<string, number>({
      // Bounded by sizes rather than `max`: with `max` lru-cache preallocates all 100,000 slots,
      // ~20 ms and ~2 MiB for every store created, whether it ever sees an invalidation or not.
      maxSize: this.#maxBytes ?? MAX_INVALIDATIONS,
      sizeCalculation: this.#maxBytes === undefined ? () => 1 : (_seq, key) => key.length + LOG_ENTRY_OVERHEAD,
      dispose: (seq, _key, reason) => {
        if (reason === 'evict' && seq > this.#forgottenUpTo) this.#forgottenUpTo = seq
      },
    })
  }

  /** What the log counts against the store's `maxSize` (0 for a store not bounded in bytes). */
  get bytes(): number {
    return this.#maxBytes === undefined ? 0 : this.#invalidated.calculatedSize
  }

  /**
   * Notes an invalidation of `recordKeys` now; `aliases`: some of them may be alternate keys the store
   * could not tie to a record key (of objects it did not hold).
   */
  invalidated(recordKeys: readonly string[], aliases = false): void {
    const seq = nextInvalidation()
    this.#newest = seq
    if (aliases) this.#aliasesUpTo = seq
    const maxBytes = this.#maxBytes
    for (const key of recordKeys) {
      if (maxBytes !== undefined && key.length + LOG_ENTRY_OVERHEAD > maxBytes) {
        // Too long to be remembered: as if remembered and forgotten at once.
        this.#invalidated.delete(key)
        this.#forgottenUpTo = seq
      } else this.#invalidated.set(key, seq)
    }
    if (maxBytes !== undefined) while (this.#invalidated.size > MAX_INVALIDATIONS) this.#invalidated.pop()
  }

  /** Treats every key as invalidated now (a clear, a fence): backfills read before now are refused. */
  forgetAll(): void {
    this.#forgottenUpTo = nextInvalidation()
    this.#newest = this.#forgottenUpTo
    if (this.#invalidated.size > 0) this.#invalidated.clear()
  }

  /**
   * The newest invalidation that may have named an alternate key of an object the store did not hold
   * (0: none yet): a backfill read before it must check its copy's alternate keys too
   * ({@link invalidatedAfter}); one read after it, only its record key.
   */
  get aliasesInvalidatedAt(): number {
    return this.#aliasesUpTo
  }

  /**
   * The newest invalidation the log was told of (0: none yet): no key was invalidated after it, so a
   * copy read when the sequence was at `newest` or later needs no look-up.
   */
  get newest(): number {
    return this.#newest
  }

  /** Whether one of `keys` was invalidated after `since` (an invalidation sequence number), as far as the log tells. */
  invalidatedAfter(keys: readonly string[], since: number): boolean {
    for (const key of keys) if (this.invalidatedAt(key) > since) return true
    return false
  }

  /** When `recordKey` was last invalidated, as far as the log tells (a forgotten one counts as the newest forgotten). */
  invalidatedAt(recordKey: string): number {
    return this.#invalidated.size === 0 ? this.#forgottenUpTo : (this.#invalidated.peek(recordKey) ?? this.#forgottenUpTo)
  }
}
