import { InvalidOptionError, show } from '../core/errors.js'
import { type Clock, checkLifetime, type Lifetime, systemClock } from '../core/lifetime.js'
import { secondsOption } from '../core/option-values.js'
import { checkPlainOptions, type OtherArgument } from '../core/options.js'

/** Options shared by every cache store. */
export interface CacheStoreOptions {
  /**
   * Seconds (> 0), an absolute `Date` (every object expires then; a `Date` already past is refused), or a
   * callback per object; default: entries never expire. See {@link Lifetime}.
   */
  lifetime?: Lifetime | undefined
  /** Also index each object under every ancestor model's keys, so `get(Vehicle, …)` finds a `Car`. Default `false`. */
  polymorphic?: boolean | undefined
  /** Prepended to every key as `<prefix>:`; isolates applications sharing a server. Default `'stockpyle'`. */
  prefix?: string | undefined
  /** Time source for expiry (ms since the epoch). Default: `Date.now`. */
  clock?: Clock | undefined
  /**
   * Seconds a delete leaves a tombstone under the object's primary key, during which backfills of
   * copies read before the delete cannot land (reads miss as usual; a put replaces it at once).
   * `0` makes deletes plain. Default {@link DEFAULT_TOMBSTONE_LIFETIME}.
   */
  tombstoneLifetime?: number | undefined
  /**
   * Seconds an expired copy is kept past its lifetime for a chain that serves stale copies while its
   * database fails (`ChainedStore` option `serveStale`). Normal reads never return it. Default 0.
   */
  grace?: number | undefined
  /**
   * Spreads expiries so that objects written together do not expire together: each lifetime is
   * lengthened by a random fraction of itself up to this (0–1). Never shortens a lifetime. Default 0.
   */
  lifetimeJitter?: number | undefined
}

/** The names of {@link CacheStoreOptions}: every cache store accepts these. */
export const CACHE_OPTION_NAMES: readonly string[] = [
  'lifetime',
  'polymorphic',
  'prefix',
  'clock',
  'tombstoneLifetime',
  'grace',
  'lifetimeJitter',
]

/**
 * The options of the `KeyValueStore` a backend goes under, for a backend's constructor: one of them (or a
 * name close to one, `ttl`) given to the backend is refused saying where it belongs.
 */
export const KEY_VALUE_STORE_ARGUMENT: OtherArgument = {
  known: [...CACHE_OPTION_NAMES, 'name'],
  describe: (name) => `an option of the KeyValueStore over the backend: new KeyValueStore(backend, { ${name} })`,
}

/** The {@link CacheStoreOptions} (and `name`) among a store's options, for handing to {@link KeyValueStore}. */
export function pickCacheOptions(options: KeyValueStoreOptions): KeyValueStoreOptions {
  const out: Record<string, unknown> = {}
  for (const name of [...CACHE_OPTION_NAMES, 'name']) {
    if (Object.hasOwn(options, name)) out[name] = (options as Record<string, unknown>)[name]
  }
  return out as KeyValueStoreOptions
}

/** Seconds a delete's tombstone lasts by default: longer than any read should take. */
export const DEFAULT_TOMBSTONE_LIFETIME = 2

/** Options of {@link KeyValueStore}. */
export interface KeyValueStoreOptions extends CacheStoreOptions {
  /** Name used in messages and stats; default: the backend's name. */
  name?: string | undefined
}

/**
 * The `prefix` option: at most 40 characters of `[A-Za-z0-9_.~:-]` (`''` allowed); `undefined` means
 * `'stockpyle'`. Also checked by stores that accept it and ignore it, so a shared options object is
 * valid for every store or for none.
 * @throws InvalidOptionError naming `prefix`.
 */
export function prefixOption(store: string, value: unknown): string {
  const prefix = value ?? 'stockpyle'
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_.~:-]{0,40}$/.test(prefix)) {
    throw new InvalidOptionError(`${store}: option \`prefix\` must be at most 40 characters of [A-Za-z0-9_.~:-], got ${show(prefix)}`)
  }
  return prefix
}

/**
 * The `clock` option: an object with a `now()` method (ms since the epoch); `undefined` means the
 * system clock. Also checked by stores that accept it and ignore it.
 * @throws InvalidOptionError naming `clock`.
 */
export function clockOption(store: string, value: unknown): Clock {
  const clock = (value ?? systemClock) as Clock
  if (typeof clock?.now !== 'function') throw new InvalidOptionError(`${store}: option \`clock\` must have a now() method`)
  return clock
}

/** Checks the options every cache store shares. @throws InvalidOptionError naming the option. */
export function checkCacheOptions(
  store: string,
  options: CacheStoreOptions,
): {
  polymorphic: boolean
  clock: Clock
  lifetime: Lifetime | undefined
  prefix: string
  /** Tombstone lifetime in ms; 0 = plain deletes. */
  tombstoneMs: number
  /** ms */
  graceMs: number
  jitter: number
} {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionError(`${store}: options must be an object, got ${show(options)}`)
  checkPlainOptions(store, options)
  const prefix = prefixOption(store, options.prefix)
  if (options.polymorphic !== undefined && typeof options.polymorphic !== 'boolean') {
    throw new InvalidOptionError(`${store}: option \`polymorphic\` must be a boolean, got ${show(options.polymorphic)}`)
  }
  const clock = clockOption(store, options.clock)
  const tombstone = secondsOption(store, 'tombstoneLifetime', options.tombstoneLifetime, DEFAULT_TOMBSTONE_LIFETIME)
  const grace = secondsOption(store, 'grace', options.grace, 0)
  const jitter = options.lifetimeJitter ?? 0
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new InvalidOptionError(`${store}: option \`lifetimeJitter\` must be a fraction from 0 to 1, got ${show(jitter)}`)
  }
  return {
    lifetime: checkLifetime(store, options.lifetime, clock.now()),
    polymorphic: options.polymorphic ?? false,
    prefix: prefix === '' ? '' : `${prefix}:`,
    clock,
    tombstoneMs: Math.ceil(tombstone * 1000),
    graceMs: Math.ceil(grace * 1000),
    jitter,
  }
}
