import type { Keyv } from 'keyv'
import type { KeyValueBackend, KeyValueEntry } from '../../contracts/key-value-backend.js'
import { isStockpyleError, SerializationError, StoreUnavailableError, show } from '../../core/errors.js'
import type { Clock } from '../../core/lifetime.js'
import { withTimeout } from '../../core/with-timeout.js'

/** Options of {@link KeyvBackend}. */
export interface KeyvBackendOptions {
  /** The Keyv instance; its `throwOnErrors` is switched on so that failures reach the caller. */
  readonly keyv: Keyv
  /** Upper bound in ms for each operation. */
  readonly timeout: number
  /** Time source for turning absolute expiries into Keyv's relative ttl. */
  readonly clock: Clock
  /** Name for messages, e.g. `keyv(keyv)`. */
  readonly name: string
  /** Call `keyv.disconnect()` in `close()`. */
  readonly disconnect: boolean
}

/**
 * A {@link KeyValueBackend} over any Keyv 5 instance (and so any Keyv storage adapter).
 *
 * - Values are written as `Buffer`s. Keyv's default serializer turns them into `:base64:` JSON strings
 *   and back; with serialization switched off (`serialize: undefined`) a `Map` holds the Buffers
 *   themselves. Whatever comes back — a `Uint8Array`, a JSON-revived `{type: 'Buffer', data}` or a
 *   `:base64:` string — is turned back into bytes; anything else is a `SerializationError`.
 * - The ttl passed to Keyv is the time left until `expiresAt` by the store's clock, in ms rounded up;
 *   an entry already expired is deleted instead. An entry that never expires gets no ttl, so the
 *   Keyv instance's own default `ttl` (if any) still bounds it.
 * - Keyv swallows adapter errors unless `throwOnErrors` is on (a failed read becomes a miss, a failed
 *   write returns `false`), so the backend turns it on, treats a `false` from `set` as a failure, and
 *   reads key by key when the adapter has no `getMany` (Keyv's own fallback hides errors).
 *   Every failure or an operation slower than `timeout` rejects with `StoreUnavailableError`.
 */
export class KeyvBackend implements KeyValueBackend {
  readonly name: string
  readonly #keyv: Keyv
  readonly #timeout: number
  readonly #clock: Clock
  readonly #disconnect: boolean

  constructor(options: KeyvBackendOptions) {
    this.#keyv = options.keyv
    this.#timeout = options.timeout
    this.#clock = options.clock
    this.name = options.name
    this.#disconnect = options.disconnect
    this.#keyv.throwOnErrors = true
  }

  /** The Keyv instance in use. */
  get keyv(): Keyv {
    return this.#keyv
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return []
    const unique = [...new Set(keys)]
    const values = await this.#guard('get', () => {
      const keyv = this.#keyv
      if (typeof keyv.store?.getMany === 'function') return keyv.getMany<unknown>(unique)
      return Promise.all(unique.map((key) => keyv.get<unknown>(key)))
    })
    const bytes = unique.map((key, i) => this.#bytes(key, values[i]))
    if (unique.length === keys.length) return bytes
    const byKey = new Map(unique.map((key, i) => [key, bytes[i]]))
    return keys.map((key) => byKey.get(key))
  }

  async setMany(entries: readonly KeyValueEntry[]): Promise<void> {
    if (entries.length === 0) return
    const last = new Map<string, KeyValueEntry>()
    for (const entry of entries) {
      last.delete(entry.key) // later entries win
      last.set(entry.key, entry)
    }
    const now = this.#clock.now()
    const sets: { key: string; value: Buffer; ttl?: number }[] = []
    const expired: string[] = []
    for (const entry of last.values()) {
      const value = Buffer.isBuffer(entry.value)
        ? entry.value
        : Buffer.from(entry.value.buffer, entry.value.byteOffset, entry.value.byteLength)
      if (entry.expiresAt === undefined) sets.push({ key: entry.key, value })
      else {
        const ttl = Math.ceil(entry.expiresAt - now)
        if (ttl > 0) sets.push({ key: entry.key, value, ttl })
        else expired.push(entry.key)
      }
    }
    await this.#guard('set', async () => {
      const [results] = await Promise.all([
        sets.length > 0 ? this.#keyv.setMany(sets) : [],
        expired.length > 0 ? this.#keyv.deleteMany(expired) : true,
      ])
      // an adapter's own setMany may resolve to nothing: only an explicit `false` is a failure
      const failed = Array.isArray(results) ? (results as unknown[]).indexOf(false) : -1
      if (failed !== -1) throw new Error(`Keyv reported a failed set of ${show(sets[failed]?.key)}`)
    })
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return
    // the result is `false` both on failure and when a key was absent; failures throw (throwOnErrors)
    await this.#guard('delete', () => this.#keyv.deleteMany([...new Set(keys)]))
  }

  async close(): Promise<void> {
    if (this.#disconnect) await this.#guard('close', () => this.#keyv.disconnect())
  }

  #bytes(key: string, value: unknown): Uint8Array | undefined {
    if (value === undefined || value === null) return undefined
    if (value instanceof Uint8Array) return value
    if (typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
      return Buffer.from((value as { data: number[] }).data)
    }
    if (typeof value === 'string' && value.startsWith(':base64:')) return Buffer.from(value.slice(8), 'base64')
    throw new SerializationError(`${this.name} store get of key ${show(key)}: Keyv returned ${show(value)}, not bytes`)
  }

  async #guard<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(work(), this.#timeout, () => this.#timedOut(operation))
    } catch (err) {
      if (isStockpyleError(err)) throw err
      const message = err instanceof Error ? err.message : String(err)
      throw new StoreUnavailableError(`${this.name} store ${operation} failed: ${message}`, { cause: err })
    }
  }

  #timedOut(operation: string): StoreUnavailableError {
    return new StoreUnavailableError(`${this.name} store ${operation}: no answer within ${this.#timeout} ms (option \`timeout\`)`)
  }
}
