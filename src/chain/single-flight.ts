import type { StoreEntry } from '../contracts/base-store.js'

interface Flight {
  readonly entry: Promise<StoreEntry | undefined>
  /** The chain's write clock when the read began. */
  readonly seq: number
}

const ignore = (): void => {}

/**
 * Reads of single keys going below a chain's first layer, so that concurrent misses of one key in
 * this process share one read. Only a read that no write has overtaken may be joined: one that began
 * before a write may answer with what the write replaced.
 *
 * Every promise it creates has a handler: a failed shared read rejects each caller that joined it
 * (through {@link SingleFlight.join}), and never surfaces as an unhandled rejection.
 */
export class SingleFlight {
  readonly #flights = new Map<string, Flight>()

  /** The read of `key` in flight that began at write-clock `seq`, or `undefined`. */
  join(key: string, seq: number): Promise<StoreEntry | undefined> | undefined {
    const flight = this.#flights.get(key)
    return flight !== undefined && flight.seq === seq ? flight.entry : undefined
  }

  /** Registers `batch`, a read of `keys` (distinct, in order) that began at write-clock `seq`. */
  start(keys: readonly string[], batch: Promise<readonly (StoreEntry | undefined)[]>, seq: number): void {
    keys.forEach((key, u) => {
      const flight: Flight = { entry: batch.then((entries) => entries[u]), seq }
      // Joiners await `entry` themselves; this handler only keeps a read nobody joined from being unhandled.
      flight.entry.catch(ignore)
      this.#flights.set(key, flight)
    })
    const done = (): void => {
      for (const key of keys) {
        const flight = this.#flights.get(key)
        if (flight !== undefined && flight.seq === seq) this.#flights.delete(key)
      }
    }
    batch.then(done, done)
  }
}
