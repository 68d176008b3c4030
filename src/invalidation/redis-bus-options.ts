import type { Redis, RedisOptions } from 'ioredis'
import { InvalidOptionError } from '../core/errors.js'
import type { RedisUrlParts } from '../stores/redis/redis-url.js'

/**
 * Options of {@link RedisBus}. Say where Redis is with `url` or `client` (not both); with neither the
 * bus connects to `redis://127.0.0.1:6379`.
 */
export interface RedisBusOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…`: the bus creates (and closes) both connections. */
  url?: string | undefined
  /**
   * An ioredis `Redis` client you own, used to publish (its own options — offline queue, retries —
   * apply; `timeout` still bounds each publish). The subscriber connection is `client.duplicate()`,
   * owned and closed by the bus; yours is never closed.
   */
  client?: Redis | undefined
  /** The pub/sub channel. Default `'stockpyle:invalidate'`. Every process of one application must use the same. */
  channel?: string | undefined
  /**
   * Upper bound in ms for a publish (including waiting for the very first connection), for
   * (re)subscribing and for a heartbeat PING. Default `1000`.
   */
  timeout?: number | undefined
  /**
   * Ms between PINGs on the subscriber connection, so a frozen or unreachable server is noticed (the
   * listeners get `onDown`) within `heartbeatInterval + timeout` even when TCP does not report it.
   * `0` turns the heartbeat off. Default `2000`.
   */
  heartbeatInterval?: number | undefined
  /** Longest wait in ms between reconnect attempts (doubling from 100 ms). Default `2000`. */
  maxBackoff?: number | undefined
  /**
   * Receives what cannot be thrown to a caller: connection errors of the subscriber (the first of
   * each outage), malformed messages (a `StockpyleError` `E_STOCKPYLE`: no outage), what listeners
   * throw or their promises reject with. Default
   * (undefined): the bus's first such error is one process warning `STOCKPYLE_INVALIDATION_ERROR`
   * naming the bus and the error; later ones are dropped. What `onError` throws, or its promise
   * rejects with, is one process warning `STOCKPYLE_CALLBACK` (the first time; later ones are dropped).
   */
  onError?: ((error: unknown) => void) | undefined
  /**
   * Extra ioredis options for the connections the bus creates from `url` (not with `client`), e.g. TLS
   * options (`tls: { ca }`), `password`, `connectionName`, `connectTimeout`. Refused with
   * `InvalidOptionError` naming `redisOptions.<key>`: what the bus sets itself (`lazyConnect`,
   * `enableOfflineQueue`, `maxRetriesPerRequest`, `retryStrategy` — use `maxBackoff` —,
   * `autoResubscribe`, `commandTimeout` — use `timeout`), `keyPrefix` (channels are not prefixed: use
   * `channel`), `host` and `port` (the URL's win), `db`, `password` or `username` where the URL gives
   * them, and `tls: false` with a `rediss://` URL.
   */
  redisOptions?: RedisOptions | undefined
  /** Name for messages; default `redis-bus(host:port)`. */
  name?: string | undefined
}

/** The option names {@link RedisBus} accepts (anything else is an InvalidOptionError). */
export const KNOWN = ['url', 'client', 'channel', 'timeout', 'heartbeatInterval', 'maxBackoff', 'onError', 'redisOptions', 'name'] as const
/** Where the bus connects without `url` or `client`. */
export const DEFAULT_URL = 'redis://127.0.0.1:6379'
/** Keys per message: messages stay small (Redis itself would take 512 MiB). */
export const MAX_MESSAGE_BYTES = 64 * 1024

/**
 * Refuses `redisOptions` that the bus's URL also gives: ioredis would silently let the URL's database
 * and credentials win, and `tls: false` would connect without TLS to a `rediss://` URL.
 * @throws InvalidOptionError naming `redisOptions.<key>` and `url`.
 */
export function checkUrlOverlap(url: RedisUrlParts, redisOptions: RedisOptions | undefined): void {
  if (redisOptions === undefined) return
  const given = (key: keyof RedisOptions): boolean => redisOptions[key] !== undefined
  const refuse = (key: string, why: string): never => {
    throw new InvalidOptionError(`redis bus: option \`redisOptions.${key}\` cannot be combined with ${why}: give one`)
  }
  if (given('db') && url.db !== undefined) refuse('db', 'a database in `url`')
  if (given('password') && url.credentials) refuse('password', 'credentials in `url`')
  if (given('username') && url.credentials) refuse('username', 'credentials in `url`')
  if ((redisOptions.tls as unknown) === false && url.tls) refuse('tls', 'a `rediss://` `url` (which asks for TLS)')
}
