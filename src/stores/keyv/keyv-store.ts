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
   * when the store cannot list its keys — the adapter cannot, or Keyv lists them changed (a Keyv
   * without a namespace, or with one holding `:`) — or has no `prefix` (a store that can list them is
   * cleared key by key under the prefix whatever this says). Default `false`: such a store's `clear()`
   * is refused, and it declares `capabilities.clearable: false`.
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
  /** @throws InvalidOptionError naming the invalid option. */
  constructor(options: KeyvStoreOptions) {
    super(createBackend(options), pickCacheOptions(options))
  }

  /** The Keyv instance this store writes to. */
  get keyv(): Keyv {
    return (this.backend as KeyvBackend).keyv
  }

  /**
   * Removes the keys of this store's prefix in the Keyv namespace — also those of a longer prefix
   * starting with it and `:` (the prefix `a` takes the keys of a store with the prefix `a:b`) — when
   * Keyv can list its keys as written; otherwise (or without a prefix), with `ownsNamespace: true`,
   * calls `keyv.clear()`.
   * @throws UnsupportedOperationError when the store has no prefix, the adapter cannot list keys, or Keyv
   *   lists them changed (no namespace, or one holding `:`, see docs/stores/keyv.md), and the namespace
   *   is not owned (`capabilities.clearable` is then `false`); StoreUnavailableError.
   */
  override async clear(): Promise<void> {
    this.assertOpen('clear')
    const backend = this.backend as KeyvBackend
    if (backend.clear === undefined) {
      throw new UnsupportedOperationError(
        `${this.name} store cannot clear()${backend.clearRefusal ?? ''}; pass ownsNamespace: true if the namespace holds nothing else (keyv.clear() then empties it)`,
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
