import { LRUCache } from 'lru-cache'
import { nextInvalidation } from '../../core/invalidation-sequence.js'

/**
 * Record keys whose last invalidation a store remembers (newest first). A backfill read before an
 * invalidation it no longer remembers is refused, whatever its key.
 */
export const MAX_INVALIDATIONS = 100_000

/**
 * When each recently invalidated record key of a memory store was invalidated (the process-wide
 * `nextInvalidation` sequence), the newest {@link MAX_INVALIDATIONS} kept: a backfill read before the
 * invalidation of its key (or before one no longer remembered) must not land.
 */
export class InvalidationLog {
  readonly #invalidated = new LRUCache<string, number>({
    // Bounded by a size of 1 per key rather than `max`: with `max` lru-cache preallocates all 100,000
    // slots, ~20 ms and ~2 MiB for every store created, whether it ever sees an invalidation or not.
    maxSize: MAX_INVALIDATIONS,
    sizeCalculation: () => 1,
    dispose: (seq, _key, reason) => {
      if (reason === 'evict' && seq > this.#forgottenUpTo) this.#forgottenUpTo = seq
    },
  })
  /** The newest invalidation no longer remembered: backfills read before it are refused. */
  #forgottenUpTo = 0

  /** Notes an invalidation of `recordKeys` now. */
  invalidated(recordKeys: readonly string[]): void {
    const seq = nextInvalidation()
    for (const key of recordKeys) this.#invalidated.set(key, seq)
  }

  /** Treats every key as invalidated now (a clear, a fence): backfills read before now are refused. */
  forgetAll(): void {
    this.#forgottenUpTo = nextInvalidation()
    if (this.#invalidated.size > 0) this.#invalidated.clear()
  }

  /** When `recordKey` was last invalidated, as far as the log tells (a forgotten one counts as the newest forgotten). */
  invalidatedAt(recordKey: string): number {
    return this.#invalidated.size === 0 ? this.#forgottenUpTo : (this.#invalidated.peek(recordKey) ?? this.#forgottenUpTo)
  }
}
