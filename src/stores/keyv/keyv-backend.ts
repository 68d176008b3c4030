import { createHash } from 'node:crypto'
import type { Keyv } from 'keyv'
import type { KeyValueBackend, KeyValueEntry } from '../../contracts/key-value-backend.js'
import { InvalidOptionError, StoreUnavailableError, show } from '../../core/errors.js'
import type { Clock } from '../../core/lifetime.js'
import { notBytes } from '../../core/not-bytes.js'
import { unavailableUnlessOurs } from '../../core/unavailable-unless-ours.js'
import { withTimeout } from '../../core/with-timeout.js'
import { type KeyvAdapterTraits, keyvAdapterTraits, MAX_RELATIVE_SECONDS } from './keyv-adapter-traits.js'
import { checkKeyvBackendOptions, type KeyvBackendOptions } from './keyv-backend-options.js'
import { checkKeyvPrefixing, keyvKeyPrefix, unlistableReason } from './keyv-key-prefix.js'

export type { KeyvBackendOptions } from './keyv-backend-options.js'

/** Keys deleted per `deleteMany` while clearing. */
const CLEAR_BATCH = 500

/**
 * Most listings of the namespace one `clear()` makes: it lists, deletes what it found, and lists again
 * until a listing finds nothing (an adapter paging by offset skips keys when others are deleted under
 * it — Keyv's iterator itself deletes the expired entries it meets). Only writes made while the
 * clear runs keep it going that long; what they store may stay.
 */
const CLEAR_PASSES = 10

/** What pg-pool rejects a second `end()` with: the pool is ended already (see {@link KeyvBackend.close}). */
const POOL_ENDED_TWICE = 'Called end on pool more than once'

/** Length of a shortened key's `#` and SHA-256 digest (base64url, 43 characters). */
const DIGEST_BYTES = 44

/** Why `clear()` is refused without a prefix (the text after "cannot clear()"). */
const PREFIXLESS =
  " without a prefix: that would remove every key of the Keyv namespace (the application's own and other stores'); give the store a prefix"

/**
 * A {@link KeyValueBackend} over any Keyv 5 instance (and so any Keyv storage adapter).
 *
 * - Keys reach the adapter as `<namespace>:<key>` (Keyv's namespace, when it prefixes keys) through
 *   every Keyv method alike, whatever the key (see {@link keyvKeyPrefix}: Keyv 5.6 itself skipped the
 *   namespace on get/set only, for a key already starting with it). Change neither the Keyv's
 *   `namespace` nor its `useKeyPrefix` while stores use it: the store would look elsewhere.
 * - Values are written as `Buffer`s. Keyv's default serializer turns them into `:base64:` JSON strings
 *   and back; with serialization switched off (`serialize: undefined`) a `Map` holds the Buffers
 *   themselves. Whatever comes back — a `Uint8Array`, a JSON-revived `{type: 'Buffer', data}` or a
 *   `:base64:` string — is turned back into bytes; anything else (a string another user of the Keyv
 *   wrote there, say) is answered as a corrupt entry (`notBytes`), which the store replaces by a
 *   tombstone and reports with `CorruptEntryError`.
 * - The ttl passed to Keyv is the time left until `expiresAt` by the store's clock, in ms rounded up;
 *   an entry already expired is deleted instead. An entry that never expires gets no ttl, so the
 *   Keyv instance's own default `ttl` (if any) still bounds it. Adapters that truncate the ttl to
 *   whole seconds (@keyv/memcache, see {@link KeyvAdapterTraits}) get it rounded up to whole seconds
 *   plus one, and none beyond 30 days (memcached would read it as a date in 1970): lifetimes never
 *   end early, and the envelope's exact expiry, checked on every read, still ends them on time.
 * - Keyv swallows adapter errors unless `throwOnErrors` is on (a failed read becomes a miss, a failed
 *   write returns `false`), so the backend turns it on (and the adapter's own switch, @keyv/redis),
 *   treats a `false` from `set` as a failure, and reads key by key when the adapter has no `getMany`
 *   (Keyv's own fallback hides errors) or its batch methods hide failures (@keyv/memcache).
 *   Every failure or an operation slower than `timeout` rejects with `StoreUnavailableError`.
 */
export class KeyvBackend implements KeyValueBackend {
  readonly name: string
  /** `true` when the adapter keeps whole seconds (the ttl is then rounded up). */
  readonly secondResolution: boolean
  /** What this backend works around in the Keyv instance's adapter. */
  readonly traits: KeyvAdapterTraits
  readonly #keyv: Keyv
  readonly #timeout: number
  readonly #clock: Clock
  readonly #disconnect: boolean
  /**
   * Removes every key of the Keyv namespace that starts with `prefix`; present only when the store
   * can: it has a prefix and Keyv can list its keys as written (`keyv.iterator`: a Map, SQLite,
   * PostgreSQL, MySQL, MongoDB, Redis…, and a namespace as {@link unlistableReason} requires), or the
   * store was told it owns the namespace (`ownsNamespace`), when `keyv.clear()` empties it (what that
   * clears is the adapter's choice: a Map store, the whole Map). Without a prefix and without
   * `ownsNamespace` it is absent: every key of the namespace — the application's own, other stores' —
   * starts with `''`. {@link clearRefusal} then says why.
   *
   * Listing, it collects the keys of the prefix, deletes them in batches of {@link CLEAR_BATCH}, and
   * lists again until a listing finds none. An error the adapter only emits meanwhile (the PostgreSQL
   * iterator ends early and emits its query error) rejects the call as a thrown one does.
   * @throws StoreUnavailableError when a step fails or takes longer than `timeout`.
   */
  readonly clear?: (prefix: string) => Promise<void>
  /**
   * Why {@link clear} is absent, as the rest of "cannot clear()" (e.g. `': its Keyv adapter cannot list
   * keys'`); `undefined` when it is present.
   */
  readonly clearRefusal: string | undefined

  /** @throws InvalidOptionError (synchronously) naming an unknown, missing or invalid option. */
  constructor(options: KeyvBackendOptions) {
    const checked = checkKeyvBackendOptions(options)
    this.#keyv = checked.keyv
    this.#timeout = checked.timeout
    this.#clock = checked.clock
    this.name = checked.name
    this.#disconnect = checked.disconnect
    this.#keyv.throwOnErrors = true
    this.traits = keyvAdapterTraits(this.#keyv.store)
    this.secondResolution = this.traits.secondResolution
    this.#checkNamespace()
    checkKeyvPrefixing(this.#keyv, `${this.name} store`)
    if (this.traits.ownThrowOnErrors) (this.#keyv.store as { throwOnErrors: boolean }).throwOnErrors = true
    const prefix = checked.prefix
    const unlistable = prefix === '' ? PREFIXLESS : unlistableReason(this.#keyv, this.traits, prefix)
    if (unlistable === undefined) this.clear = (prefix) => this.#watched(() => this.#clearListed(prefix))
    else if (checked.ownsNamespace) this.clear = () => this.#watched(() => this.#guard('clear', () => this.#keyv.clear()))
    this.clearRefusal = this.clear === undefined ? (prefix === '' ? PREFIXLESS : `: ${unlistable}`) : undefined
  }

  /** The Keyv instance in use. */
  get keyv(): Keyv {
    return this.#keyv
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return []
    const unique = [...new Set(keys)].map((key) => this.#key(key))
    const values = await this.#guard('get', () => {
      const keyv = this.#keyv
      // getMany prepends the namespace to every key; get only to one not starting with it: it gets it on
      if (typeof keyv.store?.getMany === 'function' && !this.traits.batchHidesFailures) return keyv.getMany<unknown>(unique)
      const namespace = keyvKeyPrefix(keyv)
      return Promise.all(unique.map((key) => keyv.get<unknown>(namespace + key)))
    })
    const bytes = unique.map((_, i) => this.#bytes(values[i]))
    if (unique.length === keys.length) return bytes
    const byKey = new Map(unique.map((key, i) => [key, bytes[i]]))
    return keys.map((key) => byKey.get(this.#key(key)))
  }

  async setMany(entries: readonly KeyValueEntry[]): Promise<void> {
    if (entries.length === 0) return
    const last = new Map<string, KeyValueEntry>()
    for (const entry of entries) {
      last.delete(entry.key) // later entries win
      last.set(entry.key, entry)
    }
    const now = this.#clock.now()
    const namespace = keyvKeyPrefix(this.#keyv) // setMany prepends it only to a key not starting with it
    const sets: { key: string; value: Buffer; ttl?: number }[] = []
    const expired: string[] = []
    for (const entry of last.values()) {
      const bare = this.#key(entry.key)
      const key = namespace + bare
      const value = Buffer.isBuffer(entry.value)
        ? entry.value
        : Buffer.from(entry.value.buffer, entry.value.byteOffset, entry.value.byteLength)
      if (entry.expiresAt === undefined) sets.push({ key, value })
      else {
        const ttl = Math.ceil(entry.expiresAt - now)
        if (!(ttl > 0)) expired.push(bare)
        else if (!this.secondResolution) sets.push({ key, value, ttl })
        else {
          // whole seconds, rounded up, plus one for the server's one-second clock
          const seconds = Math.ceil(ttl / 1000) + 1
          sets.push(seconds > MAX_RELATIVE_SECONDS ? { key, value } : { key, value, ttl: seconds * 1000 })
        }
      }
    }
    await this.#guard('set', async () => {
      const [results] = await Promise.all([
        sets.length > 0 ? this.#keyv.setMany(sets) : [],
        expired.length > 0 ? this.#deleteKeys(expired) : true,
      ])
      // an adapter's own setMany may resolve to nothing: only an explicit `false` is a failure
      const failed = Array.isArray(results) ? (results as unknown[]).indexOf(false) : -1
      if (failed !== -1) throw new Error(`Keyv reported a failed set of ${show(sets[failed]?.key)}`)
    })
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return
    // the result is `false` both on failure and when a key was absent; failures throw (throwOnErrors)
    await this.#guard('delete', () => this.#deleteKeys([...new Set(keys.map((key) => this.#key(key)))]))
  }

  /** Lists and deletes the keys of `prefix` until a listing finds none (see {@link clear}). */
  async #clearListed(prefix: string): Promise<void> {
    for (let pass = 0; pass < CLEAR_PASSES; pass++) {
      const keys = await this.#listKeys(prefix)
      if (keys.length === 0) return
      for (let i = 0; i < keys.length; i += CLEAR_BATCH) {
        const batch = keys.slice(i, i + CLEAR_BATCH)
        await this.#guard('clear', () => this.#keyv.deleteMany(batch))
      }
    }
  }

  /**
   * Every key of the namespace that starts with `prefix`, listed before any is deleted (deleting while
   * listing made @keyv/sqlite, which pages by LIMIT/OFFSET, skip a page after each batch). Each step
   * of the listing is bounded by the timeout, not the whole: a large store takes many steps.
   */
  async #listKeys(prefix: string): Promise<string[]> {
    const iterator = (this.#keyv.iterator as unknown as () => AsyncGenerator<[string, unknown]>)()
    const keys: string[] = []
    for (;;) {
      const next = await this.#guard('clear', () => iterator.next())
      if (next.done === true) return keys
      const key = next.value[0]
      if (typeof key === 'string' && key.startsWith(prefix)) keys.push(key)
    }
  }

  /** The clears in flight, each with the first `'error'` the Keyv instance or its adapter emitted meanwhile. */
  readonly #watchers = new Set<{ emitted?: { error: unknown } }>()
  /** The emitters {@link #onError} listens to while clears are in flight (one listener each, shared). */
  #listening: Emitter[] = []
  readonly #onError = (error: unknown): void => {
    for (const w of this.#watchers) w.emitted ??= { error }
  }

  /**
   * Runs `work`, rejecting with `StoreUnavailableError` when the Keyv instance or its adapter emitted
   * an `'error'` meanwhile: some adapters report a failure only so (the PostgreSQL iterator emits its
   * query error and ends, which reads as "no more keys"). Concurrent clears share one listener per
   * emitter, removed when the last one ends.
   */
  async #watched(work: () => Promise<void>): Promise<void> {
    const watcher: { emitted?: { error: unknown } } = {}
    if (this.#watchers.size === 0) {
      this.#listening = [this.#keyv as unknown as Emitter, this.#keyv.store as unknown as Emitter].filter(
        (e, i, all) => typeof e?.on === 'function' && typeof (e.off ?? e.removeListener) === 'function' && all.indexOf(e) === i,
      )
      for (const emitter of this.#listening) emitter.on('error', this.#onError)
    }
    this.#watchers.add(watcher)
    try {
      await work()
    } finally {
      this.#watchers.delete(watcher)
      if (this.#watchers.size === 0) {
        for (const emitter of this.#listening) (emitter.off ?? emitter.removeListener)?.call(emitter, 'error', this.#onError)
        this.#listening = []
      }
    }
    if (watcher.emitted !== undefined) throw unavailableUnlessOurs(watcher.emitted.error, `${this.name} store clear`)
  }

  /**
   * With `disconnect`: `keyv.disconnect()` (which calls the adapter's `disconnect()` if it has one),
   * then, for an adapter without one, the first `close()`/`quit()` of the adapter or of its `client`
   * (@keyv/memcache has no `disconnect()`: its memjs client's sockets kept the process alive). A pool
   * another instance ended already is not a failure (@keyv/postgres: one pool per URL, ended by the
   * first instance's `disconnect()`; pg-pool rejects the second end with {@link POOL_ENDED_TWICE}).
   * @throws StoreUnavailableError when closing fails or takes longer than `timeout`.
   */
  async close(): Promise<void> {
    if (!this.#disconnect) return
    await this.#guard('close', async () => {
      try {
        await this.#keyv.disconnect()
      } catch (err) {
        if (!(err instanceof Error && err.message === POOL_ENDED_TWICE)) throw err
      }
      await closeClient(this.#keyv.store)
    })
  }

  /** Bytes of a key the adapter's server takes once the namespace copies are counted; `undefined` = no limit. */
  #keyBudget(): number | undefined {
    const max = this.traits.maxKeyBytes
    if (max === undefined) return undefined
    const namespace = this.#keyv.namespace
    return max - (namespace === undefined || namespace === '' ? 0 : this.traits.namespaceCopies * (Buffer.byteLength(namespace) + 1))
  }

  /** @throws InvalidOptionError when the Keyv namespace leaves no room for a shortened key. */
  #checkNamespace(): void {
    const budget = this.#keyBudget()
    if (budget === undefined || budget >= DIGEST_BYTES) return
    const max = this.traits.maxKeyBytes as number
    const copies = this.traits.namespaceCopies
    const longest = Math.floor((max - DIGEST_BYTES) / copies) - 1
    throw new InvalidOptionError(
      `${this.name} store: the Keyv namespace ${show(this.#keyv.namespace)} (${Buffer.byteLength(this.#keyv.namespace ?? '')} bytes) leaves ${budget} of the ${max} bytes a ${this.traits.adapter} key may have (the namespace and ':' are sent ${copies} times), and a key needs at least ${DIGEST_BYTES}; use a namespace of at most ${longest} bytes`,
    )
  }

  /** The key sent to Keyv: shortened to a head and a digest when the adapter's server could not take it whole. */
  #key(key: string): string {
    const budget = this.#keyBudget()
    if (budget === undefined || Buffer.byteLength(key) <= budget) return key
    const digest = createHash('sha256').update(key).digest('base64url') // 43 characters
    return `${key.slice(0, Math.max(0, budget - DIGEST_BYTES))}#${digest}`
  }

  /** Deletes store keys (as {@link #key} gives them): `deleteMany` prepends the namespace, `delete` gets it on. */
  #deleteKeys(keys: string[]): Promise<unknown> {
    if (this.traits.batchHidesFailures) {
      const namespace = keyvKeyPrefix(this.#keyv)
      return Promise.all(keys.map((key) => this.#keyv.delete(namespace + key)))
    }
    return this.#keyv.deleteMany(keys)
  }

  #bytes(value: unknown): Uint8Array | undefined {
    if (value === undefined || value === null) return undefined
    if (value instanceof Uint8Array) return value
    if (typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
      return Buffer.from((value as { data: number[] }).data)
    }
    if (typeof value === 'string' && value.startsWith(':base64:')) return Buffer.from(value.slice(8), 'base64')
    return notBytes(`Keyv returned ${show(value)}, not bytes (written there by something else)`)
  }

  async #guard<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(work(), this.#timeout, () => this.#timedOut(operation))
    } catch (err) {
      throw unavailableUnlessOurs(err, `${this.name} store ${operation}`)
    }
  }

  #timedOut(operation: string): StoreUnavailableError {
    return new StoreUnavailableError(`${this.name} store ${operation}: no answer within ${this.#timeout} ms (option \`timeout\`)`)
  }
}

/** What {@link KeyvBackend} needs of an event emitter (Keyv's own, or a Node one). */
interface Emitter {
  on(event: string, listener: (error: unknown) => void): unknown
  off?(event: string, listener: (error: unknown) => void): unknown
  removeListener?(event: string, listener: (error: unknown) => void): unknown
}

/**
 * Closes what `keyv.disconnect()` left open: nothing when the adapter has its own `disconnect()` (Keyv
 * called it), else the first `close()` or `quit()` of the adapter, or of its `client` (`disconnect()`,
 * `close()` or `quit()`).
 */
async function closeClient(adapter: unknown): Promise<void> {
  if (typeof adapter !== 'object' || adapter === null || adapter instanceof Map) return
  const own = adapter as Record<string, unknown>
  if (typeof own.disconnect === 'function') return
  const client = own.client as Record<string, unknown> | null | undefined
  const targets: [Record<string, unknown>, string[]][] = [[own, ['close', 'quit']]]
  if (typeof client === 'object' && client !== null) targets.push([client, ['disconnect', 'close', 'quit']])
  for (const [target, methods] of targets) {
    const method = methods.find((m) => typeof target[m] === 'function')
    if (method !== undefined) {
      await (target[method] as () => unknown).call(target)
      return
    }
  }
}
