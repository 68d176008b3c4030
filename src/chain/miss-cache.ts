import { LRUCache } from 'lru-cache'
import type { Clock } from '../core/lifetime.js'

/** Keys a chain remembers as missing everywhere, at most. */
export const MAX_MISSES = 100_000

/**
 * Negative caching: lookups that missed in every layer, remembered for a while (`missLifetime`) so
 * repeated gets of absent objects do not reach the database. Bounded to 100,000 keys (least recently
 * used dropped first).
 */
export class MissCache {
  // maxSize with a size of 1 per key, not `max`: with `max` lru-cache preallocates every slot (~20 ms
  // and ~2 MiB per chain)
  readonly #until = new LRUCache<string, number>({ maxSize: MAX_MISSES, sizeCalculation: () => 1 })
  readonly #ms: number
  readonly #clock: Clock
  /** Layers whose invalidation bus is down: while any is, changes elsewhere go unheard, so no miss is kept. */
  readonly #deaf = new Set<number>()

  constructor(ms: number, clock: Clock) {
    this.#ms = ms
    this.#clock = clock
  }

  /** Whether `key` missed everywhere less than `missLifetime` ago. */
  has(key: string): boolean {
    return this.#deaf.size === 0 && (this.#until.get(key) ?? 0) > this.#clock.now()
  }

  /** Remembers that these keys missed in every layer. */
  remember(keys: readonly string[]): void {
    if (this.#deaf.size > 0) return
    const until = this.#clock.now() + this.#ms
    for (const key of keys) this.#until.set(key, until)
  }

  /** Forgets every key (the caches were cleared, or objects changed elsewhere: `batchInvalidate`). */
  clear(): void {
    this.#until.clear()
  }

  /**
   * Layer `layer` heard of changes made elsewhere (`Store.onRemoteChange`): every miss is forgotten (a
   * bus names record keys, not the lookups that missed), and none is kept while its bus is down.
   */
  remoteChange(layer: number, coherent: boolean): void {
    this.#until.clear()
    if (coherent) this.#deaf.delete(layer)
    else this.#deaf.add(layer)
  }

  /** Forgets these keys (they were written or invalidated). */
  forget(keys: readonly string[]): void {
    for (const key of keys) this.#until.delete(key)
  }
}
