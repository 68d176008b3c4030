/**
 * Largest relative expiration memcached accepts: 30 days in seconds. A larger `exptime` is read by
 * the server as an absolute Unix time.
 */
export const MEMCACHE_MAX_RELATIVE_EXPTIME = 60 * 60 * 24 * 30

/**
 * Seconds added to every expiration. memcached's clock ticks once a second, so an item stored with a
 * relative `exptime` of N can vanish up to one second before N seconds have passed (measured on
 * memcached 1.6.18: up to 0.89 s early). The margin keeps lifetimes from ever ending early; the
 * envelope's exact expiry (checked on every read) still makes the entry a miss on time.
 */
export const MEMCACHE_EXPTIME_MARGIN = 1

/**
 * The memcached `exptime` for an entry that must live until `expiresAt`.
 *
 * - `undefined` (never expires) → `0`, which memcached reads as "no expiration". Always sent
 *   explicitly: memcache-client would otherwise apply its 60 s default.
 * - `expiresAt <= now` → `-1`: memcached stores the item already expired, so the key reads as a miss.
 * - otherwise the remaining time `expiresAt - now` rounded **up** to whole seconds, plus
 *   {@link MEMCACHE_EXPTIME_MARGIN}: relative seconds when that is at most 30 days
 *   ({@link MEMCACHE_MAX_RELATIVE_EXPTIME}), else an absolute Unix time in seconds
 *   (`ceil((systemNow + remaining) / 1000)` + margin), as memcached's protocol requires. An absolute
 *   time past 2038 (beyond memcached's signed 32-bit field) becomes `0`: the envelope's expiry ends
 *   the entry instead.
 *
 * @param expiresAt absolute expiry in ms since the epoch on the store's clock; `undefined` = never.
 * @param now the store's current time in ms since the epoch (its `clock`).
 * @param systemNow the real current time in ms since the epoch, used only for absolute times (the
 *   server compares them with its own clock); default `Date.now()`.
 * @returns the `exptime` field of a memcached storage command, an integer.
 */
export function memcacheExptime(expiresAt: number | undefined, now: number, systemNow: number = Date.now()): number {
  if (expiresAt === undefined) return 0
  const remaining = expiresAt - now
  if (!(remaining > 0)) return -1
  const relative = Math.ceil(remaining / 1000) + MEMCACHE_EXPTIME_MARGIN
  if (relative <= MEMCACHE_MAX_RELATIVE_EXPTIME) return relative
  const absolute = Math.ceil((systemNow + remaining) / 1000) + MEMCACHE_EXPTIME_MARGIN
  // memcached parses exptime as a signed 32-bit integer; past 2038 "never" is the only safe answer
  return absolute > MAX_EXPTIME ? 0 : absolute
}

const MAX_EXPTIME = 2 ** 31 - 1
