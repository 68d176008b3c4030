import type { InvalidationBus, InvalidationListener } from '../index.js'

/**
 * An in-process invalidation hub: each `connect()` returns a bus for one simulated process. Delivery is
 * synchronous; `down()`/`up()` simulate an outage of every connection.
 */
export class LocalBusHub {
  readonly #members = new Set<{ origin: number; listener: InvalidationListener }>()
  #next = 0
  #isDown = false
  /** Keys published, per call. */
  readonly published: (readonly string[])[] = []

  /** A bus for one simulated process. */
  connect(): InvalidationBus {
    const origin = ++this.#next
    const hub = this
    return {
      name: `local-bus#${origin}`,
      async publish(keys) {
        if (hub.#isDown) throw new Error('local bus is down')
        hub.published.push(keys)
        for (const m of hub.#members) if (m.origin !== origin) m.listener.onInvalidate(keys)
      },
      subscribe(listener) {
        const member = { origin, listener }
        hub.#members.add(member)
        if (!hub.#isDown) listener.onUp()
        return () => hub.#members.delete(member)
      },
      async close() {},
    }
  }

  /** Every connection drops. */
  down(): void {
    this.#isDown = true
    for (const m of this.#members) m.listener.onDown()
  }

  /** Every connection comes back. */
  up(): void {
    this.#isDown = false
    for (const m of this.#members) m.listener.onUp()
  }
}
