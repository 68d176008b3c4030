import { InvalidArgumentError, type InvalidationBus, type InvalidationListener, StoreClosedError, StoreUnavailableError } from '../index.js'
import { shown } from './shown.js'

interface Member {
  readonly origin: number
  readonly listener: InvalidationListener
}

/**
 * An in-process invalidation hub: each `connect()` returns a bus for one simulated process. Delivery is
 * synchronous; `down()`/`up()` simulate an outage of every connection. Each bus keeps the
 * {@link InvalidationBus} contract (`runBusConformance`): `publish` of anything but an array of strings
 * rejects, and `subscribe` of anything but a listener throws, with `InvalidArgumentError`; while the hub
 * is down `publish` rejects with `StoreUnavailableError`; after `close()` its listeners got `onDown`, `publish` rejects and `subscribe`
 * throws `StoreClosedError`.
 */
export class LocalBusHub {
  readonly #members = new Set<Member>()
  #next = 0
  #isDown = false
  /** Keys published, per call. */
  readonly published: (readonly string[])[] = []

  /** A bus for one simulated process. */
  connect(): InvalidationBus {
    const origin = ++this.#next
    const name = `local-bus#${origin}`
    const hub = this
    const mine = new Set<Member>()
    let closed = false
    return {
      name,
      async publish(keys) {
        if (closed) throw new StoreClosedError(`${name} is closed: publish was called after close()`)
        if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
          throw new InvalidArgumentError(`${name} publish takes an array of string keys, got ${shown(keys)}`)
        }
        if (hub.#isDown) throw new StoreUnavailableError(`${name}: the hub is down`)
        hub.published.push(keys)
        if (keys.length === 0) return
        for (const m of hub.#members) if (m.origin !== origin) m.listener.onInvalidate(keys)
      },
      subscribe(listener) {
        if (closed) throw new StoreClosedError(`${name} is closed: subscribe was called after close()`)
        const l = listener as Partial<InvalidationListener> | undefined
        if (typeof l?.onInvalidate !== 'function' || typeof l.onDown !== 'function' || typeof l.onUp !== 'function') {
          throw new InvalidArgumentError(`${name} subscribe takes a listener with onInvalidate, onDown and onUp, got ${shown(listener)}`)
        }
        const member = { origin, listener }
        hub.#members.add(member)
        mine.add(member)
        if (!hub.#isDown) listener.onUp()
        return () => {
          hub.#members.delete(member)
          mine.delete(member)
        }
      },
      async close() {
        if (closed) return
        closed = true
        for (const m of mine) {
          hub.#members.delete(m)
          m.listener.onDown()
        }
        mine.clear()
      },
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
