import type { InvalidationBus } from '../../contracts/invalidation-bus.js'
import { InvalidOptionError } from '../../core/errors.js'

/** What a memory store does when its bus speaks. */
export interface BusHandlers {
  /** Another process invalidated these record keys. */
  evict(keys: readonly string[]): void
  /** Drops everything: the bus went down (`fence` false) or came back (`fence` true: refuse backfills read meanwhile). */
  clear(fence: boolean): void
}

/**
 * A memory store's link to its invalidation bus (`bus` option): subscribes, knows whether the bus is
 * up, publishes, and tells listeners ({@link Store.onRemoteChange}: a chain's negative caching) each
 * time objects may have changed elsewhere. Without a bus it is always up and never calls a listener.
 */
export class BusLink {
  readonly #bus: InvalidationBus | undefined
  #down: boolean
  #unsubscribe: (() => void) | undefined
  readonly #listeners = new Set<(coherent: boolean) => void>()

  /** @throws InvalidOptionError when `bus` is given and is not an InvalidationBus. */
  constructor(store: string, bus: InvalidationBus | undefined, handlers: BusHandlers) {
    if (bus !== undefined && (typeof bus?.publish !== 'function' || typeof bus.subscribe !== 'function')) {
      throw new InvalidOptionError(`${store}: option \`bus\` must implement publish and subscribe`)
    }
    this.#bus = bus
    this.#down = bus !== undefined
    this.#unsubscribe = bus?.subscribe({
      onInvalidate: (keys) => {
        handlers.evict(keys)
        this.#tell(true)
      },
      onDown: () => {
        this.#down = true
        handlers.clear(false)
        this.#tell(false)
      },
      onUp: () => {
        handlers.clear(true)
        this.#down = false
        this.#tell(true)
      },
    })
  }

  /** Whether a bus was given (without one, {@link publish} has no one to tell). */
  get configured(): boolean {
    return this.#bus !== undefined
  }

  /** True while a bus is configured but disconnected (until it has come back and the store was cleared). */
  get down(): boolean {
    return this.#down
  }

  /**
   * Calls `listener` each time the bus delivers an invalidation, goes down or comes back — and at once
   * with `false` while it is down now; returns the function that stops it.
   */
  listen(listener: (coherent: boolean) => void): () => void {
    if (this.#bus === undefined) return () => {}
    this.#listeners.add(listener)
    if (this.#down) listener(false)
    return () => this.#listeners.delete(listener)
  }

  /** Sends record keys to the other processes (nothing without a bus). @throws what the bus's publish rejects with. */
  async publish(recordKeys: readonly string[]): Promise<void> {
    if (this.#bus !== undefined) await this.#bus.publish(recordKeys)
  }

  /** Unsubscribes from the bus (which stays open: it is the caller's). */
  close(): void {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    this.#listeners.clear()
  }

  #tell(coherent: boolean): void {
    for (const listener of this.#listeners) listener(coherent)
  }
}
