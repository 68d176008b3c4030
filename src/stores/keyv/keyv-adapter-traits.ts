/**
 * What {@link KeyvBackend} must work around in a Keyv storage adapter, found from the adapter itself.
 * Measured on the adapters in the test matrix (@keyv/redis 5.1.6, @keyv/sqlite 4.0.8,
 * @keyv/postgres 2.2.3, @keyv/memcache 2.0.2); adapters not known here get the defaults (all `false`).
 */
export interface KeyvAdapterTraits {
  /** The adapter's class name, or `'Map'` / `'unknown'`. */
  readonly adapter: string
  /**
   * The adapter truncates Keyv's ms ttl to whole seconds (@keyv/memcache: `Math.floor(ttl / 1000)`,
   * so a 1.5 s entry got a 1 s memcached exptime and, with memcached's one-second clock, was gone
   * after 0.7 s). The backend then passes a ttl rounded up to whole seconds plus one.
   */
  readonly secondResolution: boolean
  /**
   * The adapter's `getMany`/`deleteMany` settle every key and turn a failed one into a miss or a
   * `false` (@keyv/memcache: `Promise.allSettled`), so a dead server reads as "absent". The backend
   * then reads and deletes key by key through Keyv, where each failure rejects.
   */
  readonly batchHidesFailures: boolean
  /**
   * The adapter has its own `throwOnErrors` switch, off by default, under which it answers a failed
   * get with `undefined` (@keyv/redis). The backend switches it on.
   */
  readonly ownThrowOnErrors: boolean
  /**
   * Longest key in bytes the adapter's server takes, counting the `<namespace>:` Keyv prepends and the
   * one the adapter prepends again (@keyv/memcache: memcached's 250); `undefined` = no limit. Longer
   * keys are shortened by the backend to a readable head and a SHA-256 digest.
   */
  readonly maxKeyBytes: number | undefined
  /** How many times the Keyv namespace (plus `:`) is prepended to a key on its way to the server. */
  readonly namespaceCopies: number
}

/** Largest relative memcached exptime in seconds (30 days); memcached reads a larger one as a Unix time. */
export const MAX_RELATIVE_SECONDS = 60 * 60 * 24 * 30

/**
 * The traits of a Keyv instance's storage adapter (`keyv.store`). Known adapters are recognised by
 * class name, since they are optional packages this module does not import.
 */
export function keyvAdapterTraits(store: unknown): KeyvAdapterTraits {
  if (store instanceof Map) {
    return {
      adapter: 'Map',
      secondResolution: false,
      batchHidesFailures: false,
      ownThrowOnErrors: false,
      maxKeyBytes: undefined,
      namespaceCopies: 1,
    }
  }
  const adapter = (store as { constructor?: { name?: unknown } } | null | undefined)?.constructor?.name
  const name = typeof adapter === 'string' && adapter !== '' ? adapter : 'unknown'
  const memcache = name === 'KeyvMemcache'
  return {
    adapter: name,
    secondResolution: memcache,
    batchHidesFailures: memcache,
    ownThrowOnErrors: typeof (store as { throwOnErrors?: unknown } | null | undefined)?.throwOnErrors === 'boolean',
    maxKeyBytes: memcache ? 250 : undefined,
    namespaceCopies: memcache ? 2 : 1,
  }
}
