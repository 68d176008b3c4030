import type { Keyv } from 'keyv'
import { clockOption, KEY_VALUE_STORE_ARGUMENT } from '../../contracts/cache-store-options.js'
import { InvalidOptionError, show } from '../../core/errors.js'
import type { Clock } from '../../core/lifetime.js'
import { booleanOption, msOption, nameOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'

/** Options of {@link KeyvBackend}. */
export interface KeyvBackendOptions {
  /** The Keyv 5 instance; its `throwOnErrors` is switched on so that failures reach the caller. Required. */
  readonly keyv: Keyv
  /** Upper bound in ms for each operation. Default `1000` (as `KeyvStore`'s). */
  readonly timeout?: number | undefined
  /**
   * Time source for turning absolute expiries into Keyv's relative ttl: give the clock of the
   * `KeyValueStore` over the backend. Default: the system clock (`Date.now`).
   */
  readonly clock?: Clock | undefined
  /** Name for messages, e.g. `keyv(app)`. Default: `keyv(<the Keyv namespace>)`. */
  readonly name?: string | undefined
  /**
   * Call `keyv.disconnect()` in `close()`, and close the adapter's client when the adapter has no
   * `disconnect()` of its own (@keyv/memcache: its memjs client). Default `false`: the Keyv is yours.
   */
  readonly disconnect?: boolean | undefined
  /** The Keyv namespace holds nothing but this store's entries: `clear()` may call `keyv.clear()`. Default `false`. */
  readonly ownsNamespace?: boolean | undefined
  /**
   * The store's key prefix as it starts every key (`'<prefix>:'`), or `''` when it has none: then no
   * listing can tell its keys from the namespace's others, and `clear()` exists only with
   * `ownsNamespace` (so too when Keyv cannot list the keys as written, see `unlistableReason`). Default `''`.
   */
  readonly prefix?: string | undefined
}

/** {@link KeyvBackendOptions} checked, with their defaults. */
export interface CheckedKeyvBackendOptions {
  readonly keyv: Keyv
  readonly timeout: number
  readonly clock: Clock
  readonly name: string
  readonly disconnect: boolean
  readonly ownsNamespace: boolean
  readonly prefix: string
}

/** Default `timeout` of a Keyv store or backend, in ms. */
export const DEFAULT_KEYV_TIMEOUT = 1000

const OWNER = 'KeyvBackend'
const NAMES = ['keyv', 'timeout', 'clock', 'name', 'disconnect', 'ownsNamespace', 'prefix']

/**
 * Checks that `keyv` is a Keyv 5 instance (it has the batch methods the backend calls and a `store`:
 * a storage adapter given instead is named, with how to wrap it).
 * @param owner the store or backend named in the message.
 * @throws InvalidOptionError naming the option `keyv`.
 */
export function checkKeyv(owner: string, keyv: unknown): Keyv {
  const k = keyv as (Partial<Keyv> & Record<string, unknown>) | null | undefined
  const methods = (names: string[]): boolean => names.every((name) => typeof k?.[name] === 'function')
  if (typeof k === 'object' && k !== null && methods(['get', 'getMany', 'setMany', 'deleteMany'])) {
    // a storage adapter (@keyv/redis' KeyvRedis) has these methods too, but no `store` of its own
    if (typeof k.store === 'object' && k.store !== null && k.store !== k) return keyv as Keyv
  }
  if (typeof k === 'object' && k !== null && methods(['get', 'set', 'delete'])) {
    const adapter = (k as { constructor?: { name?: unknown } }).constructor?.name
    throw new InvalidOptionError(
      `${owner}: option \`keyv\` must be a Keyv 5 instance (new Keyv(…)), got a storage adapter${typeof adapter === 'string' && adapter !== '' ? ` (${adapter})` : ''}; wrap it: new Keyv(adapter)`,
    )
  }
  throw new InvalidOptionError(`${owner}: option \`keyv\` must be a Keyv 5 instance (new Keyv(…)), got ${show(keyv)}`)
}

/**
 * Checks a {@link KeyvBackend}'s options and applies the defaults, all synchronously.
 * @throws InvalidOptionError naming the option: unknown (one of the `KeyValueStore`'s is named as
 *   such), missing (`keyv`) or invalid.
 */
export function checkKeyvBackendOptions(options: KeyvBackendOptions): CheckedKeyvBackendOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(`${OWNER}: options must be an object with \`keyv\` (a Keyv instance), got ${show(options)}`)
  }
  checkOptionNames(OWNER, options, NAMES, KEY_VALUE_STORE_ARGUMENT)
  const keyv = checkKeyv(OWNER, options.keyv)
  const prefix = options.prefix ?? ''
  if (typeof prefix !== 'string') {
    throw new InvalidOptionError(`${OWNER}: option \`prefix\` must be a string (the key prefix with its ':', or ''), got ${show(prefix)}`)
  }
  return {
    keyv,
    timeout: msOption(OWNER, 'timeout', options.timeout, DEFAULT_KEYV_TIMEOUT),
    clock: clockOption(OWNER, options.clock),
    name: nameOption(OWNER, options.name, `keyv(${keyv.namespace ?? 'no namespace'})`),
    disconnect: booleanOption(OWNER, 'disconnect', options.disconnect, false),
    ownsNamespace: booleanOption(OWNER, 'ownsNamespace', options.ownsNamespace, false),
    prefix,
  }
}
