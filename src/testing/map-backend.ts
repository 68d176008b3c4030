import { InvalidOptionError, type KeyValueBackend, type KeyValueEntry } from '../index.js'
import { shown } from './shown.js'

/**
 * A {@link KeyValueBackend} over a `Map`, with `addMany` and `refillMany`: a reference implementation
 * of the byte-level contract, for tests and as a model for your own backend. Counts calls per method.
 */
export class MapBackend implements KeyValueBackend {
  readonly name = 'map'
  readonly #data = new Map<string, { value: Uint8Array; expiresAt: number | undefined }>()
  readonly #now: () => number
  /** Calls received, per method. */
  readonly calls = { getMany: 0, setMany: 0, addMany: 0, refillMany: 0, deleteMany: 0 }

  /**
   * @param now the time source for expiry, ms since the epoch (default `Date.now`); for a `Clock`, pass
   *   `() => clock.now()`.
   * @throws InvalidOptionError when `now` is not a function.
   */
  constructor(now: () => number = Date.now) {
    if (typeof now !== 'function') {
      const clock = typeof (now as { now?: unknown } | null)?.now === 'function' ? ': for a clock, pass () => clock.now()' : ''
      throw new InvalidOptionError(`MapBackend: now must be a function returning ms since the epoch, got ${shown(now)}${clock}`)
    }
    this.#now = now
  }

  #live(key: string): Uint8Array | undefined {
    const entry = this.#data.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#now()) {
      this.#data.delete(key)
      return undefined
    }
    return entry.value
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.calls.getMany++
    return keys.map((k) => this.#live(k))
  }

  async setMany(entries: readonly KeyValueEntry[]): Promise<void> {
    this.calls.setMany++
    for (const e of entries) this.#data.set(e.key, { value: Uint8Array.from(e.value), expiresAt: e.expiresAt })
  }

  async addMany(entries: readonly KeyValueEntry[]): Promise<boolean[]> {
    this.calls.addMany++
    return entries.map((e) => {
      if (this.#live(e.key) !== undefined) return false
      this.#data.set(e.key, { value: Uint8Array.from(e.value), expiresAt: e.expiresAt })
      return true
    })
  }

  /**
   * Like {@link addMany}, and also over an expired record a store with `grace` keeps for stale reads, or
   * a tombstone (or lease) whose expiry has passed (see {@link expired}); never over anything else. Checked and written in one step: nothing
   * else runs in between.
   */
  async refillMany(entries: readonly KeyValueEntry[], expiredBy: number): Promise<boolean[]> {
    this.calls.refillMany++
    return entries.map((e) => {
      const held = this.#live(e.key)
      if (held !== undefined && !expired(held, expiredBy)) return false
      this.#data.set(e.key, { value: Uint8Array.from(e.value), expiresAt: e.expiresAt })
      return true
    })
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    this.calls.deleteMany++
    for (const k of keys) this.#data.delete(k)
  }

  async clear(prefix: string): Promise<void> {
    for (const key of [...this.#data.keys()]) if (key.startsWith(prefix)) this.#data.delete(key)
  }

  async close(): Promise<void> {
    this.#data.clear()
  }

  /** Number of keys held (records, aliases and tombstones). */
  get size(): number {
    return this.#data.size
  }
}

/**
 * Whether `bytes` are a record or tombstone envelope whose expiry has come by `expiredBy` (ms since the
 * epoch). The envelope header: byte 0 the format (1), byte 1 the kind (1 record, 2 alias, 3 tombstone —
 * leases are tombstones too), bytes 2–9 the expiry as a big-endian float64 (0 = never).
 */
function expired(bytes: Uint8Array, expiredBy: number): boolean {
  if (bytes.byteLength < 10 || bytes[0] !== 1 || (bytes[1] !== 1 && bytes[1] !== 3)) return false
  const at = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(2)
  return at !== 0 && at <= expiredBy
}
