import { InvalidOptionError, show } from '../../core/errors.js'

/** Why each refused ioredis option may not be given in `redisOptions`, and what to use instead. */
export type OwnedRedisOptions = Readonly<Record<string, string>>

/** Shared reasons of {@link REDIS_STORE_OWNED} and the bus's list. */
const FAILS_FAST = 'fails fast while disconnected: a call rejects at once rather than waiting in a queue or being retried'

/**
 * The ioredis options a `RedisStore` sets itself or takes as options of its own. Given in
 * `redisOptions`, each would be spread over the store's and silently replace what it relies on:
 * `keyPrefix` prefixes commands but not SCAN patterns (so `clear()` would find nothing to remove),
 * `db`, `tls`, `password`, `username`, `host` and `port` would beat (or lose to) the store's options of
 * the same name or the URL, and the others would undo the store's fail-fast behaviour, its lazy
 * connection, its reconnects and its own deadlines. `connectTimeout` and `disconnectTimeout` stay
 * allowed: they tune, and the store's `timeout` still bounds every operation and `close()`.
 */
export const REDIS_STORE_OWNED: OwnedRedisOptions = {
  keyPrefix: 'use option `prefix` (ioredis prefixes commands but not SCAN patterns: clear() would find none of the keys)',
  db: 'use option `db`',
  tls: 'use option `tls`',
  password: 'use option `password`',
  username: 'use option `username`',
  host: 'use option `host` or `url`',
  port: 'use option `port` or `url`',
  lazyConnect: 'the store connects on first use',
  enableOfflineQueue: `the store ${FAILS_FAST}`,
  maxRetriesPerRequest: `the store ${FAILS_FAST}`,
  retryStrategy: 'the store reconnects by itself, after min(n × 50, 500) ms',
  commandTimeout: 'use option `timeout`, which bounds every operation',
}

/**
 * The ioredis options a `RedisBus` sets itself on the connections it creates from its `url`, or that
 * the URL decides (a URL's host and port always win over `redisOptions`).
 */
export const REDIS_BUS_OWNED: OwnedRedisOptions = {
  keyPrefix: 'ioredis does not prefix pub/sub channels: use option `channel`',
  host: 'give it in `url`',
  port: 'give it in `url`',
  lazyConnect: 'the bus connects on first use',
  enableOfflineQueue: `the bus ${FAILS_FAST}`,
  maxRetriesPerRequest: `the bus ${FAILS_FAST}`,
  retryStrategy: 'use option `maxBackoff`',
  autoResubscribe: 'the bus subscribes again itself on every reconnect',
  commandTimeout: 'use option `timeout`, which bounds every publish',
}

/**
 * Checks `redisOptions`: `undefined`, or an object (not an array) none of whose `refused` options is
 * given (a key whose value is `undefined` counts as not given).
 * @param owner the store or bus named in the message.
 * @throws InvalidOptionError naming `redisOptions.<key>` and what to use instead.
 */
export function checkRedisOptions(owner: string, redisOptions: unknown, refused: OwnedRedisOptions): void {
  if (redisOptions === undefined) return
  if (typeof redisOptions !== 'object' || redisOptions === null || Array.isArray(redisOptions)) {
    throw new InvalidOptionError(`${owner}: option \`redisOptions\` must be an object of ioredis options, got ${show(redisOptions)}`)
  }
  for (const [key, why] of Object.entries(refused)) {
    if ((redisOptions as Record<string, unknown>)[key] !== undefined) {
      throw new InvalidOptionError(`${owner}: option \`redisOptions.${key}\` is refused: ${why}`)
    }
  }
}
