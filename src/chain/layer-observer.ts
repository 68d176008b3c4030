import { EventEmitter } from 'node:events'
import type { Store } from '../contracts/base-store.js'
import { settleHook } from '../core/call-hook.js'
import { messageOf } from '../core/unavailable-unless-ours.js'
import { ChainMetrics, type MeterLike } from './metrics.js'

/** Counters of one layer, since the chain was created. */
export interface LayerStats {
  readonly name: string
  /** Lookups this layer answered. */
  hits: number
  /** Lookups this layer was asked and did not have. */
  misses: number
  /** Operations on this layer that failed. */
  errors: number
  /** Calls not sent because the layer's circuit was open or repairs were pending. */
  skipped: number
  /** Copies written into this layer from a layer below it: one per lookup answered below (three lookups of one object count 3). */
  backfills: number
  /** Objects whose copy in this layer awaits repair (an invalidation that could not be applied yet). */
  pendingRepairs: number
}

/**
 * What a chain was doing with a layer when it failed (or, in metrics, what a timed call was).
 * `transaction` (`chain.transaction()`) is only ever the authoritative layer's, so never a `cacheError`'s.
 */
export type LayerOperation = 'get' | 'put' | 'delete' | 'backfill' | 'invalidate' | 'repair' | 'lease' | 'stale' | 'clear' | 'transaction'

/** The payload of a `cacheError` event. */
export interface CacheErrorEvent {
  readonly layer: string
  readonly index: number
  readonly operation: LayerOperation
  readonly error: unknown
}

/** The events of a chain's `events` emitter, each with its listener's arguments. */
export interface ChainEvents {
  /** A cache layer failed (see {@link CacheErrorEvent}). */
  cacheError: [event: CacheErrorEvent]
}

/**
 * Everything a chain records about its layers — `stats()` counters, `cacheError` events and
 * OpenTelemetry metrics — in one place, so every path records the same way.
 */
export class LayerObserver {
  readonly events = new EventEmitter<ChainEvents>()
  readonly #names: readonly string[]
  readonly #stats: Omit<LayerStats, 'pendingRepairs'>[]
  readonly #metrics: ChainMetrics | undefined

  readonly #chain: string

  constructor(layers: readonly Store[], meter: MeterLike | undefined, chain: string) {
    this.#chain = chain
    this.#names = layers.map((l) => l.name)
    this.#stats = layers.map((l) => ({ name: l.name, hits: 0, misses: 0, errors: 0, skipped: 0, backfills: 0 }))
    this.#metrics = meter === undefined ? undefined : new ChainMetrics(meter, chain)
  }

  /** Whether metrics are recorded (timing a call costs a clock read). */
  get metered(): boolean {
    return this.#metrics !== undefined
  }

  /** The counters, with each layer's pending repairs. */
  snapshot(pendingRepairs: (index: number) => number): LayerStats[] {
    return this.#stats.map((s, i) => ({ ...s, pendingRepairs: pendingRepairs(i) }))
  }

  /** Layer `index` answered `hits` of `asked` lookups. */
  looked(index: number, asked: number, hits: number): void {
    const stats = this.#stats[index] as LayerStats
    stats.hits += hits
    stats.misses += asked - hits
    if (this.#metrics !== undefined) {
      const name = this.#names[index] as string
      this.#metrics.lookups(name, 'hit', hits)
      this.#metrics.lookups(name, 'miss', asked - hits)
    }
  }

  /** Layer `index` was not asked for `count` lookups, because it failed or was skipped. */
  lookupsLost(index: number, count: number, skipped: boolean): void {
    this.#metrics?.lookups(this.#names[index] as string, skipped ? 'skipped' : 'error', count)
  }

  /** `count` objects were backfilled into layer `index`. */
  backfilled(index: number, count: number): void {
    ;(this.#stats[index] as LayerStats).backfills += count
  }

  /** A call to layer `index` was not sent (circuit open, repairs pending). */
  skipped(index: number): void {
    ;(this.#stats[index] as LayerStats).skipped++
  }

  /**
   * A call to layer `index` failed: counted and measured; for a cache layer (not the authoritative
   * last one, whose failures reject the caller's call) also emitted as `cacheError`.
   */
  failed(index: number, operation: LayerOperation, error: unknown): void {
    ;(this.#stats[index] as LayerStats).errors++
    const layer = this.#names[index] as string
    this.#metrics?.error(layer, operation)
    if (index < this.#names.length - 1 && this.events.listenerCount('cacheError') > 0) {
      this.#emit({ layer, index, operation, error })
    }
  }

  /**
   * Calls every `cacheError` listener, each on its own: what one throws (or its promise rejects with)
   * is a process warning, never the chain's — a report must not change the call it reports on, stop a
   * repair loop or leave a rejection unhandled.
   */
  #emit(event: CacheErrorEvent): void {
    for (const listener of this.events.rawListeners('cacheError') as ((e: CacheErrorEvent) => unknown)[]) {
      const warn = (err: unknown) => this.#listenerThrew(listener, err)
      try {
        settleHook(listener.call(this.events, event), warn)
      } catch (err) {
        warn(err)
      }
    }
  }

  /** Listeners that threw, each warned about once (one that throws on every failure would flood stderr). */
  readonly #warned = new WeakSet<object>()

  #listenerThrew(listener: object, err: unknown): void {
    if (this.#warned.has(listener)) return
    this.#warned.add(listener)
    try {
      process.emitWarning(`stockpyle chain "${this.#chain}": a cacheError listener threw (warned once per listener): ${messageOf(err)}`, {
        type: 'StockpyleWarning',
        code: 'STOCKPYLE_LISTENER',
      })
    } catch {}
  }

  /** A call to layer `index` took `ms` milliseconds. */
  duration(index: number, operation: string, ms: number): void {
    this.#metrics?.duration(this.#names[index] as string, operation, ms)
  }

  /** A copy from layer `index` was served `ms` past its expiry. */
  staleAge(index: number, ms: number): void {
    this.#metrics?.staleAge(this.#names[index] as string, ms)
  }

  /** The authoritative layer failed and `count` lookups were answered from stale copies instead. */
  staleServed(count: number, error: unknown): void {
    this.#metrics?.staleServed(count, error)
  }
}
