import type { InvalidationListener } from '../contracts/invalidation-bus.js'
import { callHook } from '../core/call-hook.js'

/**
 * The listeners of one bus and its connection state (up = subscribed and delivering). Fans out
 * deliveries; a listener that throws never stops the others, and one that returns a promise (an
 * `async` listener) never leaves its rejection unhandled: the error goes to `report`.
 */
export class BusListeners {
  readonly #listeners = new Set<InvalidationListener>()
  readonly #report: (err: unknown) => void
  #up = false

  /** @param report receives what a listener threw or rejected with; it must not throw. */
  constructor(report: (err: unknown) => void) {
    this.#report = report
  }

  /** True while subscribed and delivering. */
  get up(): boolean {
    return this.#up
  }

  /** Number of listeners. */
  get size(): number {
    return this.#listeners.size
  }

  /** Adds a listener, calling its `onUp` at once when already up. Returns the function that removes it. */
  add(listener: InvalidationListener): () => void {
    // A wrapper, so the same listener object may be subscribed twice and removed once per subscription.
    const entry: InvalidationListener = {
      onInvalidate: (keys) => listener.onInvalidate(keys),
      onDown: () => listener.onDown(),
      onUp: () => listener.onUp(),
    }
    this.#listeners.add(entry)
    if (this.#up) this.#call(entry, 'onUp')
    return () => {
      this.#listeners.delete(entry)
    }
  }

  /** Delivers keys to every listener. */
  invalidate(keys: readonly string[]): void {
    for (const l of [...this.#listeners]) {
      callHook(l.onInvalidate, keys, this.#report)
    }
  }

  /** The connection is lost: tells every listener once (no-op while already down). */
  down(): void {
    if (!this.#up) return
    this.#up = false
    for (const l of [...this.#listeners]) this.#call(l, 'onDown')
  }

  /** Subscribed (again): tells every listener once (no-op while already up). */
  markUp(): void {
    if (this.#up) return
    this.#up = true
    for (const l of [...this.#listeners]) this.#call(l, 'onUp')
  }

  /** Removes every listener without telling them. */
  clear(): void {
    this.#listeners.clear()
  }

  #call(l: InvalidationListener, method: 'onUp' | 'onDown'): void {
    callHook(l[method], undefined, this.#report)
  }
}
