import type { Cluster, Redis } from 'ioredis'
import { clockOption, KEY_VALUE_STORE_ARGUMENT } from '../../contracts/cache-store-options.js'
import { InvalidOptionError, show } from '../../core/errors.js'
import type { Clock } from '../../core/lifetime.js'
import { booleanOption, msOption, nameOption } from '../../core/option-values.js'
import { checkOptionNames } from '../../core/options.js'

/** Options of {@link RedisBackend}. */
export interface RedisBackendOptions {
  /** A connected (or lazily connecting) ioredis `Redis` or `Cluster`. Required. */
  readonly client: Redis | Cluster
  /** Close the client in `close()`. Default `false`: the client is the caller's. */
  readonly ownsClient?: boolean | undefined
  /**
   * Upper bound in ms for each operation, including waiting for the first connection. Default `1000`
   * (as `RedisStore`'s).
   */
  readonly timeout?: number | undefined
  /**
   * Time source for turning absolute expiries into server-side `PX` lifetimes: give the clock of the
   * `KeyValueStore` over the backend. Default: the system clock (`Date.now`).
   */
  readonly clock?: Clock | undefined
  /** Name for messages, e.g. `redis(127.0.0.1:6379)`. Default: `redis(<host>:<port>)`, or `redis-cluster`. */
  readonly name?: string | undefined
  /**
   * Cluster only (refused for a single node): ms a master that failed is skipped (its keys fail at
   * once) before one call probes it again. Default 1000.
   */
  readonly retryDelay?: number | undefined
  /**
   * Whether the store over this backend can clear its keys by prefix: `false` for a store without a
   * prefix (clearing would remove every key of the server), which then has no `clear`. Default `true`.
   */
  readonly clearable?: boolean | undefined
}

/** {@link RedisBackendOptions} checked, with their defaults. */
export interface CheckedRedisBackendOptions {
  readonly client: Redis | Cluster
  readonly cluster: boolean
  readonly ownsClient: boolean
  readonly timeout: number
  readonly clock: Clock
  readonly name: string
  readonly retryDelay: number
  readonly clearable: boolean
}

/** Default `timeout` of a Redis store or backend, in ms. */
export const DEFAULT_REDIS_TIMEOUT = 1000

const OWNER = 'RedisBackend'
const NAMES = ['client', 'ownsClient', 'timeout', 'clock', 'name', 'retryDelay', 'clearable']

/** Whether `client` looks like an ioredis `Redis` or `Cluster`. */
export function isRedisClient(client: unknown): client is Redis | Cluster {
  const c = client as Partial<Redis> | null
  return typeof c === 'object' && c !== null && typeof c.mgetBuffer === 'function' && typeof c.pipeline === 'function'
}

/** The default name of a backend over `client`: `redis(<host>:<port>)`, or `redis-cluster`. */
export function clientName(client: Redis | Cluster): string {
  const c = client as { isCluster?: boolean; options?: { host?: string; port?: number } }
  return c.isCluster === true ? 'redis-cluster' : `redis(${c.options?.host ?? '?'}:${c.options?.port ?? '?'})`
}

/**
 * Checks a {@link RedisBackend}'s options and applies the defaults, all synchronously.
 * @throws InvalidOptionError naming the option: unknown (one of the `KeyValueStore`'s is named as
 *   such), missing (`client`) or invalid.
 */
export function checkRedisBackendOptions(options: RedisBackendOptions): CheckedRedisBackendOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(`${OWNER}: options must be an object with \`client\` (an ioredis Redis or Cluster), got ${show(options)}`)
  }
  checkOptionNames(OWNER, options, NAMES, KEY_VALUE_STORE_ARGUMENT)
  const { client } = options
  if (!isRedisClient(client)) {
    throw new InvalidOptionError(`${OWNER}: option \`client\` must be an ioredis Redis or Cluster instance, got ${show(client)}`)
  }
  const cluster = (client as { isCluster?: boolean }).isCluster === true
  if (options.retryDelay !== undefined && !cluster) {
    throw new InvalidOptionError(
      `${OWNER}: option \`retryDelay\` must be absent without a cluster (it is how long a failed cluster master is skipped), got ${show(options.retryDelay)}`,
    )
  }
  return {
    client,
    cluster,
    ownsClient: booleanOption(OWNER, 'ownsClient', options.ownsClient, false),
    timeout: msOption(OWNER, 'timeout', options.timeout, DEFAULT_REDIS_TIMEOUT),
    clock: clockOption(OWNER, options.clock),
    name: nameOption(OWNER, options.name, clientName(client)),
    retryDelay: msOption(OWNER, 'retryDelay', options.retryDelay, 1000, true),
    clearable: booleanOption(OWNER, 'clearable', options.clearable, true),
  }
}
