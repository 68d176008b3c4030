import type { Keyv } from 'keyv'
import {
  CACHE_OPTION_NAMES,
  type CacheStoreOptions,
  checkCacheOptions,
  KeyValueStore,
  pickCacheOptions,
} from '../../contracts/key-value-store.js'
import { InvalidOptionError, show, UnsupportedOperationError } from '../../core/errors.js'
import { systemClock } from '../../core/lifetime.js'
import { msOption, nameOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'
import { KeyvBackend } from './keyv-backend.js'
import { checkKeyv, DEFAULT_KEYV_TIMEOUT } from './keyv-backend-options.js'

/** Options of {@link KeyvStore}. */
export interface KeyvStoreOptions extends CacheStoreOptions {
  /**
   * The Keyv 5 instance to store into, with any storage adapter (`new Keyv()` is an in-process Map;
   * `new Keyv(new KeyvRedis(url))`, `new Keyv(new KeyvSqlite(…))`, …). Required. The store switches
   * its `throwOnErrors` on: a cache layer must report failures, not turn them into misses.
   */
  keyv: Keyv
  /** Upper bound in ms for every operation; slower ones reject with `StoreUnavailableError`. Default `1000`. */
  timeout?: number | undefined
  /**
   * Call `keyv.disconnect()` in `close()` — and, for an adapter without a `disconnect()` of its own
   * (@keyv/memcache), close its client. Default `false`: the Keyv instance is yours.
   */
  disconnect?: boolean | undefined
  /**
   * The Keyv namespace holds nothing but this store's entries, so `clear()` may call `keyv.clear()`
   * when the adapter cannot list its keys or the store has no `prefix` (adapters that can are cleared
   * key by key under the prefix whatever this says). Default `false`: `clear()` on such an adapter, or
   * without a prefix, is refused, and the store declares `capabilities.clearable: false`.
   */
  ownsNamespace?: boolean | undefined
  /** Name for messages and stats; default `keyv(<namespace>)`. */
  name?: string | undefined
}

/**
 * A cache store over any Keyv adapter — the successor of the original ShoveStore: every Keyv backend
 * becomes a stockpyle layer. Objects are stored once under their primary key with aliases for
 * alternate keys (see {@link KeyValueStore}); lifetimes become Keyv ttls (ms, rounded up) and are
 * checked again on read.
 *
 * @example
 * const cache = new KeyvStore({ keyv: new Keyv(), lifetime: 60 })
 * @throws InvalidOptionError (synchronously) for an invalid option, naming it.
 */
export class KeyvStore extends KeyValueStore {
  /** The store was created with `prefix: ''`: its keys cannot be told from the namespace's others. */
  readonly #prefixless: boolean

  /** @throws InvalidOptionError naming the invalid option. */
  constructor(options: KeyvStoreOptions) {
    super(createBackend(options), pickCacheOptions(options))
    this.#prefixless = options.prefix === ''
  }

  /** The Keyv instance this store writes to. */
  get keyv(): Keyv {
    return (this.backend as KeyvBackend).keyv
  }

  /**
   * Removes the keys of this store's prefix in the Keyv namespace and nothing else, when the adapter
   * can list its keys; otherwise (or without a prefix), with `ownsNamespace: true`, calls `keyv.clear()`.
   * @throws UnsupportedOperationError when the adapter cannot list keys or the store has no prefix, and
   *   the namespace is not owned (`capabilities.clearable` is then `false`); StoreUnavailableError.
   */
  override async clear(): Promise<void> {
    this.assertOpen('clear')
    if (this.backend.clear === undefined) {
      throw new UnsupportedOperationError(
        this.#prefixless
          ? `${this.name} store cannot clear() without a prefix: that would remove every key of the Keyv namespace (the application's own and other stores'); give the store a prefix, or pass ownsNamespace: true if the namespace holds nothing else (keyv.clear() then empties it)`
          : `${this.name} store cannot clear(): its Keyv adapter cannot list keys; pass ownsNamespace: true if the namespace holds nothing else (keyv.clear() then empties it)`,
      )
    }
    await super.clear()
  }
}

const KEYV_STORE_OPTIONS = [...CACHE_OPTION_NAMES, 'keyv', 'timeout', 'disconnect', 'name', 'ownsNamespace']

function createBackend(options: KeyvStoreOptions): KeyvBackend {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(`keyv store: options must be an object with \`keyv\` (a Keyv instance), got ${show(options)}`)
  }
  checkOptionNames('keyv store', options, KEYV_STORE_OPTIONS)
  const { prefix } = checkCacheOptions('keyv store', options)
  const { disconnect = false, name, ownsNamespace = false } = options
  const timeout = msOption('keyv store', 'timeout', options.timeout, DEFAULT_KEYV_TIMEOUT)
  const keyv = checkKeyv('keyv store', options.keyv)
  if (typeof disconnect !== 'boolean')
    throw new InvalidOptionError(`keyv store: option \`disconnect\` must be a boolean, got ${show(disconnect)}`)
  if (typeof ownsNamespace !== 'boolean') {
    throw new InvalidOptionError(`keyv store: option \`ownsNamespace\` must be a boolean, got ${show(ownsNamespace)}`)
  }
  return new KeyvBackend({
    keyv,
    timeout,
    disconnect,
    ownsNamespace,
    prefix,
    clock: options.clock ?? systemClock,
    name: nameOption('keyv store', name, `keyv(${keyv.namespace ?? 'no namespace'})`),
  })
}
