import type { KeyValueBackend, KeyValueEntry } from '../index.js'

/**
 * A {@link KeyValueBackend} over a `Map`, with `addMany`: a reference implementation of the
 * byte-level contract, for tests and as a model for your own backend. Counts calls per method.
 */
export class MapBackend implements KeyValueBackend {
  readonly name = 'map'
  readonly #data = new Map<string, { value: Uint8Array; expiresAt: number | undefined }>()
  readonly #now: () => number
  /** Calls received, per method. */
  readonly calls = { getMany: 0, setMany: 0, addMany: 0, deleteMany: 0 }

  /** @param now the time source for expiry, ms since the epoch (default `Date.now`). */
  constructor(now: () => number = Date.now) {
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
